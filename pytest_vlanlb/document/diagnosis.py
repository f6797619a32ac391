"""Judging a document's command, and explaining a failed one in network terms.

A command is judged against what the text promises (its exit status, the promises read from
the prose around it). Around a probe (a ping, a curl) the routers' packet counters are read
before and after; if it failed, they say which rule took the packets, which step of the
documents wrote that rule, and how to fix it.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

import podman
from podman.errors import APIError, NotFound

from ..observation.counters import Move, explain, snapshot
from ..observation.settling import Readings, moved
from ..observation.walk import Walk, walk_through
from ..podman.container import Container
from ..podman.lookup import container_named

if TYPE_CHECKING:
    from .model import Written

#: Matches iptables-save adds to a rule that a document need not type.
_CANONICAL = {"-m tcp", "-m udp"}


def read_counters(client: podman.PodmanClient, routers: list[str]) -> Readings:
    """The routers' counters as the lab's tests and the grader read them (nft included), one
    exec per command: no shell of ours stays in a document's container."""
    readings: Readings = {}
    for name in routers:
        try:
            router = Container(container_named(client, name), shells=False)
            readings[name] = snapshot(router) if router.has_command("iptables-save") else None
        except (NotFound, APIError):
            readings[name] = None
    return readings


def diagnose(before: Readings, after: Readings, written: list[Written]) -> list[str]:
    """What the routers' counters saw while the failed probe ran: where its packets went,
    which step wrote the rule that took them, and the fix."""
    lines = []
    for router, moves in moved(before, after).items():
        if moves is None:
            lines.append(f"{router}: its packet counters cannot be read (iptables-save)")
            continue
        lines.append(f"{router} counters while it ran: {explain(moves)}")
        lines += blame(moves, written)
    return lines


def walks(before: Readings, after: Readings, command: str, answered: bool) -> list[Walk]:
    """The failed probe's walk through each router whose counters moved while it ran; through
    every readable router when none moved (its packets were lost before any counter)."""
    readable = {r: moves for r, moves in moved(before, after).items() if moves is not None}
    chosen = {router: moves for router, moves in readable.items() if moves} or readable
    return [walk_through(moves, router, [command], answered) for router, moves in chosen.items()]


def blame(moves: list[Move], written: list[Written]) -> list[str]:
    """Which step wrote the rule that dropped the packets, and how to fix it."""
    dnat = any(m.counter.target == "DNAT" for m in moves)
    lines = []
    for move in moves:
        counter = move.counter
        if counter.table != "filter" or counter.target not in ("DROP", "REJECT"):
            continue
        writer = next(
            (
                w
                for w in reversed(written)
                if w.rule.verb in ("-A", "-I")
                and w.rule.table == counter.table
                and w.rule.chain == counter.chain
                and normal_spec(w.rule.spec) == normal_spec(tuple(shlex.split(counter.spec)))
            ),
            None,
        )
        who = (
            f"written by {writer.where}: `{one_line(writer.source)}`"
            if writer
            else "a rule no step of the documents wrote"
        )
        lines.append(f"the {counter.chain} rule {counter.number} `{counter.spec}` was {who}")
        if dnat and counter.chain == "FORWARD" and writer is not None:
            target = f"-j {counter.target}"
            fixed = one_line(writer.source).replace(
                target, f"-m conntrack ! --ctstate DNAT {target}", 1
            )
            lines.append(
                "FORWARD sees packets after PREROUTING's DNAT, so this rule also takes the "
                "VIP's traffic on its way to the pod. Fix: spare DNAT'ed connections, "
                f"`{fixed}` (Kubernetes' KUBE-FORWARD accepts them likewise)"
            )
    return lines


def normal_spec(spec: tuple[str, ...]) -> list[str]:
    """A rule as iptables-save prints it and as a document types it, made comparable."""
    words = list(spec)
    out: list[str] = []
    i = 0
    while i < len(words):
        pair = " ".join(words[i : i + 2])
        if pair in _CANONICAL:
            i += 2
            continue
        out.append(re.sub(r"/32$", "", words[i]))
        i += 1
    return out


def one_line(source: str) -> str:
    return " ".join(source.replace("\\\n", " ").split())
