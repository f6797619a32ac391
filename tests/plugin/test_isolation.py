"""Isolation and cleanup: per-run names, complete teardown, leftovers of a killed run."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

from kept import kept_by_this_run
from podman.errors import NotFound
from tenacity import Retrying, stop_after_delay, wait_fixed

from pytest_vlanlb.host.naming import LABEL_RUN, RunNames
from pytest_vlanlb.host.sweep import find_leftovers
from pytest_vlanlb.host.wires import vlanlb_links
from pytest_vlanlb.podman.lookup import container_named


def objects_of_run(client, run_id):
    label = {"label": f"{LABEL_RUN}={run_id}"}
    containers = sorted(c.name for c in client.containers.list(all=True, filters=label))
    networks = sorted(n.name for n in client.networks.list(filters=label))
    links = sorted(name for name, alias in vlanlb_links() if alias.run_id == run_id)
    return {"containers": containers, "networks": networks, "links": links}


def finish(process, timeout=120):
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def test_users_own_a_b_router_survive_a_run(vlanlb_podman, vlanlb_lab, inner_run):
    client = vlanlb_podman.client()
    image = vlanlb_lab.router.container.image.id
    own = {}
    owner = RunNames.new()
    for name in ("a", "b", "router"):
        try:
            own[name] = (container_named(client, name).id, False)  # the user's real one
        except NotFound:
            # Labelled as this test process's: should it be killed, the next run's sweep
            # removes them; while it lives, no sweep may.
            ctr = client.containers.create(
                image, name=name, network_mode="none", stop_timeout=0, labels=owner.labels()
            )
            own[name] = (ctr.id, True)
    try:
        rc, output = finish(inner_run())
        assert rc == 0, output
        run_id = inner_run.run_id_file.read_text()
        for name, (ctr_id, _) in own.items():
            assert client.containers.get(ctr_id).name == name
        assert objects_of_run(client, run_id) == {"containers": [], "networks": [], "links": []}
    finally:
        for ctr_id, made_here in own.values():
            if made_here:
                with contextlib.suppress(NotFound):
                    client.containers.get(ctr_id).remove(force=True)


def test_the_lab_never_uses_the_workshops_bare_names(vlanlb_lab):
    for node in vlanlb_lab.nodes.values():
        assert node.container_name == f"vlb-{vlanlb_lab.names.run_id}-{node.name}"


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(vlanlb_podman, inner_run):
    client = vlanlb_podman.client()
    killed = inner_run(hang=True)
    try:
        for attempt in Retrying(stop=stop_after_delay(60), wait=wait_fixed(0.2), reraise=True):
            with attempt:
                assert inner_run.run_id_file.read_text()
        run_id = inner_run.run_id_file.read_text()
    finally:
        killed.send_signal(signal.SIGKILL)
        finish(killed)
    left = objects_of_run(client, run_id)
    assert len(left["containers"]) == 3, left
    assert len(left["networks"]) == 2, left
    assert left["links"], left
    assert {item.run_id for item in find_leftovers(client)} >= {run_id}

    rc, output = finish(inner_run())
    assert rc == 0, output
    assert f"of crashed run {run_id}" in output, output
    assert objects_of_run(client, run_id) == {"containers": [], "networks": [], "links": []}


def vlanlb_command(url, *args):
    return subprocess.run(
        [sys.executable, "-m", "pytest_vlanlb", f"--url={url}", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_kept_lab_survives_and_cleanup_removes_it(vlanlb_podman, inner_run):
    client = vlanlb_podman.client()
    rc, output = finish(inner_run("--vlanlb-keep", "-s"))
    assert rc == 0, output
    run_id = inner_run.run_id_file.read_text()
    assert f"vlanlb cleanup --run {run_id}" in output
    kept_router = f"container vlb-{run_id}-router of run {run_id} (kept)"
    with kept_by_this_run(run_id):  # a run killed here: the next run removes it by its id
        try:
            kept = objects_of_run(client, run_id)
            assert len(kept["containers"]) == 3, kept
            # The next run's leftover sweep leaves a kept lab alone.
            rc, output = finish(inner_run())
            assert rc == 0, output
            assert objects_of_run(client, run_id) == kept
            # A dry run lists what the same cleanup would remove: not a kept lab, unless named.
            plain = vlanlb_command(vlanlb_podman.url, "cleanup", "--dry-run")
            assert plain.returncode == 0, plain.stderr
            assert kept_router not in plain.stdout
            named = vlanlb_command(vlanlb_podman.url, "cleanup", "--dry-run", "--run", run_id)
            assert f"found {kept_router}" in named.stdout
            assert objects_of_run(client, run_id) == kept  # a dry run removes nothing
        finally:
            cleanup = vlanlb_command(vlanlb_podman.url, "cleanup", "--run", run_id)
    assert cleanup.returncode == 0, cleanup.stderr
    assert f"removed {kept_router}" in cleanup.stdout
    assert objects_of_run(client, run_id) == {"containers": [], "networks": [], "links": []}


def test_an_image_without_the_tools_is_refused_and_nothing_is_left(
    vlanlb_podman, vlanlb_lab, inner_run
):
    client = vlanlb_podman.client()
    base = vlanlb_lab.router.container.image.id
    scratch = client.containers.create(base, stop_timeout=0, network_mode="none")
    tag = "localhost/vlanlb-test-nocurl:latest"
    try:
        scratch.start()
        scratch.exec_run(["rm", "-f", "/usr/bin/curl"])
        scratch.commit(repository="localhost/vlanlb-test-nocurl", tag="latest")
    finally:
        scratch.remove(force=True)
    try:
        before = {c.name for c in client.containers.list(all=True)}
        rc, output = finish(inner_run(f"--vlanlb-image={tag}"))
        assert rc == 1, output
        assert f"pytest-vlanlb: image '{tag}' lacks curl needed on client a" in output, output
        assert "apk add curl" in output
        run_id = inner_run.run_id_file  # never written: the lab was not built
        assert not run_id.exists()
        assert {c.name for c in client.containers.list(all=True)} == before
        assert not [item for item in find_leftovers(client) if not item.kept]
    finally:
        client.images.remove(tag, force=True)
