"""Packet counters: which rules a probe's packets hit, said in network terms.

`iptables-save -c` is read before and after a probe; the rules (and chain policies) whose
counters moved explain what happened to the packets, e.g. "3 packets dropped by filter
FORWARD rule 1 `-i eth1 -o eth2 -j DROP` after DNAT". The same reading serves grading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .node import Node

_COUNTED_RULE = re.compile(r"^\[(\d+):(\d+)\] -A (\S+)(?: (.*))?$")
_CHAIN = re.compile(r"^:(\S+) (\S+) \[(\d+):(\d+)\]$")


@dataclass(frozen=True)
class RuleCount:
    """One iptables rule's (or chain policy's) packet and byte counts, from `iptables-save -c`."""

    table: str
    chain: str
    number: int  # 1-based position in its chain; 0 for the chain's policy
    spec: str  # the rule without "-A CHAIN", or the policy ("ACCEPT")
    packets: int
    bytes: int

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.table, self.chain, self.number, self.spec)

    @property
    def target(self) -> str:
        if self.number == 0:
            return self.spec
        match = re.search(r"-j (\S+)", self.spec)
        return match[1] if match else ""


def parse_counters(dump: str) -> dict[tuple[str, str, int, str], RuleCount]:
    """Parse `iptables-save -c` (all tables) into counters keyed by table/chain/number/spec."""
    counters: dict[tuple[str, str, int, str], RuleCount] = {}
    table = ""
    positions: dict[tuple[str, str], int] = {}
    for line in dump.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif chain := _CHAIN.match(line):
            name, policy, packets, size = chain.groups()
            if policy != "-":  # user chains have no policy
                c = RuleCount(table, name, 0, policy, int(packets), int(size))
                counters[c.key] = c
        elif rule := _COUNTED_RULE.match(line):
            packets, size, name, spec = rule.groups()
            number = positions.get((table, name), 0) + 1
            positions[(table, name)] = number
            c = RuleCount(table, name, number, spec or "", int(packets), int(size))
            counters[c.key] = c
    return counters


@dataclass(frozen=True)
class Move:
    """A counter that moved during a probe."""

    counter: RuleCount
    packets: int

    def sentence(self, after_dnat: bool = False) -> str:
        c = self.counter
        plural = "packet" if self.packets == 1 else "packets"
        if c.number == 0:
            return f"{self.packets} {plural} took the {c.table} {c.chain} policy {c.spec}"
        verb = _VERBS.get(c.target, "matched by")
        where = f"{c.table} {c.chain} rule {c.number} `{c.spec}`"
        tail = " after DNAT" if after_dnat and c.table == "filter" and c.target == "DROP" else ""
        return f"{self.packets} {plural} {verb} {where}{tail}"


_VERBS = {
    "DROP": "dropped by",
    "REJECT": "rejected by",
    "ACCEPT": "accepted by",
    "DNAT": "destination-NATed by",
    "SNAT": "source-NATed by",
    "MASQUERADE": "masqueraded by",
    "LOG": "logged by",
}


def diff(
    before: dict[tuple[str, str, int, str], RuleCount],
    after: dict[tuple[str, str, int, str], RuleCount],
) -> list[Move]:
    moves = []
    for key, counter in after.items():
        old = before.get(key)
        delta = counter.packets - (old.packets if old else 0)
        if delta > 0:
            moves.append(Move(counter, delta))
    return moves


def explain(moves: list[Move]) -> str:
    """One line per moved rule, NAT first (it happens first), then filtering."""
    if not moves:
        return "no iptables rule or policy on the router counted a packet"
    dnat = any(m.counter.target == "DNAT" for m in moves)
    order = {"raw": 0, "mangle": 1, "nat": 2, "filter": 3}
    moves = sorted(
        moves, key=lambda m: (order.get(m.counter.table, 9), m.counter.chain, m.counter.number)
    )
    return "; ".join(m.sentence(after_dnat=dnat) for m in moves)


def snapshot(router: Node) -> dict[tuple[str, str, int, str], RuleCount]:
    return parse_counters(router.exec("iptables-save", "-c").stdout)


T = TypeVar("T")


@dataclass(frozen=True)
class Observation(Generic[T]):
    """A probe's result with what the router's counters saw meanwhile."""

    result: T
    moves: list[Move]

    def explain(self) -> str:
        return f"{self.result}\n  router counters: {explain(self.moves)}"

    def moved(self, table: str, chain: str, target: str) -> int:
        return sum(
            m.packets
            for m in self.moves
            if (m.counter.table, m.counter.chain, m.counter.target) == (table, chain, target)
        )


def observe(router: Node, probe: Callable[[], T]) -> Observation[T]:
    before = snapshot(router)
    result = probe()
    return Observation(result, diff(before, snapshot(router)))
