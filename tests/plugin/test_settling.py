"""Negative probes settle on evidence (observation/settling.py), on the workshop's lab.

A probe that must get no answer stops once the router's counters show its packets dropped,
and says which rule took them; probes sent together are settled together; a probe to an
on-link address stops once everyone else on the segment was asked for it by ARP and none
answered (observation/arp.py); without such evidence a probe keeps its whole window; and it
still reports an answer when one comes (a negative claim on a wrong lab fails).
"""

from __future__ import annotations

import subprocess

import pytest

from pytest_vlanlb.observation.counters import observe
from pytest_vlanlb.observation.probes import (
    NEGATIVE_WAIT,
    HttpOutcome,
    http_get_negative,
    ping_lost,
    run_together,
)
from pytest_vlanlb.observation.words import Unanswered, Words

pytestmark = pytest.mark.vlanlb(topology="basic")


@pytest.fixture(scope="module")
def addr(vlanlb_topology):
    """The workshop's addresses in the topology in use (as tests/lab/conftest.py has them)."""
    service = vlanlb_topology.service

    class Addresses:
        backend = str(service.backend_address)
        vip_url = f"http://{service.vip}"
        direct_url = f"http://{service.backend_address}"

    return Addresses


@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop"])
def test_a_dropped_ping_is_stopped_on_the_drop_rules_counter(
    vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    seen = observe(
        vlanlb_router, lambda: ping_lost(vlanlb_client, addr.backend, evidence=[vlanlb_router])
    )
    lost = seen.result
    assert (lost.transmitted, lost.received) == (2, 0), seen.explain()
    assert "dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP`" in str(lost), str(lost)
    assert seen.moved("filter", "FORWARD", "DROP") == 2, seen.explain()  # its own two, no more
    japanese = Words("ja").ping(lost)
    assert "根拠が出たので打ち切り" in japanese, japanese
    assert "FORWARD のルール 1" in japanese, japanese


@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop", "vip", "dnat", "snat"])
def test_negative_probes_sent_together_are_settled_together_on_all_their_drops(
    vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    """Three silences at once (2 + 1 + 1 packets): counters cannot tell their packets apart,
    so they are settled together, once the drops cover all four."""
    watched = [vlanlb_router]
    lost, direct, vip = run_together(
        lambda: ping_lost(vlanlb_client, addr.backend, evidence=watched),
        lambda: http_get_negative(vlanlb_client, addr.direct_url, evidence=watched),
        lambda: http_get_negative(vlanlb_client, addr.vip_url, evidence=watched),
    )
    assert lost.received == 0, str(lost)
    for got in (direct, vip):
        assert got.outcome is HttpOutcome.TIMEOUT, str(got)
    for result in (lost, direct, vip):
        said = str(result)
        assert "4 packets dropped by filter FORWARD rule 1" in said, said
        assert "with the 2 other probe(s) sent beside it" in said, said


@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop"])
def test_a_silence_without_evidence_holds_the_probes_beside_it_to_their_window(
    vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    """Nobody owns the VIP: its request's packets reach no rule, so the drops of the direct
    ping never cover every packet in flight, and neither probe is stopped early."""
    watched = [vlanlb_router]
    lost, vip = run_together(
        lambda: ping_lost(vlanlb_client, addr.backend, evidence=watched),
        lambda: http_get_negative(vlanlb_client, addr.vip_url, evidence=watched),
    )
    assert (lost.received, lost.stopped_by) == (0, ()), str(lost)
    assert (vip.outcome, vip.stopped_by) == (HttpOutcome.TIMEOUT, ()), str(vip)


@pytest.mark.vlanlb(layers=["webserver"])
def test_silence_without_evidence_keeps_its_whole_window(
    vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    """Nobody owns the VIP: ARP goes unanswered, no rule counts anything, so the request
    runs its whole window and is a plain timeout."""
    got = http_get_negative(vlanlb_client, addr.vip_url, evidence=[vlanlb_router])
    assert got.outcome is HttpOutcome.TIMEOUT, str(got)
    assert got.stopped_by == (), str(got)
    assert got.elapsed >= NEGATIVE_WAIT * 0.9, str(got)  # curl's own clock: it waited


@pytest.mark.vlanlb(layers=["webserver"])
def test_an_answer_still_fails_a_negative_probe(vlanlb_layers, vlanlb_client, vlanlb_router, addr):
    """No firewall: the 'lost' ping is answered and says so; nothing was stopped."""
    answered = ping_lost(vlanlb_client, addr.backend, evidence=[vlanlb_router])
    assert answered.received == 2, str(answered)
    assert answered.stopped_by == (), str(answered)
    got = http_get_negative(vlanlb_client, addr.direct_url, evidence=[vlanlb_router])
    assert got.outcome is HttpOutcome.OK, str(got)
    assert got.stopped_by == (), str(got)


@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop"])
def test_nobody_answering_arp_settles_the_request_to_an_unowned_vip_by_itself(
    vlanlb_lab, vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    """No VIP yet: a's ARP for it reached the router, a's only neighbour on VLAN 10, which did
    not answer, so the request can never leave a. That settles the request alone: the
    direct probes beside it are still settled by their own drops, together."""
    segment = vlanlb_lab.segment_peers(vlanlb_client)
    assert [n.name for n in segment] == ["router"]
    watched = [vlanlb_router]
    vip, lost, direct = run_together(
        lambda: http_get_negative(vlanlb_client, addr.vip_url, evidence=watched, segment=segment),
        lambda: ping_lost(vlanlb_client, addr.backend, evidence=watched),
        lambda: http_get_negative(vlanlb_client, addr.direct_url, evidence=watched),
    )
    vip_address = addr.vip_url.removeprefix("http://")
    assert vip.outcome is HttpOutcome.TIMEOUT, str(vip)
    assert vip.stopped_by == (Unanswered(vip_address, (vlanlb_router.container_name,)),), str(vip)
    assert vip.elapsed < NEGATIVE_WAIT, str(vip)  # curl's own clock: it did not wait it out
    assert vlanlb_client.neighbour(vip_address) is None  # and indeed nobody answered
    for result in (lost, direct):
        said = str(result)
        assert "3 packets dropped by filter FORWARD rule 1" in said, said
        assert "with the 1 other probe(s) sent beside it" in said, said
    assert "の ARP 要求" in Words("ja").http(vip)


@pytest.mark.vlanlb(layers=["vip"])
def test_arp_that_is_answered_settles_nothing(
    vlanlb_lab, vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    """The router owns the VIP and answers a's ARP: a 'lost' ping to it is answered and says
    so. A target off a's segment (b) is never settled by ARP either: a asks for its gateway."""
    segment = vlanlb_lab.segment_peers(vlanlb_client)
    vip_address = addr.vip_url.removeprefix("http://")
    answered = ping_lost(vlanlb_client, vip_address, segment=segment)
    assert (answered.received, answered.stopped_by) == (2, ()), str(answered)
    routed = ping_lost(vlanlb_client, addr.backend, segment=segment)
    assert (routed.received, routed.stopped_by) == (2, ()), str(routed)


@pytest.mark.vlanlb(layers=["webserver"])
def test_a_neighbour_that_proxies_arp_could_answer_late_so_there_is_no_evidence(
    vlanlb_lab, vlanlb_layers, vlanlb_client, vlanlb_router, addr
):
    """Proxy ARP may answer after a random delay (proxy_delay): with it on, an unanswered
    request proves nothing, and the request to the unowned VIP keeps its whole window."""
    public_if = vlanlb_lab.router_interface("public")
    key = f"net.ipv4.conf.{public_if}.proxy_arp"
    vlanlb_router.write_sysctl(key, "1")
    try:
        got = http_get_negative(
            vlanlb_client, addr.vip_url, segment=vlanlb_lab.segment_peers(vlanlb_client)
        )
    finally:
        vlanlb_router.write_sysctl(key, "0")
    assert got.outcome is HttpOutcome.TIMEOUT, str(got)
    assert got.stopped_by == (), str(got)
    assert got.elapsed >= NEGATIVE_WAIT * 0.9, str(got)


def test_the_host_never_answers_arp_on_the_labs_wires(vlanlb_lab, vlanlb_client, vlanlb_router):
    """The host hears every broadcast of VLAN 10 on its end of the wire. Told that the host's
    own address is on its link, a asks for it by ARP there: no answer comes (the host's end
    is NOARP), so ARP nobody in the lab answered is nobody's, and nothing of a's reaches
    the host that way."""
    route = subprocess.run(  # the host's address towards the outside: surely the host's own
        ["ip", "-4", "-o", "route", "get", "192.0.2.1"], capture_output=True, text=True
    ).stdout.split()
    host = route[route.index("src") + 1]
    client_if = vlanlb_client.interface_on("public")
    netns = ["nsenter", "-t", str(vlanlb_client.pid()), "-n"]
    subprocess.run([*netns, "ip", "route", "add", f"{host}/32", "dev", client_if], check=True)
    try:
        lost = ping_lost(
            vlanlb_client, host, count=1, segment=vlanlb_lab.segment_peers(vlanlb_client)
        )
        answered_by = vlanlb_client.neighbour(host)
    finally:
        subprocess.run([*netns, "ip", "route", "del", f"{host}/32"], check=True)
        subprocess.run([*netns, "ip", "neigh", "flush", "to", host], check=True)
    assert answered_by is None, f"the host answered a's ARP for {host}: {answered_by}"
    assert lost.received == 0, str(lost)
    assert lost.stopped_by == (Unanswered(host, (vlanlb_router.container_name,)),), str(lost)
