"""Judging a document's command, and explaining a failed one in network terms.

A command is judged against what the text promises (its exit status, the promises read from
the prose around it). Around a probe (a ping, a curl) the routers' packet counters are read
before and after; if it failed, they say which rule took the packets, which step of the
documents wrote that rule, and how to fix it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

import podman
from podman.errors import APIError, NotFound

from ..counters import Move, diff, explain, parse_counters
from ..lookup import container_named
from ..node import exec_in

if TYPE_CHECKING:
    from .runner import Outcome, Written

#: Matches iptables-save adds to a rule that a document need not type.
_CANONICAL = {"-m tcp", "-m udp"}


def judge(outcome: Outcome, resolve: Callable[[str], str]) -> None:
    """Whether the command did what the text says: its status, and each promise."""
    observed, typed = outcome.observed, outcome.typed
    assert observed is not None
    expects_failure = any(p.expects_failure for p in typed.promises)
    if expects_failure:
        outcome.expected_status = "a failure (the document says so)"
        outcome.status_ok = observed.status != 0
    elif typed.command.may_fail:
        outcome.expected_status = "any (the document discards its errors)"
        outcome.status_ok = not observed.timed_out
    else:
        outcome.expected_status = "exit status 0"
        outcome.status_ok = observed.status == 0
        if observed.status not in (0, None) and not outcome.plan.notes:
            # Not for a command the runner rewrote (apk add -> a tool check): its failure says
            # the image lacks the tool, which nothing here can install; no text allows that.
            output = observed.stdout + observed.stderr
            outcome.allowed = next(
                (a for a in typed.allowances if a.covers(typed.source, output)), None
            )
            outcome.status_ok = outcome.allowed is not None
    outcome.checks = [(p, p.check(observed, resolve)) for p in typed.promises]


def router_dump(client: podman.PodmanClient, name: str) -> str | None:
    """A router's `iptables-save -c`, or None where it cannot be read."""
    try:
        container = container_named(client, name)
        result = exec_in(container, ["iptables-save", "-c"])
    except (NotFound, APIError):
        return None
    return result.stdout if result.ok else None


def read_dumps(client: podman.PodmanClient, routers: list[str]) -> dict[str, str | None]:
    return {router: router_dump(client, router) for router in routers}


def diagnose(
    before: dict[str, str | None],
    after: dict[str, str | None],
    written: list[Written],
) -> list[str]:
    """What the routers' counters saw while the failed probe ran: where its packets went,
    which step wrote the rule that took them, and the fix."""
    lines = []
    for router, old in before.items():
        new = after.get(router)
        if old is None or new is None:
            lines.append(f"{router}: its packet counters cannot be read (iptables-save)")
            continue
        moves = diff(parse_counters(old), parse_counters(new))
        lines.append(f"{router} counters while it ran: {explain(moves)}")
        lines += blame(moves, written)
    return lines


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
