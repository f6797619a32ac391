"""Where the packets went, from netfilter's own trace: `nft monitor trace` in the router's
network namespace while only the probe's packets carry `meta nftrace set 1` (a rule of ours,
in a chain that runs before all others; lab/tracing.py writes it and removes it).

The trace names every rule a traced packet met with its verdict, the chain policies that
decided, and the packet as each chain saw it (so a NAT rewrite shows as the destination
before and after). It is turned into the counters' model (`Move`s of `RuleCount`s, the rule
said in iptables' own words where iptables-nft manages the table), so one walk and one
drawing serve both sources; `rewrites` adds what the counters cannot see.

iptables-nft keeps its rules in nft tables; the trace names a rule by its nft handle, and its
position in the chain (iptables' rule number) is that handle's place in `nft -a list
ruleset`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from .counters import (
    OURS,
    XTABLES_FAMILIES,
    XTABLES_NAMES,
    Counters,
    ListedRule,
    Move,
    RuleCount,
    nft_action,
    nft_rules,
    uncounted,
)

#: The table of ours that marks the probe's packets (never one of the router's own).
TRACE_TABLE = f"{OURS}trace"

_LINE = re.compile(
    r"^trace id (?P<id>\S+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+) "
    r"(?P<kind>packet|rule|verdict|policy|unknown)(?::)? ?(?P<rest>.*?)\s*$"
)
_RULE = re.compile(r"^(?P<text>.*?)(?: # handle (?P<handle>\d+))? \(verdict (?P<verdict>[^)]*)\)$")
_FIELDS = ("ip saddr", "ip daddr", "tcp sport", "tcp dport", "udp sport", "udp dport")


@dataclass(frozen=True)
class TraceLine:
    """One line of `nft monitor trace`."""

    id: str  # the traced packet's id
    family: str
    table: str
    chain: str
    kind: str  # packet, rule, verdict, policy
    text: str  # the packet's fields, or the rule (without its counter)
    handle: int | None = None
    verdict: str = ""  # accept, drop, continue, jump X, ... (a policy's too)


def parse_trace(text: str) -> list[TraceLine]:
    lines = []
    for raw in text.splitlines():
        found = _LINE.match(raw.strip())
        if found is None:
            continue
        kind, rest = found["kind"], found["rest"]
        handle, verdict = None, ""
        if kind == "rule" and (rule := _RULE.match(rest)):
            rest, verdict = uncounted(rule["text"]), rule["verdict"]
            handle = int(rule["handle"]) if rule["handle"] else None
        elif kind in ("policy", "verdict"):
            rest, verdict = "", rest.strip()
        lines.append(
            TraceLine(
                found["id"],
                found["family"],
                found["table"],
                found["chain"],
                kind,
                rest,
                handle,
                verdict,
            )
        )
    return lines


def listed_rules(ruleset: str) -> dict[tuple[str, str, str, int], ListedRule]:
    """(family, table, chain, handle) -> the rule as the listing has it."""
    return {(r.family, r.table, r.chain, r.handle): r for r in nft_rules(ruleset)}


def _xtables(family: str, table: str) -> bool:
    return family in XTABLES_FAMILIES and table in XTABLES_NAMES


def trace_moves(lines: list[TraceLine], ruleset: str, counters: Counters) -> list[Move]:
    """The rules and policies the traced packets met, with how many packets met each, as the
    counters would have moved (in the order first met). `counters`: a reading of the router
    (iptables-save's words for the tables iptables-nft manages); `ruleset`: `nft -a list
    ruleset`, for positions."""
    listed = listed_rules(ruleset)
    by_place = {(c.table, c.chain, c.number): c for c in counters.values()}
    met: dict[RuleCount, set[str]] = defaultdict(set)
    for line in lines:
        if line.table == TRACE_TABLE or line.kind not in ("rule", "policy"):
            continue
        xtables = _xtables(line.family, line.table)
        table = line.table if xtables else f"{line.family} {line.table}"
        if line.kind == "policy":
            policy = line.verdict.upper() if xtables else line.verdict
            counter = by_place.get((table, line.chain, 0)) or RuleCount(
                table, line.chain, 0, policy, 0, 0
            )
        else:
            place = listed.get((line.family, line.table, line.chain, line.handle or -1))
            number = place.position if place else 0
            known = by_place.get((table, line.chain, number))
            if known is not None and number:
                counter = known
            else:
                spec = uncounted(place.text) if place else line.text
                hook = place.hook if place else ""
                counter = RuleCount(table, line.chain, number, spec, 0, 0, nft_action(spec), hook)
        met[counter].add(line.id)
    return [Move(counter, len(ids)) for counter, ids in met.items()]


@dataclass(frozen=True)
class Rewrite:
    """A field of the packets changed on the way (NAT), as the chains saw them."""

    field: str  # "ip daddr", "tcp dport", ...
    before: str
    after: str
    where: str  # the chain that first saw the new value ("ip filter FORWARD")


def rewrites(lines: list[TraceLine]) -> list[Rewrite]:
    """What changed in the traced packets between the chains (the first packet's story;
    the others of a probe change the same way)."""
    first = next((line.id for line in lines if line.kind == "packet"), None)
    seen: dict[str, str] = {}
    changed: list[Rewrite] = []
    for line in lines:
        if line.id != first or line.kind != "packet":
            continue
        words = line.text.split()
        for field in _FIELDS:
            name = field.split()
            for index in range(len(words) - 2):
                if words[index : index + 2] == name:
                    value = words[index + 2]
                    if field in seen and seen[field] != value:
                        where = f"{line.family} {line.table} {line.chain}"
                        changed.append(Rewrite(field, seen[field], value, where))
                    seen[field] = value
    return changed
