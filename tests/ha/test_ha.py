"""MetalLB L2 failover between two routers (`pytest --vlanlb-topology=ha`).

A request loop runs on client a (each request bounded by 0.2 s, timestamped by a's clock)
while the leader r1 loses its VLAN-10 link and r2 takes the VIP. Bounds are derived from the
timers involved, stated in each test; the measured figures are printed.
"""

from __future__ import annotations

import pytest

from pytest_vlanlb.lab.failover import (
    GARP_COUNT,
    LINUX_DEFAULT_TIMERS,
    SETTLE,
    NeighbourTimers,
    RequestLoop,
    failed_leader,
)
from pytest_vlanlb.observation.counters import observe

pytestmark = pytest.mark.vlanlb(topology="ha")

REQUEST_TIMEOUT = 0.2
#: How far apart two requests of the loop can start: one request's time limit, plus the
#: loop's own work (forking curl and date) on a busy 2-core machine.
LOOP_STEP = REQUEST_TIMEOUT + 0.3
#: a's ARP timers for the no-GARP test: Linux's defaults would make it last up to 53 s
#: (LINUX_DEFAULT_TIMERS); shortened so the same state machine runs in seconds.
SHORT_TIMERS = NeighbourTimers(
    base_reachable_ms=1000, delay_first_probe_s=1, retrans_ms=300, ucast_solicit=3
)


@pytest.fixture
def routers(vlanlb_routers):
    leader, follower = vlanlb_routers
    return leader, follower


@pytest.fixture
def vip_url(vlanlb_topology):
    return f"http://{vlanlb_topology.service.vip}"


@pytest.fixture
def client(vlanlb_lab, vlanlb_client):
    """Client a, its ARP cache and timers as they were before the test afterwards."""
    interface = vlanlb_client.interface_on(
        vlanlb_lab.topology.segment_of(vlanlb_lab.topology.service.vip)
    )
    timers = NeighbourTimers.read(vlanlb_client, interface)
    yield vlanlb_client
    timers.write(vlanlb_client, interface)
    vlanlb_client.flush_neighbours()


def loop(client, url, seconds):
    return RequestLoop(client, url, seconds=seconds, timeout=REQUEST_TIMEOUT)


@pytest.mark.vlanlb(layers=["webserver", "vip", "dnat", "snat"])
def test_with_gratuitous_arp_the_vip_answers_again_within_a_second(
    vlanlb_layers, vlanlb_lab, routers, client, vip_url
):
    """r2 announces the VIP at once: a moves to r2's MAC with the first announcement. The
    bound: the announcement is immediate, so the gap is at most one request in flight when
    the link went (0.2 s) plus one loop step (0.5 s) = 0.7 s < 1 s."""
    leader, follower = routers
    with failed_leader(vlanlb_lab, leader, follower) as fail:
        gap = loop(client, vip_url, 3.0).around(lambda: fail(True))
    print(f"\nfailover with gratuitous ARP ({GARP_COUNT} announcements): {gap}")
    assert len(gap.before) >= SETTLE, gap  # answered before the failure, not in flight
    assert all(r.ok for r in gap.before), gap
    assert gap.seconds is not None, gap
    assert gap.seconds < 1.0, gap
    assert gap.failed_after_recovery == 0, gap


@pytest.mark.vlanlb(layers=["webserver", "vip", "dnat", "snat"])
def test_without_gratuitous_arp_a_keeps_the_dead_routers_mac_until_it_expires(
    vlanlb_layers, vlanlb_lab, routers, client, vip_url
):
    """MetalLB's "ARP cache" problem: a keeps sending to r1's MAC until its neighbour entry
    runs REACHABLE -> STALE -> DELAY -> PROBE -> FAILED and a broadcast ARP finds r2.

    With a's timers at SHORT_TIMERS the gap is at least DELAY + probes (1 + 3 x 0.3 = 1.9 s,
    the entry already STALE) and at most 1.5 x base_reachable + that (3.4 s); a request in
    flight at the failure can confirm the dead MAC once more when its socket closes (Linux
    confirms lazily, on a socket's next transmission), which restarts the walk: 5.9 s. Plus
    one loop step. Both modes are seen here (about 3.1 s and 4.8 s). With Linux's default
    timers the same walk lasts up to 53 s."""
    leader, follower = routers
    interface = client.interface_on(vlanlb_lab.topology.segment_of(vlanlb_lab.topology.service.vip))
    SHORT_TIMERS.write(client, interface)
    with failed_leader(vlanlb_lab, leader, follower) as fail:
        gap = loop(client, vip_url, 8.0).around(lambda: fail(False))
        moved_to_r2 = neighbour_is(client, vlanlb_lab, follower)  # by a broadcast ARP
    print(
        f"\nfailover without gratuitous ARP: {gap}; bounds from a's timers "
        f"{SHORT_TIMERS.shortest_stale_use:.1f}-{SHORT_TIMERS.longest_stale_use:.1f} s, "
        f"{SHORT_TIMERS.longest_with_a_late_confirmation:.1f} s with a late confirmation "
        f"(Linux defaults: up to {LINUX_DEFAULT_TIMERS.longest_stale_use:.0f} s)"
    )
    assert len(gap.before) >= SETTLE, gap
    assert all(r.ok for r in gap.before), gap
    assert gap.seconds is not None, gap
    assert gap.seconds >= SHORT_TIMERS.shortest_stale_use - LOOP_STEP, gap
    assert gap.seconds <= SHORT_TIMERS.longest_with_a_late_confirmation + LOOP_STEP, gap
    assert moved_to_r2, gap


def neighbour_is(client, lab, router) -> bool:
    """a's ARP entry for the VIP is `router`'s MAC on the public segment."""
    vip = str(lab.topology.service.vip)
    public = lab.topology.segment_of(lab.topology.service.vip)
    return client.neighbour(vip) == router.mac_of(router.interface_on(public))


@pytest.mark.vlanlb(layers=["webserver", "vip", "dnat"])
def test_without_snat_the_replies_take_the_dead_routers_way(
    vlanlb_layers, vlanlb_lab, routers, client, vlanlb_backend, vip_url
):
    """b's default gateway is r1 (192.168.20.1). Without SNAT, b sees a's own address and
    sends its replies to r1, which lost its VLAN-10 leg: r2 DNATs every request, none is
    answered. (With SNAT, b answers r2's own address on its segment: the GARP test above.)"""
    leader, follower = routers
    route = vlanlb_backend.exec("ip", "route", "get", "192.168.10.10").stdout
    gateway = str(
        vlanlb_lab.topology.router.address_on(
            vlanlb_lab.topology.segment_of(vlanlb_lab.topology.service.backend_address)
        )
    )
    assert f"via {gateway}" in route, route
    with failed_leader(vlanlb_lab, leader, follower) as fail:
        seen = observe(follower, lambda: loop(client, vip_url, 3.0).around(lambda: fail(True)))
    gap = seen.result
    print(f"\nfailover without SNAT: {gap}")
    assert len(gap.before) >= SETTLE, gap  # answered before the failure, not in flight
    assert all(r.ok for r in gap.before), gap
    assert gap.after, gap
    assert gap.recovered_at is None, f"{gap}\n{seen.explain()}"
    assert seen.moved("nat", "PREROUTING", "DNAT") >= 1, seen.explain()
