"""Helper processes we start (our podman service, our ssh tunnel): tied to pytest's life."""

from __future__ import annotations

import ctypes
import signal
import subprocess


def die_with_parent() -> None:
    """For preexec_fn: the kernel ends the process when pytest dies, even by SIGKILL."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


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
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
