"""A document sandbox's life as the runner holds it (podman-backed, no document): entered and
ended through its init's pidfd, kept and entered again by `vlanlb enter`, removed whole."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from host_state import host_state, sandbox_processes
from kept import kept_by_this_run

from pytest_vlanlb.document.sandbox import start_sandbox
from pytest_vlanlb.document.store import document_image_store
from pytest_vlanlb.host.naming import RunNames
from pytest_vlanlb.util.owners import process_start_time
from pytest_vlanlb.util.waiting import wait_until

VLANLB = [sys.executable, "-m", "pytest_vlanlb"]


@pytest.fixture(scope="module")
def store() -> Path:
    return document_image_store(None, lambda _: None)


def test_a_sandbox_whose_init_ended_is_never_entered_again(store):
    """Its init gone, its pid may be another process's: the gate enters through the pidfd,
    which cannot name another process, and says what happened."""
    before = host_state()
    sandbox = start_sandbox(RunNames.new().run_id, store, ("eth0",))
    try:
        with sandbox.popen(["hostname"], env=sandbox.environment(), stdout=subprocess.PIPE) as p:
            assert p.communicate()[0].decode().strip() == "vlanlb-sandbox"
        signal.pidfd_send_signal(sandbox.pidfd, signal.SIGKILL)
        assert wait_until(lambda: process_start_time(sandbox.init_pid) is None, timeout=10)
        with sandbox.popen(["true"], env=sandbox.environment(), stderr=subprocess.PIPE) as entering:
            _, err = entering.communicate(timeout=10)
        assert entering.returncode == 125
        assert "the document sandbox cannot be entered: its init has ended" in err.decode()
    finally:
        sandbox.close()
    assert before.differences(host_state()) == {}


def test_a_kept_sandbox_is_entered_by_its_run_and_removed_whole(store, tmp_path):
    before = host_state()
    run_id = RunNames.new().run_id
    keeper = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pytest_vlanlb.document.sandbox import start_sandbox\n"
        f"start_sandbox({run_id!r}, Path({str(store)!r}), ('eth0',), keep=True)\n"
    )
    with kept_by_this_run(run_id):  # a run killed here: the next run removes it by its id
        subprocess.run([sys.executable, "-c", keeper], check=True, timeout=60)
        try:
            # The process that made it has ended; the sandbox lives on, and is entered by its id.
            entered = subprocess.run(
                [*VLANLB, "enter", run_id, "sh", "-c", "hostname; id -u; podman ps -a -q | wc -l"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert entered.returncode == 0, entered.stderr
            assert entered.stdout.split() == ["vlanlb-sandbox", "0", "0"]
            missing = subprocess.run(
                [*VLANLB, "enter", "000000"], capture_output=True, text=True, check=False
            )
            assert missing.returncode == 2
            assert missing.stderr.strip() == (
                "vlanlb: no running document sandbox of run 000000 "
                "(`vlanlb cleanup --dry-run` lists them)"
            )
        finally:
            cleanup = subprocess.run(
                [*VLANLB, "cleanup", "--run", run_id], capture_output=True, text=True, check=False
            )
        assert f"removed document sandbox vlanlb-sandbox-{run_id}-" in cleanup.stdout
    assert wait_until(lambda: not sandbox_processes(), timeout=10)
    assert before.differences(host_state()) == {}
