"""Per-run names and labels, so a lab never collides with a user's own `a`, `b` or `router`
and a crashed run's leftovers can be told apart from a live run's objects."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from ..util.owners import owner_token

LABEL_RUN = "io.vlanlb.run"
LABEL_OWNER = "io.vlanlb.owner"  # "<hostname>:<pid>:<process start time>"
LABEL_KEEP = "io.vlanlb.keep"
LABEL_NODE = "io.vlanlb.node"
#: Host links cannot carry labels; their ifalias carries the same facts.
LINK_ALIAS_PREFIX = "vlanlb "
IFNAMSIZ = 15


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


def kept_message(what: str, run_id: str, details: str) -> str:
    """What --vlanlb-keep leaves, how to use it, and how to remove it."""
    return (
        f"kept {what} {run_id} (--vlanlb-keep):\n{details}\n"
        f"remove it with: vlanlb cleanup --run {run_id}"
    )
