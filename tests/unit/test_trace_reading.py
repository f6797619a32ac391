"""netfilter's trace read into the counters' model: real `nft monitor trace` output, taken in
a network namespace of a router with the workshop's rules (iptables-nft, as the node image
writes them): Step 2 as written (DROP after DNAT), and the corrected rule with the FORWARD
policy DROP (the policy decides)."""

from __future__ import annotations

from pathlib import Path

from pytest_vlanlb.observation.counters import parse_counters, uncounted
from pytest_vlanlb.observation.trace import (
    TRACE_TABLE,
    listed_rules,
    parse_trace,
    rewrites,
    trace_moves,
)
from pytest_vlanlb.observation.walk import walk_through
from pytest_vlanlb.observation.words import ENGLISH

DUMPS = Path(__file__).parent / "dumps"


def dump(name: str) -> str:
    return (DUMPS / name).read_text()


def test_every_line_of_a_trace_is_read():
    lines = parse_trace(dump("trace_step6.txt"))
    assert len(lines) == 14
    assert len({line.id for line in lines}) == 2  # two SYNs: the first and its retry
    drop = [line for line in lines if line.verdict == "drop"]
    assert len(drop) == 2
    assert (drop[0].family, drop[0].table, drop[0].chain, drop[0].handle) == (
        "ip",
        "filter",
        "FORWARD",
        2,
    )
    assert drop[0].text == 'iifname "eth1" oifname "eth2" drop'  # without its counter
    assert [line.kind for line in lines[:3]] == ["packet", "rule", "policy"]
    assert lines[2].table == TRACE_TABLE
    assert lines[2].verdict == "accept"


def test_rules_are_placed_by_their_handle():
    listed = listed_rules(dump("trace_step6_ruleset.txt"))
    rule = listed[("ip", "filter", "FORWARD", 2)]
    assert rule.position == 1
    assert rule.hook == "forward"
    assert uncounted(rule.text) == 'iifname "eth1" oifname "eth2" drop'


def test_step_6s_trace_names_the_rules_the_counters_name():
    lines = parse_trace(dump("trace_step6.txt"))
    counters = parse_counters(dump("trace_step6_save.txt"))
    moves = trace_moves(lines, dump("trace_step6_ruleset.txt"), counters)
    said = [
        (m.counter.table, m.counter.chain, m.counter.number, m.counter.spec, m.packets)
        for m in moves
    ]
    assert said == [
        (
            "nat",
            "PREROUTING",
            1,
            "-d 192.168.10.100/32 -p tcp -m tcp --dport 80 -j DNAT "
            "--to-destination 192.168.20.20:80",
            2,
        ),
        ("filter", "FORWARD", 1, "-i eth1 -o eth2 -j DROP", 2),
    ]
    # the counters of the same probe moved on exactly these rules
    moved = {(c.table, c.chain, c.number) for c in counters.values() if c.packets and c.number}
    assert moved == {(m.counter.table, m.counter.chain, m.counter.number) for m in moves}
    walk = walk_through(moves, "router", ["curl http://192.168.10.100"], answered=False)
    assert [(s.hook, s.stopped) for s in walk.stations] == [
        ("PREROUTING", ""),
        ("ROUTING", ""),
        ("FORWARD", "drop"),
    ]
    assert walk.end == "not-reached"
    assert "filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP`" in ENGLISH.facts(
        [f for s in walk.stations for f in s.facts]
    )


def test_the_nat_rewrite_is_seen_between_the_chains():
    changed = rewrites(parse_trace(dump("trace_step6.txt")))
    assert [(r.field, r.before, r.after, r.where) for r in changed] == [
        ("ip daddr", "192.168.10.100", "192.168.20.20", "ip filter FORWARD"),
    ]


def test_a_policy_that_decides_is_a_stop_of_its_own():
    lines = parse_trace(dump("trace_policy.txt"))
    moves = trace_moves(lines, dump("trace_policy_ruleset.txt"), {})
    said = [
        (m.counter.table, m.counter.chain, m.counter.number, m.counter.target, m.packets)
        for m in moves
    ]
    assert said == [
        ("nat", "PREROUTING", 1, "dnat", 2),  # no iptables-save reading given: nft's words
        ("filter", "FORWARD", 0, "DROP", 2),  # the policy (the corrected rule did not match)
    ]
    walk = walk_through(moves, "router", ["curl"], answered=False)
    assert walk.stop is not None
    assert walk.stop.hook == "FORWARD"
