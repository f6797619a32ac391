"""netfilter's trace of a probe's packets, beside the counters: the same rules, the NAT
rewrite the counters cannot show, and nothing left on the router."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vlanlb.errors import CommandError
from pytest_vlanlb.lab.tracing import traced
from pytest_vlanlb.observation.counters import observe
from pytest_vlanlb.observation.probes import HttpOutcome, http_get, http_get_negative
from pytest_vlanlb.observation.trace import TRACE_TABLE

pytestmark = pytest.mark.vlanlb(topology="basic")


def monitors() -> list[str]:
    """`nft monitor` processes on this machine (ours must end with the trace)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"nft" in argv[:1] + argv[3:5] and b"monitor" in argv:
            found.append(cmdline.parent.name)
    return found


def assert_nothing_left(router) -> None:
    assert TRACE_TABLE not in router.exec("nft", "list", "tables").check().stdout
    assert monitors() == []


@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop", "vip", "dnat", "snat"])
def test_a_trace_of_step_6_names_the_rules_the_counters_name(
    vlanlb_layers, vlanlb_router, vlanlb_client, addr
):
    def probe():
        return http_get_negative(vlanlb_client, addr.vip_url, evidence=[vlanlb_router])

    match = f"ip saddr {addr.client} ip daddr {addr.vip} tcp dport 80"
    seen = observe(vlanlb_router, lambda: traced(vlanlb_router, probe, match), kernel=False)
    trace = seen.result
    assert trace.result.outcome is HttpOutcome.TIMEOUT, seen.explain()
    rules = {
        (m.counter.table, m.counter.chain, m.counter.number, m.counter.spec) for m in trace.moves
    }
    counted = {
        (m.counter.table, m.counter.chain, m.counter.number, m.counter.spec) for m in seen.moves
    }
    assert rules == counted, (trace.lines, seen.explain())
    assert ("filter", "FORWARD", 1, "-i eth1 -o eth2 -j DROP") in rules
    dropped = next(m for m in trace.moves if m.counter.target == "DROP")
    assert dropped.packets == seen.moved("filter", "FORWARD", "DROP")  # every SYN, traced
    assert [(r.field, r.before, r.after) for r in trace.rewrites] == [
        ("ip daddr", addr.vip, addr.backend)
    ]
    walk = trace.walk("router")
    assert [(s.hook, s.stopped) for s in walk.stations] == [
        ("PREROUTING", ""),
        ("ROUTING", ""),
        ("FORWARD", "drop"),
    ]
    assert walk.end == "not-reached"
    assert_nothing_left(vlanlb_router)


@pytest.mark.vlanlb(layers=["webserver", "firewall:dnat-aware", "vip", "dnat", "snat"])
def test_a_trace_of_the_working_lab_ends_at_b_with_an_answer(
    vlanlb_layers, vlanlb_router, vlanlb_client, addr
):
    match = f"ip saddr {addr.client} ip daddr {addr.vip} tcp dport 80"
    trace = traced(vlanlb_router, lambda: http_get(vlanlb_client, addr.vip_url), match)
    assert trace.result.outcome is HttpOutcome.OK, str(trace.result)
    walk = trace.walk("router")
    assert walk.end == "answered"
    assert walk.stop is None
    hooks = [s.hook for s in walk.stations]
    assert hooks[0] == "PREROUTING"
    assert "POSTROUTING" in hooks  # the masquerade of Step 5
    assert_nothing_left(vlanlb_router)


def test_a_bad_match_is_one_error_and_leaves_nothing(vlanlb_router, vlanlb_client, addr):
    with pytest.raises(CommandError, match=r"nft -f - in router: .*Error"):
        traced(vlanlb_router, lambda: None, "ip dadr 1.2.3.4")
    assert_nothing_left(vlanlb_router)
