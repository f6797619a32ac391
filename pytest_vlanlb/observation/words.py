"""What a probe saw, in words: one catalogue per language (English and Japanese, the same
keys and placeholders) and one renderer, used wherever an observation is said — a lab test's
failure, a grading verdict's evidence, a document step's diagnosis.

The readers (`probes`, `counters`) turn output into facts; this module only words them. It
imports neither (they import it), so the facts arrive as the small protocols below.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

LANGUAGES = ("en", "ja")

EN: dict[str, str] = {
    "ping.replies": "ping {target}: {received}/{transmitted} replies{ttl}",
    "ping.ttl": ", ttl {ttl}",
    "ping.nothing": "ping {target}: sent nothing ({said})",
    "ping.no_output": "no output",
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


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


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
        return self(
            "ping.replies",
            target=result.target,
            received=result.received,
            transmitted=result.transmitted,
            ttl=ttl,
        )

    def http(self, result: Http) -> str:
        what = repr(result.body) if result.ok else result.detail.strip()
        return self(
            "http.result",
            url=result.url,
            outcome=self(f"http.{result.outcome.value}"),
            elapsed=result.elapsed,
            what=what,
        )

    def packets(self, count: int) -> str:
        return self("moves.one" if count == 1 else "moves.many", count=count)

    def fact(self, fact: Fact) -> str:
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

    def facts(self, facts: Sequence[Fact]) -> str:
        """What the router's counters saw, one clause per fact, in the order given."""
        if not facts:
            return self("moves.none")
        return self("moves.join").join(self.fact(f) for f in facts)


ENGLISH = Words("en")
