"""Counter diagnosis on recorded `iptables-save -c` dumps (from the lab, Step 2 as written)."""

from __future__ import annotations

from pathlib import Path

from pytest_vlanlb.counters import diff, explain, parse_counters

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
        "no iptables rule or policy on the router counted a packet"
    )


def test_a_rule_that_appeared_counts_from_zero():
    before = parse_counters("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")
    after = load("defect_after.txt")
    moved = {m.counter.spec for m in diff(before, after)}
    assert "-i eth1 -o eth2 -j DROP" in moved
