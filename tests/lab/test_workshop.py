"""The workshop's claims (k8s_lb_ja.md), observed on the network with layers on one lab.

Every failure message carries the probe's result and the router's counter diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_vlanlb.lab.layers import peers_seen
from pytest_vlanlb.observation.counters import observe
from pytest_vlanlb.observation.probes import (
    HttpOutcome,
    http_expecting,
    http_get,
    http_get_negative,
    ping,
    ping_lost,
    run_together,
)

#: The workshop's lab: these claims are about the basic topology's one router and pod b.
pytestmark = pytest.mark.vlanlb(topology="basic")

GREETING = "Hello from Pod B\n"

OK, REFUSED, TIMEOUT = HttpOutcome.OK, HttpOutcome.REFUSED, HttpOutcome.TIMEOUT


@dataclass(frozen=True)
class Row:
    layers: tuple[str, ...]
    vip: HttpOutcome  # curl http://VIP from a
    direct: bool  # a reaches b directly (ping and HTTP)
    why: str

    @property
    def id(self) -> str:
        return "+".join(self.layers) or "base"


FULL = ("vip", "dnat", "snat")
TRUTH_TABLE = [
    Row(("webserver",), TIMEOUT, True, "nobody owns the VIP: ARP for it goes unanswered"),
    Row(("webserver", "vip"), REFUSED, True, "the router owns the VIP, nothing listens on it"),
    Row(("webserver", "vip", "dnat"), OK, True, "b answers via its default route (the router)"),
    Row(("webserver", *FULL), OK, True, "the workshop's Steps 1, 3-6"),
    Row(("webserver", "firewall:workshop"), TIMEOUT, False, "nobody owns the VIP"),
    Row(("webserver", "firewall:dnat-aware"), TIMEOUT, False, "nobody owns the VIP"),
    Row(("webserver", "firewall:none", *FULL), OK, True, "no firewall: nothing in the way"),
    Row(
        ("webserver", "firewall:workshop", *FULL),
        TIMEOUT,
        False,
        "THE WORKSHOP'S DEFECT: FORWARD sees the DNAT'ed SYN and Step 2's DROP eats it",
    ),
    Row(
        ("webserver", "firewall:workshop", "vip", "dnat"),
        TIMEOUT,
        False,
        "same defect without SNAT",
    ),
    Row(
        ("webserver", "firewall:dnat-aware", *FULL),
        OK,
        False,
        "the corrected firewall blocks direct traffic and lets DNAT'ed traffic through",
    ),
    Row(
        ("webserver", "firewall:dnat-aware", "vip", "dnat"),
        OK,
        False,
        "corrected firewall, no SNAT: still answers (b routes via the router)",
    ),
    Row(FULL, REFUSED, True, "DNAT to b, but b's server is stopped: b sends a RST"),
    Row(("firewall:dnat-aware", *FULL), REFUSED, False, "b's server stopped, behind the firewall"),
    Row(("firewall:workshop", *FULL), TIMEOUT, False, "the defect hides even the RST"),
]


@pytest.mark.parametrize("row", TRUTH_TABLE, ids=[r.id for r in TRUTH_TABLE])
def test_truth_table(row, vlanlb_lab, vlanlb_layers, vlanlb_client, addr):
    vlanlb_layers.apply(*row.layers)
    router = vlanlb_lab.router
    webserver = "webserver" in row.layers
    watched = [router]  # a silence settles early once its packets show on a DROP's counter
    # ... or, with no VIP, once a's ARP for it reached everyone on VLAN 10 and none answered
    segment = vlanlb_lab.segment_peers(vlanlb_client)

    # Only silence is judged after a short wait; an answer or a RST may come late under load.
    def vip():
        return http_expecting(
            vlanlb_client, addr.vip_url, row.vip, evidence=watched, segment=segment
        )

    def direct_ping():
        return (
            ping(vlanlb_client, addr.backend)
            if row.direct
            else ping_lost(vlanlb_client, addr.backend, evidence=watched)
        )

    direct_expected = (OK if webserver else REFUSED) if row.direct else TIMEOUT

    def direct_http():
        return http_expecting(vlanlb_client, addr.direct_url, direct_expected, evidence=watched)

    seen = observe(router, lambda: run_together(vip, direct_ping, direct_http))
    vip_result, ping_result, http_result = seen.result
    context = f"layers {row.id} ({row.why})\n{seen.explain()}"
    assert vip_result.outcome is row.vip, context
    if row.vip is OK:
        assert vip_result.body == GREETING, context
    if row.direct:
        assert ping_result.received == 1, context
        assert http_result.outcome is direct_expected, context
    else:
        assert ping_result.transmitted == 2, context
        assert ping_result.received == 0, context
        assert http_result.outcome is TIMEOUT, context  # dropped, not refused


# --- the workshop's claims, one by one ----------------------------------------------------


def test_base_a_reaches_b_by_ping_and_http(vlanlb_client, vlanlb_webserver, addr):
    pinged, got = run_together(
        lambda: ping(vlanlb_client, addr.backend, count=2),
        lambda: http_get(vlanlb_client, addr.direct_url),
    )
    assert pinged.received == 2, str(pinged)
    assert got.outcome is OK, str(got)
    assert got.body == GREETING


@pytest.mark.parametrize("vlanlb_firewall", ["workshop", "dnat-aware"], indirect=True)
def test_firewall_blocks_a_to_b_but_not_the_router(
    vlanlb_firewall,
    vlanlb_webserver,
    vlanlb_lab,
    vlanlb_client,
    vlanlb_backend,
    vlanlb_router,
    addr,
):
    seen = observe(
        vlanlb_router,
        lambda: run_together(
            lambda: ping_lost(vlanlb_client, addr.backend, evidence=[vlanlb_router]),
            lambda: http_get_negative(vlanlb_client, addr.direct_url, evidence=[vlanlb_router]),
            lambda: ping(vlanlb_backend, addr.router_pods),
            lambda: ping(vlanlb_router, addr.backend),
        ),
    )
    lost, dropped, b_to_router, router_to_b = seen.result
    assert lost.transmitted == 2, seen.explain()
    assert lost.received == 0, seen.explain()  # Step 2's "packet loss 100%"
    assert dropped.outcome is TIMEOUT, seen.explain()  # dropped, not refused
    assert b_to_router.received == 1, seen.explain()
    assert router_to_b.received == 1, seen.explain()
    # The drops are the firewall's own doing, visible in its counter.
    assert seen.moved("filter", "FORWARD", "DROP") >= 3, seen.explain()  # 2 pings + a SYN


@pytest.mark.vlanlb(layers=["webserver", "firewall:dnat-aware", "vip", "dnat", "snat"])
def test_step6_vip_answers_while_direct_ping_fails(
    vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    got, lost = run_together(
        lambda: http_get(vlanlb_client, addr.vip_url),
        lambda: ping_lost(vlanlb_client, addr.backend, evidence=[vlanlb_router]),
    )
    assert got.outcome is OK, str(got)
    assert got.body.rstrip("\n") == "Hello from Pod B"
    assert lost.received == 0, str(lost)


@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop", "vip", "dnat", "snat"])
def test_step6_as_written_times_out_the_workshop_defect(
    vlanlb_layers, vlanlb_router, vlanlb_client, addr
):
    """k8s_lb_ja.md Steps 1-6 typed exactly: the VIP request times out.

    FORWARD sees packets after PREROUTING's DNAT, so Step 2's `-i eth1 -o eth2 -j DROP`
    also drops the DNAT'ed SYNs. If the workshop text is fixed (or the kernel changes),
    this test fails and the README's defect note must change with it.
    """
    seen = observe(
        vlanlb_router,
        lambda: http_get_negative(vlanlb_client, addr.vip_url, evidence=[vlanlb_router]),
    )
    assert seen.result.outcome is TIMEOUT, seen.explain()
    assert seen.moved("nat", "PREROUTING", "DNAT") == 1, seen.explain()
    assert seen.moved("filter", "FORWARD", "DROP") >= 1, seen.explain()
    assert "dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP` after DNAT" in (
        seen.explain()
    )


@pytest.mark.parametrize(
    ("layers", "client_seen"),
    [
        (["webserver", "vip", "dnat", "snat"], "router_pods"),
        (["webserver", "vip", "dnat"], "client"),
    ],
    ids=["snat", "no-snat"],
)
def test_snat_decides_the_client_address_b_sees(
    layers, client_seen, vlanlb_layers, vlanlb_client, vlanlb_backend, addr
):
    vlanlb_layers.apply(*layers)
    got = http_get(vlanlb_client, addr.vip_url)
    assert got.outcome is OK, str(got)
    assert got.body == GREETING
    assert peers_seen(vlanlb_backend)[-1:] == [getattr(addr, client_seen)]


@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_vip_without_dnat_is_refused_at_once(vlanlb_layers, vlanlb_client, addr):
    got = http_get(vlanlb_client, addr.vip_url)
    assert got.outcome is REFUSED, str(got)
    assert got.elapsed < 1.0, str(got)  # a RST, not a wait


@pytest.mark.vlanlb(layers=["vip", "dnat", "snat"])
def test_vip_with_dnat_and_server_stopped_is_refused(
    vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    seen = observe(vlanlb_router, lambda: http_get(vlanlb_client, addr.vip_url))
    assert seen.result.outcome is REFUSED, seen.explain()
    assert seen.moved("nat", "PREROUTING", "DNAT") == 1, seen.explain()


def test_arp_for_the_vip_answers_with_the_routers_public_mac(
    vlanlb_lab, vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    vlanlb_client.flush_neighbours()
    segment = vlanlb_lab.segment_peers(vlanlb_client)
    before = ping_lost(vlanlb_client, addr.vip, count=1, segment=segment)
    assert before.received == 0, str(before)
    assert vlanlb_client.neighbour(addr.vip) is None  # nobody answered ARP
    # a's pending resolution would retry only on its 1 s timer: start the next one afresh.
    vlanlb_client.forget_unresolved_neighbours()
    vlanlb_layers.apply("vip")
    answered = ping(vlanlb_client, addr.vip)
    assert answered.received == 1, str(answered)
    public_if = vlanlb_lab.router_interface("public")
    assert vlanlb_client.neighbour(addr.vip) == vlanlb_router.mac_of(public_if)


def test_removing_the_firewall_restores_a_to_b(
    vlanlb_lab, vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    vlanlb_layers.apply("firewall:workshop")
    assert ping_lost(vlanlb_client, addr.backend, evidence=[vlanlb_router]).received == 0
    vlanlb_layers.revert()  # the workshop's cleanup: iptables -D FORWARD ...
    assert ping(vlanlb_client, addr.backend).received == 1
