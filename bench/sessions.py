"""Exec sessions seen from the host. Each podman exec session has a conmon process; when the
session's command ends, a second conmon (its child) waits podman's exit_command_delay (30 s
with our service) and then starts `podman container cleanup`, a whole podman process. The
benchmarks count the sessions a run opened, and let the sessions that already ended finish
their cleanup before timing the next run, so that no run pays for another's."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_vlanlb.util.waiting import wait_until

DRAIN_SECONDS = 60.0


@dataclass(frozen=True)
class Conmon:
    pid: int
    parent: int
    session: str  # the exec session's id (conmon's -u)
    started: float  # epoch seconds


def exec_conmons() -> list[Conmon]:
    ticks = os.sysconf("SC_CLK_TCK")
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if not argv[0].endswith("conmon") or "--exec-attach" not in argv or "-u" not in argv:
            continue
        session = argv[argv.index("-u") + 1]
        found.append(
            Conmon(int(proc.name), int(fields[1]), session, boot + int(fields[19]) / ticks)
        )
    return found


def sessions_since(epoch: float) -> int:
    """Exec sessions (distinct ids) whose conmon started after `epoch`."""
    return len({c.session for c in exec_conmons() if c.started >= epoch})


def ended_sessions() -> int:
    """Sessions whose command ended and whose cleanup is pending (a conmon under a conmon)."""
    conmons = exec_conmons()
    pids = {c.pid for c in conmons}
    return sum(c.parent in pids for c in conmons)


def drain() -> None:
    """Wait (at most DRAIN_SECONDS) until no ended session's cleanup is pending."""
    if not wait_until(lambda: ended_sessions() == 0, timeout=DRAIN_SECONDS, interval=0.5):
        print(
            f"note: {ended_sessions()} ended exec sessions still pending after {DRAIN_SECONDS:g}s"
        )
