"""What a probe saw, in words: one catalogue per language (English and Japanese, the same
keys and placeholders) and one renderer, used wherever an observation is said — a lab test's
failure, a grading verdict's evidence, a document step's diagnosis.

The readers (`probes`, `counters`) turn output into facts; this module only words them. It
imports neither (they import it), so the facts arrive as the small protocols below.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ..errors import VlanlbError

LANGUAGES = ("en", "ja")
#: The table the kernel's own drop counters are read under (counters.parse_snmp).
KERNEL = "kernel"

EN: dict[str, str] = {
    "ping.replies": "ping {target}: {received}/{transmitted} replies{ttl}",
    "ping.ttl": ", ttl {ttl}",
    "ping.nothing": "ping {target}: sent nothing ({said})",
    "ping.no_output": "no output",
    "settled.dropped": "; stopped on evidence: {facts}",
    "settled.together": (
        "; stopped on evidence, with the {others} other probe(s) sent beside it: {facts}"
    ),
    "http.result": "GET {url}: {outcome} after {elapsed:.2f}s ({what})",
    "http.ok": "ok",
    "http.refused": "refused",
    "http.timeout": "timeout",
    "http.unreachable": "unreachable",
    "http.error": "error",
    "moves.none": "no rule or policy on the router (iptables or nft) counted a packet",
    "moves.one": "{count} packet",
    "moves.many": "{count} packets",
    "moves.join": "; ",
    "moves.policy": "{packets} took the {table} {chain} policy {policy}",
    "moves.rule": "{packets} {verb} {table} {chain} rule {number} `{spec}`{tail}",
    "moves.after_dnat": " after DNAT",
    "moves.numgen": "{packets} went to {chain} ({address}) via numgen {index}",
    "moves.affinity": "{packets} went to {chain} ({address}) via affinity set {set}",
    "moves.fell_through": (
        "{packets} fell through {table} {chain} rule {number} `{spec}`: its map has no element "
        "for their number"
    ),
    "moves.kernel": "{packets} dropped by the router's kernel ({reason})",
    "arp.unanswered": (
        "ARP for {address} reached every other node on the segment ({peers}) and none answered:"
        " nobody there owns it"
    ),
    "kernel.InAddrErrors": (
        "InAddrErrors: for another host, and the router does not forward: is net.ipv4.ip_forward 0?"
    ),
    "kernel.InHdrErrors": "InHdrErrors: a bad IP header, or its TTL ran out",
    "kernel.InDiscards": "InDiscards: discarded on the way in",
    "kernel.OutNoRoutes": "OutNoRoutes: no route to the destination",
    "kernel.OutDiscards": "OutDiscards: discarded on the way out",
    "verb.DROP": "dropped by",
    "verb.REJECT": "rejected by",
    "verb.ACCEPT": "accepted by",
    "verb.DNAT": "destination-NATed by",
    "verb.SNAT": "source-NATed by",
    "verb.MASQUERADE": "masqueraded by",
    "verb.LOG": "logged by",
    "verb.vmap": "dispatched by",
    "verb.other": "matched by",
}

JA: dict[str, str] = {
    "ping.replies": "ping {target}: 応答 {received}/{transmitted}{ttl}",
    "ping.ttl": "、ttl {ttl}",
    "ping.nothing": "ping {target}: 何も送っていない（{said}）",
    "ping.no_output": "出力なし",
    "settled.dropped": "。根拠が出たので打ち切り: {facts}",
    "settled.together": (
        "。同時に送った他の {others} 個のプローブと合わせて根拠が出たので打ち切り: {facts}"
    ),
    "http.result": "GET {url}: {elapsed:.2f} 秒で{outcome}（{what}）",
    "http.ok": "応答あり",
    "http.refused": "拒否",
    "http.timeout": "タイムアウト",
    "http.unreachable": "到達不能",
    "http.error": "エラー",
    "moves.none": "ルーターのどのルール（iptables・nft）もポリシーもパケットを数えていない",
    "moves.one": "{count} パケット",
    "moves.many": "{count} パケット",
    "moves.join": "; ",
    "moves.policy": "{packets}が {table} {chain} のポリシー {policy} に従った",
    "moves.rule": "{packets}が {table} {chain} のルール {number} `{spec}` で{verb}{tail}",
    "moves.after_dnat": "（DNAT の後）",
    "moves.numgen": "{packets}が numgen {index} で {chain}（{address}）へ振り分けられた",
    "moves.affinity": "{packets}がアフィニティのセット {set} で {chain}（{address}）へ送られた",
    "moves.fell_through": (
        "{packets}が {table} {chain} のルール {number} `{spec}` を素通りした（その番号に当たる"
        "要素がマップにない）"
    ),
    "moves.kernel": "{packets}がルーターのカーネルに破棄された（{reason}）",
    "arp.unanswered": (
        "{address} の ARP 要求はセグメントの他のノード全部（{peers}）に届き、どれも応答しなかった:"
        " そこにこのアドレスの持ち主はいない"
    ),
    "kernel.InAddrErrors": (
        "InAddrErrors: 他のホスト宛てなのにルーターが転送しない。net.ipv4.ip_forward が 0 では？"
    ),
    "kernel.InHdrErrors": "InHdrErrors: IP ヘッダーの誤り、または TTL 切れ",
    "kernel.InDiscards": "InDiscards: 受信時に破棄",
    "kernel.OutNoRoutes": "OutNoRoutes: 宛先への経路がない",
    "kernel.OutDiscards": "OutDiscards: 送信時に破棄",
    "verb.DROP": "破棄された",
    "verb.REJECT": "拒否された",
    "verb.ACCEPT": "許可された",
    "verb.DNAT": "宛先変換（DNAT）された",
    "verb.SNAT": "送信元変換（SNAT）された",
    "verb.MASQUERADE": "マスカレードされた",
    "verb.LOG": "記録された",
    "verb.vmap": "振り分けられた",
    "verb.other": "一致した",
}

CATALOGUES = {"en": EN, "ja": JA}
#: nft's deciding statements, said as iptables' targets are.
_NFT_VERBS = {
    "drop": "DROP",
    "reject": "REJECT",
    "accept": "ACCEPT",
    "dnat": "DNAT",
    "snat": "SNAT",
    "masquerade": "MASQUERADE",
}


class Ping(Protocol):
    @property
    def target(self) -> str: ...
    @property
    def transmitted(self) -> int: ...
    @property
    def received(self) -> int: ...
    @property
    def ttls(self) -> tuple[int, ...]: ...
    @property
    def output(self) -> str: ...
    @property
    def stopped_by(self) -> Sequence[Evidence]: ...
    @property
    def together(self) -> int: ...


class _Outcome(Protocol):
    @property
    def value(self) -> str: ...


class Http(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def outcome(self) -> _Outcome: ...
    @property
    def stopped_by(self) -> Sequence[Evidence]: ...
    @property
    def together(self) -> int: ...
    @property
    def ok(self) -> bool: ...


class Counter(Protocol):
    @property
    def table(self) -> str: ...
    @property
    def chain(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def spec(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def action(self) -> str: ...


@dataclass(frozen=True)
class Counted:
    """Packets a rule (or a chain's policy) counted."""

    counter: Counter
    packets: int
    after_dnat: bool = False  # a filter DROP that also took DNAT'ed traffic


@dataclass(frozen=True)
class Picked:
    """Packets kube-proxy's nftables mode sent to an endpoint: by a numgen index, or by the
    Service's affinity set."""

    packets: int
    chain: str
    address: str
    index: str = ""  # numgen's
    affinity_set: str = ""  # or the affinity set's


@dataclass(frozen=True)
class FellThrough:
    """Packets a numgen map had no element for."""

    counter: Counter
    packets: int


Fact = Counted | Picked | FellThrough


@dataclass(frozen=True)
class Unanswered:
    """An address nobody on a segment answers ARP for: every other node there was asked
    (observation/arp.py) and none replied, so a probe's packets to it never leave."""

    address: str
    peers: tuple[str, ...]


#: What a negative probe was stopped on: counters' facts, or an ARP nobody answered.
Evidence = Fact | Unanswered


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def default_language(environ: Mapping[str, str] | None = None) -> str:
    """`ja` where the locale is Japanese (LC_ALL, then LANG), else `en`."""
    environ = os.environ if environ is None else environ
    locale = environ.get("LC_ALL") or environ.get("LANG") or ""
    return "ja" if locale.lower().startswith("ja") else "en"


def chosen_language(given: str | None) -> str:
    """--vlanlb-lang's value (grading and document mode alike), else the locale's."""
    if given is None:
        return default_language()
    if given not in LANGUAGES:
        raise VlanlbError(f"--vlanlb-lang {given}: must be one of {', '.join(LANGUAGES)}")
    return given


class Catalogued:
    """Says a catalogue's key in one language, with its placeholders filled."""

    catalogues: ClassVar[Mapping[str, Mapping[str, str]]]

    def __init__(self, language: str = "en") -> None:
        if language not in self.catalogues:
            raise ValueError(f"{language!r}: the languages are {', '.join(LANGUAGES)}")
        self.language = language
        self.catalogue = self.catalogues[language]

    def __call__(self, key: str, **fields: Any) -> str:
        return self.catalogue[key].format(**fields)


class Words(Catalogued):
    """Observations said in one language."""

    catalogues = CATALOGUES

    def ping(self, result: Ping) -> str:
        if result.transmitted == 0:  # nothing was sent: say what was seen instead of 0/0
            said = " ".join(result.output.split())[:200] or self("ping.no_output")
            return self("ping.nothing", target=result.target, said=said)
        ttl = self("ping.ttl", ttl=result.ttls[0]) if result.ttls else ""
        said = self(
            "ping.replies",
            target=result.target,
            received=result.received,
            transmitted=result.transmitted,
            ttl=ttl,
        )
        return said + self.stopped(result.stopped_by, result.together)

    def http(self, result: Http) -> str:
        what = repr(result.body) if result.ok else result.detail.strip()
        said = self(
            "http.result",
            url=result.url,
            outcome=self(f"http.{result.outcome.value}"),
            elapsed=result.elapsed,
            what=what,
        )
        return said + self.stopped(result.stopped_by, result.together)

    def stopped(self, facts: Sequence[Evidence], together: int = 1) -> str:
        """Why a negative probe ended before its window: the drops that settled it (and the
        probes sent beside it, whose packets those drops count too), or an ARP request
        nobody answered."""
        if not facts:
            return ""
        if together > 1:
            return self("settled.together", others=together - 1, facts=self.facts(facts))
        return self("settled.dropped", facts=self.facts(facts))

    def packets(self, count: int) -> str:
        return self("moves.one" if count == 1 else "moves.many", count=count)

    def fact(self, fact: Evidence) -> str:
        if isinstance(fact, Unanswered):
            return self("arp.unanswered", address=fact.address, peers=", ".join(fact.peers))
        if isinstance(fact, Picked):
            if fact.affinity_set:
                key, where = "moves.affinity", {"set": fact.affinity_set}
            else:
                key, where = "moves.numgen", {"index": fact.index}
            return self(
                key,
                packets=self.packets(fact.packets),
                chain=fact.chain,
                address=fact.address,
                **where,
            )
        c = fact.counter
        if isinstance(fact, FellThrough):
            return self(
                "moves.fell_through",
                packets=self.packets(fact.packets),
                table=c.table,
                chain=c.chain,
                number=c.number,
                spec=c.spec,
            )
        packets = self.packets(fact.packets)
        if c.table == KERNEL:
            return self("moves.kernel", packets=packets, reason=self(f"kernel.{c.spec}"))
        if c.number == 0:
            return self(
                "moves.policy", packets=packets, table=c.table, chain=c.chain, policy=c.spec
            )
        target = _NFT_VERBS.get(c.target, c.target)
        verb = f"verb.{target}" if f"verb.{target}" in self.catalogue else "verb.other"
        return self(
            "moves.rule",
            packets=packets,
            verb=self(verb),
            table=c.table,
            chain=c.chain,
            number=c.number,
            spec=c.spec,
            tail=self("moves.after_dnat") if fact.after_dnat else "",
        )

    def facts(self, facts: Sequence[Evidence]) -> str:
        """What the router's counters saw, one clause per fact, in the order given."""
        if not facts:
            return self("moves.none")
        return self("moves.join").join(self.fact(f) for f in facts)


ENGLISH = Words("en")
