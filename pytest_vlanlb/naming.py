"""Per-run names and labels, so a lab never collides with a user's own `a`, `b` or `router`
and a crashed run's leftovers can be told apart from a live run's objects."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

LABEL_RUN = "io.vlanlb.run"
LABEL_OWNER = "io.vlanlb.owner"  # "<hostname>:<pid>:<process start time>"
LABEL_KEEP = "io.vlanlb.keep"
LABEL_NODE = "io.vlanlb.node"
#: Host links cannot carry labels; their ifalias carries the same facts.
LINK_ALIAS_PREFIX = "vlanlb "
IFNAMSIZ = 15


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


@dataclass(frozen=True)
class RunNames:
    """All names of one run's objects, derived from a short random run id."""

    run_id: str
    owner: str = field(default_factory=owner_token)
    keep: bool = False

    @classmethod
    def new(cls, keep: bool = False) -> RunNames:
        return cls(run_id=secrets.token_hex(3), keep=keep)

    @property
    def prefix(self) -> str:
        return f"vlb-{self.run_id}"

    def container(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def network(self, segment: str) -> str:
        return f"{self.prefix}-{segment}"

    def link(self, suffix: str) -> str:
        """A host link name; kernel names are at most 15 characters."""
        name = f"vlb{self.run_id}{suffix}"
        if len(name) > IFNAMSIZ:
            raise ValueError(f"link name {name!r} is longer than {IFNAMSIZ} characters")
        return name

    def labels(self, **extra: str) -> dict[str, str]:
        labels = {LABEL_RUN: self.run_id, LABEL_OWNER: self.owner}
        if self.keep:
            labels[LABEL_KEEP] = "1"
        labels.update(extra)
        return labels

    @property
    def link_alias(self) -> str:
        keep = " keep=1" if self.keep else ""
        return f"{LINK_ALIAS_PREFIX}run={self.run_id} owner={self.owner}{keep}"


@dataclass(frozen=True)
class LinkAlias:
    run_id: str
    owner: str
    keep: bool

    @classmethod
    def parse(cls, alias: str | None) -> LinkAlias | None:
        if not alias or not alias.startswith(LINK_ALIAS_PREFIX):
            return None
        fields = dict(
            part.split("=", 1) for part in alias[len(LINK_ALIAS_PREFIX) :].split() if "=" in part
        )
        if "run" not in fields or "owner" not in fields:
            return None
        return cls(fields["run"], fields["owner"], fields.get("keep") == "1")
