"""A kube-proxy Service over three endpoints (`pytest --vlanlb-topology=service`).

Each claim is observed from client a; a failure carries the router's counter diagnosis.
Statistical bounds are derived here, not tuned: see `CRITICAL` and the broken-ladder test.
"""

from __future__ import annotations

import math
import re

import pytest

from pytest_vlanlb.counters import observe
from pytest_vlanlb.layers import peers_seen
from pytest_vlanlb.layers.kube_proxy import chain_names
from pytest_vlanlb.probes import FAILED_MARK, HttpOutcome, http_get, http_many

pytestmark = pytest.mark.vlanlb(topology="service")

#: Chi-square test of uniformity over k = 3 pods: 2 degrees of freedom, whose survival
#: function is exactly exp(-x/2). At a false-alarm rate of 1e-4 per test (so 20 runs of the
#: suite fail by chance with probability 0.2%), the critical value is -2 ln(1e-4) = 18.42.
FALSE_ALARM = 1e-4
CRITICAL = -2 * math.log(FALSE_ALARM)


def chi_square(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


def per_pod(counts, backends) -> list[int]:
    return [counts.get(b.greeting, 0) for b in backends]


def failures(counts) -> int:
    return sum(n for body, n in counts.items() if body.startswith(FAILED_MARK))


@pytest.fixture
def service(vlanlb_topology):
    return vlanlb_topology.service


@pytest.fixture
def vip_url(service):
    return f"http://{service.vip}"


@pytest.mark.vlanlb(layers=["webserver", "vip", "service"])
def test_requests_spread_evenly_over_the_pods(
    vlanlb_layers, vlanlb_client, vlanlb_router, service, vip_url
):
    """300 requests: every one answered, and the spread passes chi-square at 1e-4."""
    seen = observe(vlanlb_router, lambda: http_many(vlanlb_client, vip_url, 300))
    counts = per_pod(seen.result, service.backends)
    stat = chi_square(counts)
    print(
        f"\nspread over b1, b2, b3 of 300 requests: {counts}, chi-square {stat:.2f} "
        f"(critical {CRITICAL:.2f} at {FALSE_ALARM:g})"
    )
    assert failures(seen.result) == 0, seen.explain()
    assert sum(counts) == 300, seen.explain()
    assert stat < CRITICAL, seen.explain()


@pytest.mark.vlanlb(layers=["vip", "service"])
def test_the_chi_square_test_catches_a_broken_ladder(
    vlanlb_layers, vlanlb_client, vlanlb_router, service
):
    """Every rule at probability 1/3 (instead of 1/3, 1/2, 1) sends 1/3, 2/9, 4/9.

    With n connections the statistic's noncentrality is n * 3 * (0 + (1/9)^2 + (1/9)^2)
    = n * 2/27. For n = 1200 that is 88.9: mean 90.9, sd sqrt(2 * (2 + 2 * 88.9)) = 19.0, so
    staying under the critical 18.42 would take a 3.8-sd fluke (p < 1e-4). The test must
    therefore reject, and it does. Counted where kube-proxy decides, on each KUBE-SEP's DNAT
    counter (one per new connection), with no web server: the pods refuse at once, so 1200
    connections take under a second."""
    name = lab_service_name(vlanlb_router)
    endpoints = [f"{b.address}:{b.port}" for b in service.backends]
    chains = chain_names(name, endpoints)
    svc = chains["svc"]
    rules = vlanlb_router.exec("iptables-save", "-t", "nat").stdout.splitlines()
    second = [r for r in rules if r.startswith(f"-A {svc} ")][1]
    broken = re.sub(r"--probability \S+", "--probability 0.3333333333", second)
    vlanlb_router.exec(
        "/bin/sh", "-c", f"iptables -t nat -R {svc} 2 {broken[len(f'-A {svc} ') :]}"
    ).check()
    url = f"http://{service.vip}/?[1-1200]"  # curl's URL globbing: 1200 connections, one process
    seen = observe(vlanlb_router, lambda: vlanlb_client.exec("curl", "-s", "-m", "2", url))
    counts = [seen.moved("nat", chains[e], "DNAT") for e in endpoints]
    stat = chi_square(counts)
    print(f"\nbroken ladder, 1200 connections: {counts}, chi-square {stat:.2f}")
    # Each connection passes kube-proxy's rules at least once; a source port reused while its
    # refused predecessor's conntrack entry lingers is counted again (a few, seen here).
    assert sum(counts) >= 1200, seen.explain()
    assert stat > CRITICAL, seen.explain()


def lab_service_name(router) -> str:
    """kube-proxy's "namespace/name:port" of the lab's Service (read back from a comment)."""
    save = router.exec("iptables-save", "-t", "nat").stdout
    return re.search(r'--comment "(\S+) loadbalancer IP"', save)[1]


@pytest.mark.vlanlb(layers=["webserver", "vip", "service", "affinity"])
def test_affinity_keeps_a_client_on_one_pod(vlanlb_layers, vlanlb_client, vlanlb_router, vip_url):
    seen = observe(vlanlb_router, lambda: http_many(vlanlb_client, vip_url, 50))
    print(f"\n50 requests with sessionAffinity ClientIP: {dict(seen.result)}")
    assert failures(seen.result) == 0, seen.explain()
    assert len(seen.result) == 1, seen.explain()


@pytest.mark.vlanlb(layers=["webserver", "vip", "service"])
def test_a_removed_endpoint_gets_nothing_and_nothing_fails(
    vlanlb_layers, vlanlb_client, vlanlb_router, service, vip_url
):
    """b3 stops being ready (its server still runs): no request reaches it, none fails."""
    vlanlb_layers.set_endpoints(["b1", "b2"])
    seen = observe(vlanlb_router, lambda: http_many(vlanlb_client, vip_url, 150))
    counts = per_pod(seen.result, service.backends)
    print(f"\nendpoints b1, b2 only, 150 requests: {counts}")
    assert failures(seen.result) == 0, seen.explain()
    assert counts[2] == 0, seen.explain()
    # Both remaining pods get some: each misses all 150 with probability 2 * 2^-150.
    assert counts[0] > 0, seen.explain()
    assert counts[1] > 0, seen.explain()


@pytest.mark.vlanlb(layers=["webserver", "vip", "service"])
def test_no_endpoints_is_refused_at_once(vlanlb_layers, vlanlb_client, vlanlb_router, vip_url):
    """kube-proxy's KUBE-EXTERNAL-SERVICES REJECT: refused in well under 100 ms (curl's own
    clock), not left to time out; the REJECT rule's counter shows it was kube-proxy's."""
    vlanlb_layers.set_endpoints([])
    seen = observe(vlanlb_router, lambda: http_get(vlanlb_client, vip_url))
    assert seen.result.outcome is HttpOutcome.REFUSED, seen.explain()
    assert seen.result.elapsed < 0.1, seen.explain()
    assert seen.moved("filter", "KUBE-EXTERNAL-SERVICES", "REJECT") >= 1, seen.explain()


@pytest.mark.parametrize(
    ("policy", "source"),
    [("service", "router_pods"), ("service:local", "client")],
    ids=["Cluster", "Local"],
)
def test_what_the_pods_see_as_the_client(
    vlanlb_layers,
    vlanlb_client,
    vlanlb_router,
    vlanlb_backends,
    vlanlb_topology,
    vip_url,
    policy,
    source,
):
    """Cluster masquerades external traffic (pods see the router's 192.168.20.1); Local keeps
    the client's own address (192.168.10.10)."""
    vlanlb_layers.apply("webserver", "vip", policy)
    topology = vlanlb_topology
    pods = topology.segment_of(topology.service.backend_address)
    public = topology.segment_of(topology.service.vip)
    expected = {
        "router_pods": str(topology.router.address_on(pods)),
        "client": str(topology.client.address_on(public)),
    }[source]
    seen = observe(vlanlb_router, lambda: http_many(vlanlb_client, vip_url, 6))
    assert failures(seen.result) == 0, seen.explain()
    peers = {p for backend in vlanlb_backends for p in peers_seen(backend)}
    assert peers == {expected}, seen.explain()


@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop", "vip", "service"])
def test_kube_forward_lets_service_traffic_past_a_deny_all_firewall(
    vlanlb_layers, vlanlb_client, vlanlb_router, service, vip_url
):
    """Step 2's DROP eats the workshop's DNAT; kube-proxy's KUBE-FORWARD, jumped to first,
    accepts the masquerade-marked Service traffic before the DROP sees it."""
    seen = observe(vlanlb_router, lambda: http_get(vlanlb_client, vip_url))
    assert seen.result.outcome is HttpOutcome.OK, seen.explain()
    assert seen.result.body.strip() in {b.greeting for b in service.backends}, seen.explain()
    assert seen.moved("filter", "KUBE-FORWARD", "ACCEPT") >= 1, seen.explain()
    assert seen.moved("filter", "FORWARD", "DROP") == 0, seen.explain()
