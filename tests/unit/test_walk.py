"""The walk of a probe's packets, from counter dumps recorded on the lab: laid along the
hooks, stopped where the drop was, drawn (graphviz) with the dropping rule written on it."""

from __future__ import annotations

import html
import re
from pathlib import Path

from pytest_vlanlb.document.diagnosis import walks as document_walks
from pytest_vlanlb.host.graphviz import render_svg
from pytest_vlanlb.observation.counters import (
    KERNEL_DROPS,
    Observation,
    diff,
    parse_counters,
    parse_nft,
    parse_snmp,
)
from pytest_vlanlb.observation.drawing import said_walk, walk_dot
from pytest_vlanlb.observation.probes import HttpOutcome, HttpResult, PingResult
from pytest_vlanlb.observation.walk import walk_of

DUMPS = Path(__file__).parent / "dumps"
TIMEOUT = HttpResult("http://192.168.10.100", HttpOutcome.TIMEOUT, "", "", 0.3)
GREETING = HttpResult("http://192.168.10.100", HttpOutcome.OK, "Hello from Pod B\n", "", 0.01)


def moves(name: str, parse=parse_counters):
    before = parse((DUMPS / f"{name}_before.txt").read_text())
    return diff(before, parse((DUMPS / f"{name}_after.txt").read_text()))


def texts(svg: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]


def test_the_step6_defect_walks_dnat_then_stops_at_forward_rule_1():
    walk = walk_of(Observation(TIMEOUT, moves("defect")), "router")
    assert [s.hook for s in walk.stations] == ["PREROUTING", "ROUTING", "FORWARD"]
    assert walk.stop is walk.stations[2]
    assert not walk.answered
    shown = "\n".join(texts(render_svg(walk_dot(walk))))
    assert "DNAT" in shown
    assert "✗ DROPPED HERE" in shown
    assert "filter FORWARD rule 1" in shown
    assert "-i eth1 -o eth2 -j DROP" in shown
    assert "(not reached)" in shown
    japanese = "\n".join(texts(render_svg(walk_dot(walk, "ja"))))
    assert "✗ ここで破棄" in japanese
    assert "-i eth1 -o eth2 -j DROP" in japanese


def test_a_walk_that_got_its_answer_ends_with_it():
    walk = walk_of(Observation(GREETING, moves("nft_spread", parse_nft)), "router")
    assert walk.stop is None
    assert walk.answered
    assert walk.stations[0].hook == "PREROUTING"  # kube-proxy's nftables picks: dstnat
    shown = "\n".join(texts(render_svg(walk_dot(walk))))
    assert "via numgen" in shown  # the pick, as the counters say it
    assert "an answer came back" in shown


def test_forwarding_off_stops_at_the_routing_decision():
    before = parse_snmp("Ip: Forwarding InAddrErrors\nIp: 2 10\n")
    after = parse_snmp("Ip: Forwarding InAddrErrors\nIp: 2 12\n")
    ping = PingResult("192.168.20.20", 2, 0, (), "")
    walk = walk_of(Observation(ping, diff(before, after)), "router")
    assert [s.hook for s in walk.stations] == ["ROUTING"]
    assert walk.stop is walk.stations[0]
    assert "InAddrErrors" in KERNEL_DROPS


def test_silence_without_a_counter_says_where_it_could_have_been_lost():
    walk = walk_of(Observation([TIMEOUT, PingResult("192.168.10.100", 2, 0, (), "")], []), "r1")
    assert [s.hook for s in walk.stations] == ["ROUTING"]
    assert walk.stop is None
    assert not walk.answered
    shown = "\n".join(texts(render_svg(walk_dot(walk))))
    assert "no answer" in shown
    assert "ARP" in shown
    assert "r1's counters" in shown


def counted(table: str, chain: str, number: int, spec: str, packets: int = 1):
    from pytest_vlanlb.observation.counters import Move, RuleCount

    return Move(RuleCount(table, chain, number, spec, packets, 60 * packets), packets)


def test_probes_observed_together_are_each_a_probe_and_the_routers_own_is_left_out():
    pinged = PingResult("192.168.20.20", 1, 0, (), "")
    router_up = PingResult("192.168.20.20", 1, 1, (64,), "")  # the router's own "is b there?"
    seen = Observation(
        (pinged, TIMEOUT, router_up),
        [counted("filter", "FORWARD", 1, "-i eth1 -o eth2 -j DROP", 2),
         counted("filter", "OUTPUT", 0, "ACCEPT")],
    )  # fmt: skip
    everything = walk_of(seen, "router")
    assert everything.probes == (pinged, TIMEOUT, router_up)
    assert everything.answered  # the router's ping was answered
    clients = walk_of(seen, "router", probes=[pinged, TIMEOUT])
    assert not clients.answered
    assert clients.end == "not-reached"
    assert [s.hook for s in clients.stations] == ["ROUTING", "FORWARD", "OUTPUT"]
    assert [s.stopped for s in clients.stations] == ["", "drop", ""]


def test_a_reject_stops_the_walk_as_a_reject():
    ping = PingResult("192.168.20.20", 1, 0, (), "")
    reject = counted("filter", "FORWARD", 1, "-i eth1 -o eth2 -j REJECT")
    walk = walk_of(Observation(ping, [reject]), "router")
    assert walk.stop is not None
    assert walk.stop.stopped == "reject"
    shown = "\n".join(texts(render_svg(walk_dot(walk))))
    assert "✗ REJECTED HERE (an error went back)" in shown
    assert "DROPPED" not in shown


def test_control_characters_in_a_rule_keep_the_svg_well_formed():
    import xml.etree.ElementTree as ElementTree

    odd = counted("filter", "FORWARD", 1, '-m comment --comment "a\x01b\x1b[31m" -j DROP')
    svg = render_svg(walk_dot(walk_of(Observation(TIMEOUT, [odd]), "router")))
    ElementTree.fromstring(svg.split("?>", 1)[1].split("]>", 1)[-1])  # parses: well-formed
    assert "a\ufffdb\ufffd[31m" in "\n".join(texts(svg))


def test_a_students_own_nft_chain_is_placed_at_the_hook_it_declares():
    """A chain called `fwd` in `inet fw`, declared `hook forward`: dropped in FORWARD, not
    (by its name) in PREROUTING."""
    listing = (
        "table inet fw { # handle 7\n"
        "\tchain fwd { # handle 1\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        "\t\tip daddr 192.168.20.20 counter packets {n} bytes 0 drop # handle 2\n"
        "\t}\n"
        "}\n"
    )
    before, after = (parse_nft(listing.replace("{n}", n)) for n in ("0", "2"))
    walk = walk_of(Observation(TIMEOUT, diff(before, after)), "router")
    assert [(s.hook, s.stopped) for s in walk.stations] == [("ROUTING", ""), ("FORWARD", "drop")]


def test_a_documents_failed_probe_walks_the_routers_whose_counters_moved():
    """Document mode's walk: the command as typed is what was sent; of two routers, the one
    whose counters did not move is not drawn (its packets never went there)."""
    before = {
        "router": parse_counters((DUMPS / "defect_before.txt").read_text()),
        "router2": parse_counters((DUMPS / "defect_before.txt").read_text()),
        "gone": None,  # its counters could not be read
    }
    after = {
        "router": parse_counters((DUMPS / "defect_after.txt").read_text()),
        "router2": before["router2"],
        "gone": None,
    }
    walks = document_walks(before, after, "curl http://192.168.10.100", answered=False)
    assert [w.router for w in walks] == ["router"]
    assert [s.hook for s in walks[0].stations] == ["PREROUTING", "ROUTING", "FORWARD"]
    assert walks[0].end == "not-reached"
    said = said_walk(walks[0])
    assert said["sent"] == ["curl http://192.168.10.100"]
    shown = "\n".join(texts(render_svg(walk_dot(walks[0]))))
    assert "curl http://192.168.10.100" in shown
    assert "✗ DROPPED HERE" in shown
    # No router counted anything: each readable one is walked (lost before any counter).
    still = document_walks(before, before, "ping -c 1 192.168.20.20", answered=False)
    assert [w.router for w in still] == ["router", "router2"]
    assert {w.end for w in still} == {"no-answer"}
