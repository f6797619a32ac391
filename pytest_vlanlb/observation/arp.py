"""ARP requests nobody answered: evidence that a probe's packets to an address never leave.

A probe to an on-link address nobody owns waits for ARP: its packets sit in the sender's
neighbour queue and no counter anywhere moves, so silence could only be judged by waiting.
But a node answers ARP in the same pass of the kernel that receives the request (arp_process
sends the reply before it returns), unless it proxies, which may delay a reply. So when
every other node on the sender's segment has counted the request and, a reading later, none
has sent a reply for that address, nobody will: the probe cannot succeed.

Counting needs a table of ours in each of those nodes (`arp vlanlb_arp`: a set of the
addresses asked for and a set of those answered, each element with its counter), so the
plugin's own labs only, never a student's node. It is written on first use and stays with
the node (a table with hooks costs 10-20 ms of the kernel's to delete, every time; its
counts are read as differences from a watch's first reading). A node that proxies ARP
(proxy_arp, proxy_arp_pvlan, a proxy neighbour entry), checked at every watch, or has no nft
declines, and with it the evidence: the probe keeps its window. The host's end of each
segment's wire answers no ARP (host/wires.py sets it NOARP), so the lab's nodes are every
possible answer.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence

from ..podman.container import Container
from .counters import OURS

ARP_TABLE = f"{OURS}arp"

_WRITE = (
    # Declared, deleted, then written: a table a crashed probe left is replaced, not added to.
    f"table arp {ARP_TABLE}\n"
    f"delete table arp {ARP_TABLE}\n"
    f"table arp {ARP_TABLE} {{\n"
    "  set asked { type ipv4_addr; flags dynamic; counter; size 4096; }\n"
    "  set answered { type ipv4_addr; flags dynamic; counter; size 4096; }\n"
    "  chain in { type filter hook input priority 0; policy accept;\n"
    "    arp operation request update @asked { arp daddr ip }\n  }\n"
    "  chain out { type filter hook output priority 0; policy accept;\n"
    "    arp operation reply update @answered { arp saddr ip }\n  }\n"
    "}\n"
)
#: Printed before the counts when the node could answer late: a proxy flag, a proxy entry.
_PROXIES = (
    "cat /proc/sys/net/ipv4/conf/*/proxy_arp /proc/sys/net/ipv4/conf/*/proxy_arp_pvlan; "
    "ip neigh show proxy"
)
_MARK = "@@vlanlb-arp@@"
_SET = re.compile(r"set (asked|answered) \{(.*?)\n\t\}", re.S)
_ELEMENT = re.compile(r"(\d+\.\d+\.\d+\.\d+) counter packets (\d+)")

#: One node's counts: address -> (requests for it received, replies from it sent).
Counts = dict[str, tuple[int, int]]
#: The nodes whose table is written (a node is built once and keeps it until removed).
_counting: weakref.WeakSet[Container] = weakref.WeakSet()


def watch(peers: Sequence[Container]) -> dict[str, Counts] | None:
    """Every peer's counts to start from (its table written on first use), by name; None
    where any of them could answer late (it proxies) or cannot count (no nft, the write
    refused)."""
    baseline: dict[str, Counts] = {}
    for peer in peers:
        if peer not in _counting:
            if not peer.has_command("nft"):
                return None
            if peer.exec("sh", "-c", f"nft -f - <<'EOF'\n{_WRITE}EOF").rc != 0:
                return None
            _counting.add(peer)
        done = peer.exec("sh", "-c", f"{_PROXIES}; echo {_MARK}; nft list table arp {ARP_TABLE}")
        proxies, _, listing = done.stdout.partition(_MARK)
        if done.rc != 0 or not listing or any(word != "0" for word in proxies.split()):
            return None
        baseline[peer.container_name] = parse_counts(listing)
    return baseline


def parse_counts(listing: str) -> Counts:
    """`nft list table arp vlanlb_arp`'s two sets as address -> (asked, answered)."""
    sets = {name: dict(_ELEMENT.findall(body)) for name, body in _SET.findall(listing)}
    asked, answered = sets.get("asked", {}), sets.get("answered", {})
    return {a: (int(asked.get(a, 0)), int(answered.get(a, 0))) for a in {*asked, *answered}}


def read(peers: Sequence[Container]) -> dict[str, Counts] | None:
    """Each peer's counts, by name; None where any could not be read (the table is gone)."""
    readings: dict[str, Counts] = {}
    for peer in peers:
        done = peer.exec("nft", "list", "table", "arp", ARP_TABLE)
        if done.rc != 0:
            return None
        readings[peer.container_name] = parse_counts(done.stdout)
    return readings


def unanswered(
    baseline: Mapping[str, Counts],
    earlier: Mapping[str, Counts] | None,
    now: Mapping[str, Counts] | None,
) -> set[str]:
    """The addresses every peer had been asked for since `baseline` by the `earlier` reading
    and none of them had answered for since `baseline` by `now` (a later reading: a reply is
    sent as the request is received, so one reading later it would show)."""
    if not earlier or not now or not set(baseline) == set(earlier) == set(now):
        return set()

    def since(counts: Counts, peer: str, address: str) -> tuple[int, int]:
        asked, answered = counts.get(address, (0, 0))
        was_asked, was_answered = baseline[peer].get(address, (0, 0))
        return asked - was_asked, answered - was_answered

    asked_everywhere = set.intersection(
        *({a for a in counts if since(counts, peer, a)[0] > 0} for peer, counts in earlier.items())
    )
    return {
        address
        for address in asked_everywhere
        if all(since(counts, peer, address)[1] == 0 for peer, counts in now.items())
    }
