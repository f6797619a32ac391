"""Packet counters: which rules a probe's packets hit, said in network terms.

`iptables-save -c` and `nft -a list table` (each table iptables-nft does not manage) are read
before and after a probe; the rules (and chain policies) whose counters moved explain what
happened to the packets, e.g. "3 packets dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j
DROP` after DNAT", or, for kube-proxy's nftables mode, "3 packets went to endpoint-… via
numgen 1". nft tables that iptables-nft manages are read through iptables-save only, in
iptables' own words. The same reading serves grading.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..podman.container import Container
from .words import ENGLISH, KERNEL, Counted, Fact, FellThrough, Picked

_COUNTED_RULE = re.compile(r"^\[(\d+):(\d+)\] -A (\S+)(?: (.*))?$")
_CHAIN = re.compile(r"^:(\S+) (\S+) \[(\d+):(\d+)\]$")
_NFT_TABLE = re.compile(r"^table (\S+) (\S+) \{")
_NFT_CHAIN = re.compile(r"^chain (\S+) \{")
_NFT_HANDLE = re.compile(r"\s*# handle (\d+)$")
_NFT_COUNTER = re.compile(r"counter packets (\d+) bytes (\d+)\s*")
_NFT_HOOK = re.compile(r"^type \S+ hook (\S+) ")
_NFT_COMMENT = re.compile(r' comment "[^"]*"$')
#: The statements that decide a packet's fate in an nft rule (its "target").
_NFT_ACTIONS = frozenset(
    {"dnat", "snat", "masquerade", "redirect", "reject", "drop", "accept", "return", "goto", "jump"}
)
#: Tables iptables-nft manages: their rules come from iptables-save instead.
XTABLES_FAMILIES = frozenset({"ip", "ip6", "arp", "bridge"})
XTABLES_NAMES = frozenset({"filter", "nat", "mangle", "raw", "security"})
#: Our own tables (a trace's marks, ARP's counting) start so: they count no probe's fate.
OURS = "vlanlb_"


@dataclass(frozen=True)
class RuleCount:
    """One iptables rule's (or chain policy's) packet and byte counts, from `iptables-save -c`."""

    table: str
    chain: str
    number: int  # 1-based position in its chain; 0 for the chain's policy
    spec: str  # the rule without "-A CHAIN", or the policy ("ACCEPT")
    packets: int
    bytes: int
    action: str = ""  # an nft rule's deciding statement ("dnat", "vmap", ...); "" for iptables
    hook: str = ""  # an nft base chain's hook ("forward", ...); "" for iptables' and the others

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.table, self.chain, self.number, self.spec)

    @property
    def target(self) -> str:
        if self.action:
            return self.action
        if self.number == 0:
            return self.spec
        match = re.search(r"-j (\S+)", self.spec)
        return match[1] if match else ""


#: One reading of a router's counters: rule (table, chain, position, text) -> its count.
Counters = dict[tuple[str, str, int, str], RuleCount]


def parse_counters(dump: str) -> Counters:
    """Parse `iptables-save -c` (all tables) into counters keyed by table/chain/number/spec."""
    counters: Counters = {}
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


def nft_action(spec: str) -> str:
    """An nft rule's deciding statement (its "target"): dnat, drop, vmap, ..."""
    bare = re.sub(r"\{[^}]*\}", "{}", _NFT_COMMENT.sub("", spec))
    if " vmap " in f" {bare} ":
        return "vmap"
    return next((word for word in reversed(bare.split()) if word in _NFT_ACTIONS), "")


@dataclass(frozen=True)
class ListedRule:
    """A rule as `nft -a list ruleset` lists it: where it is (its chain's hook, its place in
    the chain, its handle) and its text (without the handle; counter included)."""

    family: str
    table: str
    chain: str
    hook: str  # the base chain's hook ("forward", ...); "" for a regular chain
    position: int  # 1-based, as iptables numbers a chain's rules
    handle: int
    text: str


def nft_rules(ruleset: str) -> Iterator[ListedRule]:
    """Every rule of `nft -a list ruleset`, in order (the one walk of a listing: the counters
    read it, and a trace places its rules by it)."""
    family = table = chain = hook = ""
    position = 0
    for line in ruleset.splitlines():
        line = line.strip()
        if chain and (base := _NFT_HOOK.search(line)):
            hook = base[1]
        elif table_line := _NFT_TABLE.match(line):
            family, table, chain = table_line[1], table_line[2], ""
        elif chain_line := _NFT_CHAIN.match(line):
            chain, position, hook = chain_line[1], 0, ""
        elif line == "}":
            chain = ""  # a chain, set or map ends (their contents carry no handles)
        elif chain and (handle := _NFT_HANDLE.search(line)):
            position += 1
            yield ListedRule(
                family, table, chain, hook, position, int(handle[1]), line[: handle.start()]
            )


def uncounted(text: str) -> str:
    """An nft rule's text without its `counter packets N bytes M`."""
    return _NFT_COUNTER.sub("", text).strip()


def parse_nft(dump: str) -> Counters:
    """Parse `nft -a list ruleset` into counters for the rules that carry a `counter`, keyed
    as parse_counters keys iptables' ("ip kube-proxy", chain, position, rule text)."""
    counters: Counters = {}
    for rule in nft_rules(dump):
        if rule.family in XTABLES_FAMILIES and rule.table in XTABLES_NAMES:
            continue  # iptables-nft's own: read through iptables-save
        counted = _NFT_COUNTER.search(rule.text)
        if counted is None:
            continue
        spec = uncounted(rule.text)
        c = RuleCount(
            f"{rule.family} {rule.table}",
            rule.chain,
            rule.position,
            spec,
            int(counted[1]),
            int(counted[2]),
            nft_action(spec),
            rule.hook,
        )
        counters[c.key] = c
    return counters


@dataclass(frozen=True)
class Move:
    """A counter that moved during a probe."""

    counter: RuleCount
    packets: int


_NUMGEN_ELEMENT = re.compile(r"(\d+) : goto ([^\s,}]+)")
_AFFINITY_GOTO = re.compile(r"ip saddr @(\S+) goto (\S+)")


def _picks(moves: list[Move]) -> tuple[list[Fact], set[int]]:
    """kube-proxy's nftables endpoint choice: each endpoint chain's DNAT told as the numgen
    pick or affinity set that led there, and numbers the numgen map had no element for.
    Returns the facts and the ids of the moves they tell."""
    told: set[int] = set()
    numgen_index: dict[str, tuple[Move, str]] = {}
    by_affinity: dict[str, tuple[str, int]] = {}
    for m in moves:
        spec = m.counter.spec
        if m.counter.action == "vmap" and spec.startswith("numgen "):
            for index, chain in _NUMGEN_ELEMENT.findall(spec):
                numgen_index.setdefault(chain, (m, index))
            told.add(id(m))
        elif m.counter.action == "goto" and (affinity := _AFFINITY_GOTO.search(spec)):
            by_affinity[affinity[2]] = (affinity[1], m.packets)
            told.add(id(m))
    facts: list[Fact] = []
    picked: dict[int, int] = {}
    for m in moves:
        chain = m.counter.chain
        if m.counter.action != "dnat" or (chain not in numgen_index and chain not in by_affinity):
            continue
        told.add(id(m))
        address = m.counter.spec.rpartition(" ")[2]
        affinity_set, sticky = by_affinity.get(chain, ("", 0))
        by_numgen = m.packets - sticky
        if by_numgen > 0 and chain in numgen_index:
            rule, index = numgen_index[chain]
            picked[id(rule)] = picked.get(id(rule), 0) + by_numgen
            facts.append(Picked(by_numgen, chain, address, index=index))
        if sticky:
            facts.append(Picked(sticky, chain, address, affinity_set=affinity_set))
    for m in moves:
        if id(m) in told and m.counter.spec.startswith("numgen "):
            missed = m.packets - picked.get(id(m), 0)
            if missed > 0:
                facts.append(FellThrough(m.counter, missed))
    return facts, told


def diff(before: Counters, after: Counters) -> list[Move]:
    moves = []
    for key, counter in after.items():
        old = before.get(key)
        delta = counter.packets - (old.packets if old else 0)
        if delta > 0:
            moves.append(Move(counter, delta))
    return moves


def story(moves: list[Move]) -> list[Fact]:
    """What the counters say happened, in the order it happened: kube-proxy's nftables picks
    first, the other nft rules in the ruleset's own order, then iptables' rules, NAT before
    filtering (a filter DROP after a DNAT is said to have taken DNAT'ed traffic), then what
    the kernel dropped by itself."""
    dnat = any(m.counter.target in ("DNAT", "dnat") for m in moves)
    order = {"raw": 0, "mangle": 1, "nat": 2, "filter": 3}
    iptables = sorted(
        (m for m in moves if not m.counter.action),
        key=lambda m: (order.get(m.counter.table, 9), m.counter.chain, m.counter.number),
    )
    kernel = [m for m in moves if m.counter.table == KERNEL]
    picks, told = _picks(moves)
    told |= {id(m) for m in kernel}
    nft = [m for m in moves if m.counter.action and id(m) not in told]

    def counted(m: Move) -> Counted:
        took_dnat = dnat and m.counter.table == "filter" and m.counter.target == "DROP"
        return Counted(m.counter, m.packets, after_dnat=took_dnat)

    return [*picks, *(counted(m) for m in nft), *(counted(m) for m in iptables)] + [
        Counted(m.counter, m.packets, after_dnat=False) for m in kernel
    ]


def explain(moves: list[Move]) -> str:
    """The story in English (`words.Words(language).facts(story(moves))` in another)."""
    return ENGLISH.facts(story(moves))


#: The IPv4 layer's own drop counters (/proc/net/snmp, RFC 4293's names): packets the kernel
#: dropped with no rule involved. InAddrErrors is a router that does not forward
#: (net.ipv4.ip_forward 0) being sent a packet for another host.
KERNEL_DROPS = ("InAddrErrors", "InHdrErrors", "InDiscards", "OutNoRoutes", "OutDiscards")


def parse_snmp(text: str) -> Counters:
    """The kernel's IPv4 drop counters from /proc/net/snmp (a header line of names, then a
    line of values), as counters of table `kernel`, chain `Ip`, action `drop`."""
    rows = [line.split() for line in text.splitlines() if line.startswith("Ip: ")]
    counters: Counters = {}
    if len(rows) < 2:
        return counters
    for name, value in zip(rows[0][1:], rows[1][1:], strict=False):
        if name in KERNEL_DROPS and value.isdigit():
            c = RuleCount(KERNEL, "Ip", 0, name, int(value), 0, "drop")
            counters[c.key] = c
    return counters


def nft_tables(listing: str) -> list[tuple[str, str]]:
    """(family, name) of each table in `nft list tables`."""
    return [
        (words[1], words[2])
        for words in (line.split() for line in listing.splitlines())
        if len(words) >= 3 and words[0] == "table"
    ]


def counted_tables(router: Container) -> list[tuple[str, str]]:
    """The router's nft tables whose rules `snapshot` reads through nft: not iptables-nft's
    own (kube-proxy's `ip kube-proxy`, a student's own), not ours; [] where it has no nft."""
    if not router.has_command("nft"):
        return []
    return [
        (family, name)
        for family, name in nft_tables(router.exec("nft", "list", "tables").stdout)
        if not (family in XTABLES_FAMILIES and name in XTABLES_NAMES) and not name.startswith(OURS)
    ]


def snapshot(
    router: Container, *, kernel: bool = True, tables: list[tuple[str, str]] | None = None
) -> Counters:
    """The router's iptables counters, its nft rules' counters (where it has nft) and, with
    `kernel`, the kernel's own IPv4 drop counters.

    One command each, each the listing itself: a student's router is read through bounds
    that let a rule listing through whole (grading/bounded.py) but cut any other output
    short. nft is asked for only where the router has it (found out once per node), and
    only for `tables` where given (`counted_tables`, read once for readings close together:
    a table made since is only unread, never misread)."""
    counters = parse_counters(router.exec("iptables-save", "-c").stdout)
    # Only the tables iptables-nft does not manage: listing a router's 3,000 iptables rules
    # again through nft took over 4 s in a TCG guest, and iptables-save has read them already.
    for family, name in counted_tables(router) if tables is None else tables:
        listing = router.exec("nft", "-a", "list", "table", family, name).stdout
        counters.update(parse_nft(listing))
    if kernel:
        counters.update(parse_snmp(router.exec("cat", "/proc/net/snmp").stdout))
    return counters


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


def observe(router: Container, probe: Callable[[], T], *, kernel: bool = True) -> Observation[T]:
    """`probe()` between two readings of the router's counters (`kernel`: the kernel's drop
    counters too, one command more per reading). Kept for the test's failure: its walk."""
    before = snapshot(router, kernel=kernel)
    result = probe()
    seen = Observation(result, diff(before, snapshot(router, kernel=kernel)))
    with _observed_lock:
        _observed.append((getattr(router, "name", router.container_name), seen))
        del _observed[:-OBSERVED]
    return seen


#: The observations since `forget_observed` (the plugin forgets at each test's start): a
#: failing test's walks are drawn from them. Enough for any one test; older ones go first.
OBSERVED = 32
_observed: list[tuple[str, Observation[Any]]] = []
_observed_lock = threading.Lock()


def observed() -> list[tuple[str, Observation[Any]]]:
    """(router name, observation) for each observation since `forget_observed`."""
    with _observed_lock:
        return list(_observed)


def forget_observed() -> None:
    with _observed_lock:
        _observed.clear()
