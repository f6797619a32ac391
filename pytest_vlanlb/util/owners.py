"""Who made a thing: a process named by host, pid and start time (a pid reused by another
process is not the owner), and whether that process still runs."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_start_time(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot, or None if it is gone.

    Together with the pid it identifies a process even after the pid is reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after the closing ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # killed, not yet reaped: already dead (a zombie holds nothing)
        return None
    return fields[19]


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{process_start_time(pid)}"


def owner_is_alive(token: str) -> bool:
    """True while the process that made an object still runs (on this host).

    Objects made on another host are treated as alive: we cannot tell, so never remove them.
    """
    try:
        host, pid, start = token.split(":")
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    return pid.isdigit() and process_start_time(int(pid)) == start


OWNER_FILE = "owner"
KEEP_FILE = "keep"


def claim(folder: Path, *, keep: bool = False) -> None:
    """Mark a folder as this process's (and, with keep, as one to leave when it dies)."""
    (folder / OWNER_FILE).write_text(owner_token())
    if keep:
        (folder / KEEP_FILE).write_text("1")


def dead_owners(base: Path, pattern: str, *, include_kept: bool = False) -> list[Path]:
    """The folders matching `pattern` under `base` whose owner has died: the one sweep of what
    dead runs left on disk (a kept one only when asked for; an unclaimed one never)."""
    found = []
    for folder in sorted(base.glob(pattern)):
        try:
            owner = (folder / OWNER_FILE).read_text()
        except OSError:
            continue
        if not owner_is_alive(owner) and (include_kept or not (folder / KEEP_FILE).exists()):
            found.append(folder)
    return found
