"""The grader's bounded-command wrapper, run by this machine's dash and by busybox's ash
(the shells of Debian and alpine containers): status, output, the bound, the output cap."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from pytest_vlanlb.grading.bounded import OUTPUT_LIMIT, unwrap, wrap
from pytest_vlanlb.podman.container import ExecResult

BUSYBOX = Path(__file__).resolve().parents[2] / ".cache" / "busybox-static" / "bin" / "busybox"


@pytest.fixture(params=["dash", "busybox-ash"])
def shell(request):
    if request.param == "dash":
        return ["/bin/dash"]
    if not BUSYBOX.exists():
        pytest.fail(f"{BUSYBOX} is missing: run scripts/setup")
    return [str(BUSYBOX), "sh"]


def bounded(shell, command, bound):
    argv = wrap(command, bound)
    assert argv[0] == "/bin/sh"
    raw = subprocess.run([*shell, *argv[1:]], capture_output=True, check=False, timeout=30)
    result = ExecResult(tuple(argv), raw.returncode, raw.stdout.decode(), raw.stderr.decode())
    return unwrap(command, result, bound)


def test_a_command_keeps_its_status_and_output(shell):
    result, killed = bounded(shell, ("sh", "-c", "echo out; echo err >&2; exit 3"), 4.0)
    assert not killed
    assert (result.rc, result.stdout, result.stderr.strip()) == (3, "out\n", "err")


def test_a_hanging_command_is_killed_at_the_bound(shell):
    start = time.monotonic()
    result, killed = bounded(shell, ("sleep", "30"), 0.3)
    assert killed
    assert result.rc == 124
    assert "did not finish within 0.3s" in result.stderr
    assert time.monotonic() - start < 5


def test_an_endless_answer_is_cut_at_the_limit(shell):
    result, _ = bounded(shell, ("sh", "-c", "yes hello"), 4.0)
    assert len(result.stdout) == OUTPUT_LIMIT
    assert result.stdout.startswith("hello\nhello\n")


def test_the_bound_is_wall_time_even_when_the_polls_are_slow(shell, tmp_path, monkeypatch):
    """On a slow machine (a guest under TCG) each poll's `sleep` overruns; the bound must
    still be the time that passed, not the sum of the sleeps asked for. Here every `sleep`
    the wrapper calls takes 0.4 s: summing its asks (2, 4, 8 ... ms) would need about ten
    polls, 4 s, to reach 0.3 s."""
    slow = tmp_path / "sleep"
    slow.write_text("#!/bin/sh\nexec /bin/sleep 0.4\n")
    slow.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    start = time.monotonic()
    result, killed = bounded(shell, ("/bin/sleep", "30"), 0.3)
    assert killed
    assert result.rc == 124
    assert time.monotonic() - start < 2.0
