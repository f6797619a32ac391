"""Counter diagnosis on `iptables-save -c` and `nft -a list ruleset` dumps recorded on the lab."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_vlanlb.document.diagnosis import diagnose
from pytest_vlanlb.grading.messages import Speaker
from pytest_vlanlb.observation.counters import (
    Observation,
    diff,
    explain,
    parse_counters,
    parse_nft,
    snapshot,
)
from pytest_vlanlb.podman.container import Container, ExecResult

DUMPS = Path(__file__).parent / "dumps"


def load(name):
    return parse_counters((DUMPS / name).read_text())


def test_parse_numbers_rules_per_chain_and_reads_policies():
    counters = load("defect_after.txt")
    drop = counters[("filter", "FORWARD", 1, "-i eth1 -o eth2 -j DROP")]
    assert (drop.packets, drop.bytes, drop.target) == (3, 180, "DROP")
    policy = counters[("filter", "FORWARD", 0, "ACCEPT")]
    assert (policy.packets, policy.target) == (4, "ACCEPT")
    masq = [c for c in counters.values() if c.chain == "POSTROUTING" and c.number == 1]
    assert masq[0].target == "MASQUERADE"


def test_the_workshop_defect_is_explained_in_network_terms():
    moves = diff(load("defect_before.txt"), load("defect_after.txt"))
    assert {(m.counter.chain, m.packets) for m in moves} == {("FORWARD", 3), ("PREROUTING", 1)}
    assert explain(moves) == (
        "1 packet destination-NATed by nat PREROUTING rule 1 `-d 192.168.10.100/32 -p tcp "
        "-m tcp --dport 80 -j DNAT --to-destination 192.168.20.20:80`; "
        "3 packets dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP` after DNAT"
    )


def test_a_drop_without_dnat_is_not_said_to_follow_dnat():
    before = load("defect_before.txt")
    after = parse_counters(
        (DUMPS / "defect_after.txt")
        .read_text()
        .replace("[1:60] -A PREROUTING", "[0:0] -A PREROUTING")
    )
    assert explain(diff(before, after)) == (
        "3 packets dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP`"
    )


def test_policy_moves_and_no_moves():
    before = parse_counters("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
    after = parse_counters("*filter\n:FORWARD DROP [2:168]\nCOMMIT\n")
    assert explain(diff(before, after)) == "2 packets took the filter FORWARD policy DROP"
    assert explain(diff(after, after)) == (
        "no rule or policy on the router (iptables or nft) counted a packet"
    )


def test_a_rule_that_appeared_counts_from_zero():
    before = parse_counters("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")
    after = load("defect_after.txt")
    moved = {m.counter.spec for m in diff(before, after)}
    assert "-i eth1 -o eth2 -j DROP" in moved


# kube-proxy's nftables mode, recorded on the lab's router (`nft -a list ruleset` around a
# probe): each endpoint's DNAT is told as the numgen pick or affinity set that led there.


def nft(name):
    return parse_nft((DUMPS / name).read_text())


def test_nft_rules_with_counters_are_read_with_their_chain_position_and_action():
    counters = nft("nft_spread_after.txt")
    dnat = [c for c in counters.values() if c.action == "dnat"]
    assert len(dnat) == 3
    assert all(c.table == "ip kube-proxy" and c.chain.startswith("endpoint-") for c in dnat)
    assert all(c.number == 2 and c.spec.startswith("meta l4proto tcp dnat to ") for c in dnat)
    assert sum(c.packets for c in dnat) == 6
    numgen = [c for c in counters.values() if c.spec.startswith("numgen random mod 3 vmap")]
    assert [(c.action, c.packets) for c in numgen] == [("vmap", 6)]
    # The counter is read, then left out of the rule as shown; uncounted rules are not read.
    assert not any("counter" in c.spec for c in counters.values())
    assert not any(c.spec.startswith("jump ") for c in counters.values())


def test_nft_picks_are_told_by_numgen_index():
    moves = diff(nft("nft_spread_before.txt"), nft("nft_spread_after.txt"))
    text = explain(moves)
    for index, address in enumerate(("192.168.20.21", "192.168.20.22", "192.168.20.23")):
        assert re.search(
            rf"2 packets went to endpoint-[A-Z2-7]{{8}}-default/service/tcp/http__{address}/80 "
            rf"\({address}:80\) via numgen {index}",
            text,
        ), text
    assert "6 packets masqueraded by ip kube-proxy masquerading rule 3" in text
    assert "destination-NATed" not in text  # told as picks, not once more as rules


def test_nft_affinity_hits_are_told_apart_from_the_first_pick():
    text = explain(diff(nft("nft_affinity_before.txt"), nft("nft_affinity_after.txt")))
    assert re.search(r"1 packet went to endpoint-\S+ \(192\.168\.20\.23:80\) via numgen 2", text)
    assert re.search(
        r"4 packets went to endpoint-\S+ \(192\.168\.20\.23:80\) via affinity set "
        r"affinity-[A-Z2-7]{8}-default/service/tcp/http__192\.168\.20\.23/80",
        text,
    ), text


def test_nft_numbers_the_map_has_no_element_for_are_said_to_fall_through():
    moves = diff(nft("nft_missing_element_before.txt"), nft("nft_missing_element_after.txt"))
    text = explain(moves)
    assert re.search(r"3 packets went to endpoint-\S+ \(192\.168\.20\.21:80\) via numgen 0", text)
    assert re.search(r"5 packets went to endpoint-\S+ \(192\.168\.20\.23:80\) via numgen 1", text)
    assert re.search(
        r"4 packets fell through ip kube-proxy service-\S+ rule 1 `numgen random mod 3 vmap "
        r"\{[^`]*\}`: its map has no element for their number",
        text,
    ), text


def test_nft_tables_of_iptables_nft_are_left_to_iptables_save():
    dump = (
        "table ip filter { # handle 1\n\tchain FORWARD { # handle 1\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        '\t\tiifname "eth1" counter packets 3 bytes 180 drop # handle 4\n\t}\n}\n'
        "table inet mine { # handle 2\n\tchain forward { # handle 1\n"
        "\t\ttype filter hook forward priority 0; policy accept;\n"
        '\t\tiifname "eth1" counter packets 3 bytes 180 drop comment "no accept here" # handle 3\n'
        "\t}\n}\n"
    )
    counters = parse_nft(dump)
    assert [(c.table, c.chain, c.number, c.action) for c in counters.values()] == [
        ("inet mine", "forward", 1, "drop")
    ]
    assert explain(diff({}, counters)) == (
        '3 packets dropped by inet mine forward rule 1 `iifname "eth1" drop comment "no accept '
        'here"`'
    )


class RecordedRouter(Container):
    """A router whose commands answer from the recorded dumps, counting what was asked."""

    def __init__(self, has_nft: bool) -> None:
        super().__init__(container=None)  # type: ignore[arg-type]
        self.has_nft = has_nft
        self.asked: list[tuple[str, ...]] = []

    def exec(self, *command: str) -> ExecResult:
        self.asked.append(command)
        if command[0] == "iptables-save":
            return ExecResult(command, 0, (DUMPS / "defect_after.txt").read_text(), "")
        if command[:2] == ("/bin/sh", "-c"):  # command -v
            return ExecResult(
                command, 0 if self.has_nft else 1, "/usr/sbin/nft\n" * self.has_nft, ""
            )
        if command[:3] == ("nft", "list", "tables") and self.has_nft:
            tables = "table ip filter\ntable ip nat\ntable ip kube-proxy\n"
            return ExecResult(command, 0, tables, "")
        if command == ("nft", "-a", "list", "table", "ip", "kube-proxy") and self.has_nft:
            return ExecResult(command, 0, (DUMPS / "nft_spread_after.txt").read_text(), "")
        return ExecResult(command, 127, "", f"{command[0]}: not found")


@pytest.mark.parametrize("has_nft", [True, False], ids=["nft", "no-nft"])
def test_a_snapshot_reads_nft_only_where_the_router_has_it_and_asks_once(has_nft):
    router = RecordedRouter(has_nft)
    first, second = snapshot(router), snapshot(router)
    assert first == second
    assert any(key[0] == "filter" for key in first)  # iptables-save's, always
    assert any(key[0] == "ip kube-proxy" for key in first) is has_nft
    asked = [c[0] for c in router.asked]
    assert asked.count("/bin/sh") == 1  # whether nft is there: once per node
    assert asked.count("iptables-save") == 2
    # nft: the tables, then only those iptables-nft does not manage (its own it read already)
    assert router.asked.count(("nft", "list", "tables")) == (2 if has_nft else 0)
    assert asked.count("nft") == (4 if has_nft else 0)


def recorded_pairs():
    """Every recorded (before, after) pair of counters: iptables-save's and nft's."""
    for before in sorted(DUMPS.glob("*_before.txt")):
        name = before.name.removesuffix("_before.txt")
        read = nft if name.startswith("nft_") else load
        yield pytest.param(read(before.name), read(f"{name}_after.txt"), id=name)


@pytest.mark.parametrize(("before", "after"), list(recorded_pairs()))
def test_every_recorded_dump_is_said_the_same_wherever_it_is_printed(before, after):
    """One wording: a lab test's failure, a grading verdict's evidence and a document step's
    diagnosis say the same sentence for the same counters (numgen picks, affinity and
    fall-through included), and the Japanese grader says each of them too."""
    moves = diff(before, after)
    said = explain(moves)
    assert Speaker("en").moves(moves) == said
    assert Observation("probe", moves).explain().endswith(f"router counters: {said}")
    assert diagnose({"router": before}, {"router": after}, [])[0] == (
        f"router counters while it ran: {said}"
    )
    japanese = Speaker("ja").moves(moves)
    for english, ja in (("via numgen", "numgen"), ("via affinity", "アフィニティ"),
                        ("fell through", "素通り")):  # fmt: skip
        assert (english in said) is (ja in japanese), (english, japanese)
