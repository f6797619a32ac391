"""Exec sessions seen from the host: each podman exec session has a conmon process, which
lingers for podman's exit_command_delay (30 s with our service) after the session ends and
then starts `podman container cleanup` (a whole podman process). The benchmarks count the
sessions a run opened, and let the previous run's cleanups finish before timing the next, so
that no run pays for another's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_vlanlb.waiting import wait_until

DRAIN_SECONDS = 60.0


def exec_conmons(since: float = 0.0) -> int:
    """conmon processes of exec sessions (alive, or lingering), started after `since`."""
    ticks = os.sysconf("SC_CLK_TCK")
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if not cmdline[0].endswith(b"conmon") or b"--exec-attach" not in cmdline:
            continue
        started = boot + int(stat.rsplit(")", 1)[1].split()[19]) / ticks
        count += started >= since
    return count


def drain() -> None:
    """Wait (at most DRAIN_SECONDS) until no exec session's conmon is left."""
    if not wait_until(lambda: exec_conmons() == 0, timeout=DRAIN_SECONDS, interval=0.5):
        print(f"note: {exec_conmons()} exec conmons still alive after {DRAIN_SECONDS:g}s")
