"""Where the packets went: a probe's walk through a router, read from the counters that moved
around it (read-only, so grading can use it on a student's router too), laid along
netfilter's hooks in the order a packet meets them, with the station where it was dropped.

A forwarded packet meets PREROUTING (raw, mangle, then nat: DNAT), the routing decision,
FORWARD (filter), then POSTROUTING (nat: SNAT, MASQUERADE); one for the router itself goes to
INPUT instead. A rule of a user-defined chain is placed at the hook its chain serves
(kube-proxy's KUBE-SEP-… and nftables `endpoint-…` chains DNAT in PREROUTING; KUBE-FORWARD
filters in FORWARD; KUBE-POSTROUTING masquerades in POSTROUTING). The kernel's own drops
(forwarding off, no route) stop the walk at the routing decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .counters import Move, Observation, observed, story
from .words import KERNEL, Fact, Picked

#: The stations of a walk through a router, in the order a packet meets them (OUTPUT: the
#: router's own packets, which leave through POSTROUTING too).
HOOKS = ("PREROUTING", "ROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


@dataclass(frozen=True)
class Station:
    """One hook of the walk, with what its rules did to the probe's packets."""

    hook: str
    facts: tuple[Fact, ...]
    #: What stopped the packets here: "drop" (a rule, or the kernel at ROUTING), "reject"
    #: (a rule that answers with an error instead), or "" (they went on).
    stopped: str


@dataclass(frozen=True)
class Walk:
    """The walk of the packets of one observation's probes through one router."""

    router: str
    probes: tuple[Any, ...]  # the probes' results (PingResult, HttpResult), as observed
    stations: tuple[Station, ...]
    answered: bool  # an answer (a reply, a greeting, a RST) came back to the client

    @property
    def stop(self) -> Station | None:
        return next((s for s in self.stations if s.stopped), None)

    @property
    def end(self) -> str:
        """How it ended: `answered` (for any of its probes), `not-reached` (dropped on the
        way), or `no-answer` (lost where no counter counts)."""
        if self.answered:
            return "answered"
        return "not-reached" if self.stop is not None else "no-answer"


def hook_of(fact: Fact) -> str:
    """The hook a fact's rule serves."""
    if isinstance(fact, Picked):
        return "PREROUTING"  # kube-proxy's nftables endpoint choice: dstnat
    counter = fact.counter
    if counter.table == KERNEL:
        return "ROUTING"
    base = getattr(counter, "hook", "").upper()  # an nft base chain says its hook itself
    if base in HOOKS:
        return base
    chain = counter.chain.upper()
    for hook in ("PREROUTING", "POSTROUTING", "FORWARD", "INPUT", "OUTPUT"):
        if hook in chain:  # the built-in chains, nft's nat-prerouting, filter-forward, ...
            return hook
    if counter.target.upper() in ("MASQUERADE", "SNAT"):
        return "POSTROUTING"
    if counter.table == "filter" or chain.startswith("FILTER-"):
        return "FORWARD"
    return "PREROUTING"  # DNAT chains: KUBE-SERVICES/SVC/SEP, service-, endpoint-, external-


def _stops(fact: Fact) -> str:
    """ "drop" or "reject" where the fact's rule ends the packets' way, else ""."""
    if isinstance(fact, Picked):
        return ""
    counter = fact.counter
    verdict = (counter.action or counter.target).lower()
    if counter.table == KERNEL or verdict == "drop":  # a rule's DROP, a policy's, the kernel's
        return "drop"
    return "reject" if verdict == "reject" else ""


def walk_of(
    observation: Observation[Any], router: str, probes: Sequence[Any] | None = None
) -> Walk:
    """The observation's walk through `router`: the stations whose counters moved, ROUTING
    always (every forwarded packet is routed), in hook order. `probes`: the results whose
    packets are walked (default: all the observation's; a probe the router made itself, as
    grading's "is b there at all?", is not the client's)."""
    if probes is None:
        seen = observation.result
        probes = list(seen) if isinstance(seen, list | tuple) else [seen]
    return walk_of_moves(observation.moves, router, probes)


def walk_of_moves(moves: Sequence[Move], router: str, probes: Sequence[Any]) -> Walk:
    """The walk of `probes` from rules met (counters that moved, or a trace's): answered
    when any of the probes was."""
    return walk_through(moves, router, probes, any(_answered(r) for r in probes))


def walk_through(moves: Sequence[Move], router: str, probes: Sequence[Any], answered: bool) -> Walk:
    """The walk of `probes` through `router` from the counters that moved while they ran:
    the stations whose counters moved, ROUTING always (every forwarded packet is routed),
    in hook order. `probes`: their results, or the commands as typed (document mode)."""
    facts = story(list(moves))
    by_hook: dict[str, list[Fact]] = {hook: [] for hook in HOOKS}
    for fact in facts:
        by_hook[hook_of(fact)].append(fact)
    stations = []
    stopped = False
    for hook in HOOKS:
        if not by_hook[hook] and hook != "ROUTING":
            continue
        verdicts = {_stops(f) for f in by_hook[hook]} - {""}
        verdict = "drop" if "drop" in verdicts else "reject" if verdicts else ""
        stations.append(Station(hook, tuple(by_hook[hook]), "" if stopped else verdict))
        stopped = stopped or bool(verdict)
    return Walk(router, tuple(probes), tuple(stations), answered)


def _answered(result: Any) -> bool:
    if hasattr(result, "received"):
        return bool(result.received)
    outcome = getattr(result, "outcome", None)
    return getattr(outcome, "value", "") in ("ok", "refused")


def recent_walks() -> list[Walk]:
    """The walks of the observations made since `counters.forget_observed()`."""
    return [walk_of(observation, router) for router, observation in observed()]
