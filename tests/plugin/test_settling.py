"""Negative probes settle on evidence (observation/settling.py), on the workshop's lab.

A probe that must get no answer stops once the router's counters show its packets dropped,
and says which rule took them; probes sent together are settled together; without such
evidence a probe keeps its whole window; and it still reports an answer when one comes (a
negative claim on a wrong lab fails).
"""

from __future__ import annotations

import pytest

from pytest_vlanlb.observation.counters import observe
from pytest_vlanlb.observation.probes import (
    NEGATIVE_WAIT,
    HttpOutcome,
    http_get_negative,
    ping_lost,
    run_together,
)
from pytest_vlanlb.observation.words import Words

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
