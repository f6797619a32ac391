"""Per-run names, labels and the liveness of a run's owner."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_vlanlb.host.naming import LABEL_KEEP, LABEL_OWNER, LABEL_RUN, LinkAlias, RunNames
from pytest_vlanlb.util.owners import owner_is_alive, owner_token


def test_names_are_prefixed_per_run_and_never_the_bare_workshop_names():
    first, second = RunNames.new(), RunNames.new()
    assert first.run_id != second.run_id
    for names in (first, second):
        assert names.container("a") == f"vlb-{names.run_id}-a"
        assert names.container("router") not in ("a", "b", "router")
        assert names.network("public") == f"vlb-{names.run_id}-public"


def test_link_names_fit_the_kernel_limit():
    names = RunNames.new()
    assert len(names.link("v4094p")) <= 15
    with pytest.raises(ValueError, match="longer than 15"):
        names.link("x" * 10)


def test_labels_carry_run_owner_and_keep():
    names = RunNames.new(keep=True)
    labels = names.labels(extra="1")
    assert labels[LABEL_RUN] == names.run_id
    assert labels[LABEL_OWNER] == owner_token()
    assert labels[LABEL_KEEP] == "1"
    assert labels["extra"] == "1"
    assert LABEL_KEEP not in RunNames.new().labels()


def test_link_alias_round_trip():
    names = RunNames.new(keep=True)
    parsed = LinkAlias.parse(names.link_alias)
    assert parsed == LinkAlias(names.run_id, names.owner, keep=True)
    assert LinkAlias.parse("someone else's link") is None
    assert LinkAlias.parse(None) is None


def test_owner_is_alive_while_the_process_runs_and_not_after():
    assert owner_is_alive(owner_token())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = owner_token(child.pid)
    assert owner_is_alive(token)
    child.kill()
    child.wait()
    assert not owner_is_alive(token)


def test_a_reused_pid_is_not_mistaken_for_the_owner():
    host, pid, _start = owner_token().split(":")
    assert not owner_is_alive(f"{host}:{pid}:1")
    assert int(pid) == os.getpid()


def test_objects_of_other_hosts_count_as_alive():
    assert owner_is_alive("some-other-host:1:1")
    assert not owner_is_alive("garbage")


def test_stale_service_folders_of_dead_runs_are_removed(tmp_path):
    from pytest_vlanlb.podman.api import remove_stale_workdirs

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead, alive, foreign = (tmp_path / f"vlanlb-podman-{n}" for n in ("dead", "alive", "x"))
    for folder in (dead, alive, foreign):
        folder.mkdir()
    (dead / "owner").write_text(owner_token(child.pid).replace(":None", ":1"))
    (alive / "owner").write_text(owner_token())
    remove_stale_workdirs(tmp_path)
    assert not dead.exists()
    assert alive.exists()
    assert foreign.exists()  # no owner file: not ours to judge


def test_a_killed_process_not_yet_reaped_is_not_an_owner():
    """A run killed with SIGKILL stays a zombie until its parent reaps it: its leftovers must
    count as a dead run's at once (seen: the next run started before the reaping)."""
    import os
    import signal
    import subprocess

    from pytest_vlanlb.util.owners import owner_is_alive, owner_token, process_start_time

    child = subprocess.Popen(["sleep", "60"])
    token = owner_token(child.pid)
    assert owner_is_alive(token)
    os.kill(child.pid, signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
    assert process_start_time(child.pid) is None
    assert not owner_is_alive(token)
    child.wait()
