"""Helper processes we start (our podman API, our ssh tunnel): tied to pytest's life."""

from __future__ import annotations

import ctypes
import signal
import subprocess

PR_SET_PDEATHSIG = 1


def _on_parent_death(signum: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)


def die_with_parent() -> None:
    """For preexec_fn: the kernel ends the process when pytest dies, even by SIGKILL."""
    _on_parent_death(signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; waits for it either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kill_with_parent() -> None:
    """For preexec_fn: SIGKILL when pytest dies, for a child that ignores SIGTERM (unshare)."""
    _on_parent_death(signal.SIGKILL)
