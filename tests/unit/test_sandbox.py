"""The document sandbox's parts that need no namespace: its settings, the sweep of dead
sandboxes' folders, the image store's place, the host tools it needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_vlanlb.document import sandbox
from pytest_vlanlb.document.confinement import IdRange
from pytest_vlanlb.document.store import IMAGE_CACHE, image_store
from pytest_vlanlb.errors import PreflightError
from pytest_vlanlb.util.owners import owner_token, process_start_time


def test_podman_in_the_sandbox_never_pulls_and_writes_no_cgroup():
    conf = sandbox.sandbox_containers_conf("cni")
    assert 'cgroups = "disabled"' in conf
    assert 'runtime = "crun"' in conf
    assert 'pull_policy = "never"' in conf
    assert "stop_timeout = 0" in conf
    assert 'network_backend = "cni"' in conf
    assert "network_backend" not in sandbox.sandbox_containers_conf(None)


def test_the_image_store_is_found_by_recipe_by_image_id_and_by_owner():
    ids = IdRange(0x70000000)
    store = image_store("localhost/vlanlb-alpine:1b655cd89672", ids=ids)
    assert store == IMAGE_CACHE / "1b655cd89672-u1879048192"
    users = image_store("localhost/vlanlb-alpine:abc", "0123456789abcdef", ids=ids)
    assert users.name == "abc-0123456789ab-u1879048192"
    assert image_store("localhost/vlanlb-alpine:abc", ids=IdRange(200000)).name == "abc-u200000"


def make_folder(base, name, owner, *, keep=False, processes=()):
    folder = base / f"{sandbox.SANDBOX_PREFIX}{name}-x1"
    folder.mkdir()
    (folder / "owner").write_text(owner)
    if keep:
        (folder / "keep").write_text("1")
    for file, pid in zip(("pid", "init"), processes, strict=False):
        (folder / file).write_text(f"{pid}:{process_start_time(pid)}")
    return folder


def test_the_sweep_removes_dead_runs_folders_and_leaves_live_and_kept_ones(tmp_path):
    dead = owner_token(pid=2**22 + 1)  # no such process
    gone = make_folder(tmp_path, "aaaaaa", dead)
    live = make_folder(tmp_path, "bbbbbb", owner_token())
    kept = make_folder(tmp_path, "cccccc", dead, keep=True)
    assert sandbox.remove_stale_sandboxes(tmp_path, dry_run=True) == [gone.name]
    assert gone.exists()
    removed = sandbox.remove_stale_sandboxes(tmp_path)
    assert removed == [gone.name]
    assert live.exists()
    assert kept.exists()
    assert sandbox.remove_stale_sandboxes(tmp_path, include_kept=True) == [kept.name]
    assert sandbox.remove_stale_sandboxes(tmp_path, run_id="bbbbbb") == [live.name]
    assert not list(tmp_path.iterdir())


def test_the_sweep_kills_a_dead_runs_sandbox_but_never_a_reused_pid(tmp_path):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as survivor:
        folder = make_folder(tmp_path, "dddddd", owner_token(pid=2**22 + 1))
        # The recorded process is the survivor's pid with another start time: a reused pid.
        (folder / "init").write_text(f"{survivor.pid}:1")
        sandbox.remove_stale_sandboxes(tmp_path)
        assert survivor.poll() is None
        with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as child:
            make_folder(tmp_path, "eeeeee", owner_token(pid=2**22 + 1), processes=(child.pid,))
            sandbox.remove_stale_sandboxes(tmp_path)
            assert child.wait(timeout=10) == -9
        survivor.kill()


def test_a_missing_host_tool_is_named_with_its_package(monkeypatch):
    from pytest_vlanlb.host import setup

    real = setup.shutil.which
    monkeypatch.setattr(setup.shutil, "which", lambda t: None if t == "unshare" else real(t))
    with pytest.raises(
        PreflightError,
        match=r"^document mode's sandbox: missing: unshare: install util-linux \(`vlanlb",
    ):
        sandbox.check_host_tools()


def test_without_a_crun_document_mode_says_how_to_get_one(monkeypatch, tmp_path):
    from pytest_vlanlb.host import setup

    real = setup.shutil.which
    monkeypatch.setattr(setup, "PRIVATE_CRUN", tmp_path / "crun")  # not unpacked here
    monkeypatch.setattr(setup.shutil, "which", lambda t: None if t == "crun" else real(t))
    with pytest.raises(PreflightError, match=r"needs crun: run `vlanlb setup` \(it unpacks"):
        sandbox.check_host_tools()
    (tmp_path / "crun").write_text("#!/bin/sh\n")
    (tmp_path / "crun").chmod(0o755)
    sandbox.check_host_tools()  # its own, once unpacked
    assert 'crun = ["' + str(tmp_path / "crun") in sandbox.sandbox_containers_conf(None)


def test_a_sandbox_that_cannot_be_made_says_why(tmp_path):
    with pytest.raises(PreflightError, match="could not make its sandbox"):
        sandbox.start_sandbox("ffffff", tmp_path / "no-such-store", ("eth0",))
    assert not list(sandbox.sandbox_base().glob(f"{sandbox.SANDBOX_PREFIX}ffffff-*"))
