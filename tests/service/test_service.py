"""A kube-proxy Service over three endpoints (`pytest --vlanlb-topology=service`), with every
claim held in both of kube-proxy's modes: iptables and nftables.

Each claim is observed from client a; a failure carries the router's counter diagnosis.
Statistical bounds are derived here, not tuned: see `CRITICAL` and the broken-balance tests.
Where the modes behave differently (a deny-all firewall), the test says so and asserts it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pytest

from pytest_vlanlb.errors import LayerError
from pytest_vlanlb.lab.layers import SERVICE_VARIANTS, LayerStack, lab_facts, peers_seen
from pytest_vlanlb.lab.layers.kube_proxy import iptables, nftables
from pytest_vlanlb.lab.tracing import traced
from pytest_vlanlb.observation.counters import Observation, observe, snapshot
from pytest_vlanlb.observation.probes import (
    FAILED_MARK,
    HttpOutcome,
    http_get,
    http_get_negative,
    http_many,
)
from pytest_vlanlb.observation.trace import TRACE_TABLE
from pytest_vlanlb.observation.words import Picked

pytestmark = pytest.mark.vlanlb(topology="service")

#: Chi-square test of uniformity over k = 3 pods: 2 degrees of freedom, whose survival
#: function is exactly exp(-x/2). At a false-alarm rate of 1e-4 per test (so 20 runs of the
#: suite fail by chance with probability 0.2%), the critical value is -2 ln(1e-4) = 18.42.
FALSE_ALARM = 1e-4
CRITICAL = -2 * math.log(FALSE_ALARM)
#: Connections for the broken-balance tests: counted on kube-proxy's DNAT counters with no
#: web server (the pods refuse at once), so 1200 take about a second.
BROKEN_CONNECTIONS = 1200

#: The Cluster-policy layer of each mode, and the ids the tests show.
CLUSTER = {"iptables": "service", "nftables": "service:nftables"}
LOCAL = {"iptables": "service:local", "nftables": "service:nftables:local"}
both_modes = pytest.mark.parametrize(
    "vlanlb_service", list(CLUSTER.values()), indirect=True, ids=list(CLUSTER)
)


@dataclass(frozen=True)
class KubeProxyView:
    """Where each mode decides, for reading its counters: an endpoint's DNAT, the reject."""

    layers: LayerStack
    service: str  # kube-proxy's "namespace/name:port"

    @property
    def mode(self) -> str:
        """The mode of the service layer applied (read when used: fixtures apply it)."""
        names = self.layers.names()
        modes = {SERVICE_VARIANTS[n][0] for n in names if n in SERVICE_VARIANTS}
        assert len(modes) == 1, f"one service layer expected, have {names}"
        return modes.pop()

    def dnat(self, endpoint: str) -> tuple[str, str, str]:
        if self.mode == "iptables":
            chain = iptables.chain_names(self.service, [endpoint])[endpoint]
            return ("nat", chain, "DNAT")
        chain = nftables.chain_names(self.service, [endpoint])[endpoint]
        return ("ip kube-proxy", chain, "dnat")

    def picks(self, seen: Observation, endpoints: list[str]) -> list[int]:
        """New connections DNATed to each endpoint during the probe."""
        return [seen.moved(*self.dnat(e)) for e in endpoints]

    @property
    def reject(self) -> tuple[str, str, str]:
        if self.mode == "iptables":
            return ("filter", "KUBE-EXTERNAL-SERVICES", "REJECT")
        return ("ip kube-proxy", "reject-chain", "reject")


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
def endpoints(service) -> list[str]:
    return [f"{b.address}:{b.port}" for b in service.backends]


@pytest.fixture
def vip_url(service):
    return f"http://{service.vip}"


@pytest.fixture
def kube_proxy(vlanlb_lab, vlanlb_layers) -> KubeProxyView:
    """The counters' view of the mode the test's service layer runs kube-proxy in."""
    return KubeProxyView(vlanlb_layers, lab_facts(vlanlb_lab)["service_name"])


@both_modes
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_requests_spread_evenly_over_the_pods(
    vlanlb_service, kube_proxy, vlanlb_client, vlanlb_router, service, endpoints, vip_url
):
    """300 requests: every one answered, and the spread passes chi-square at 1e-4, counted
    both by the answers and where kube-proxy decided (the DNAT counters)."""
    seen = observe(vlanlb_router, lambda: http_many(vlanlb_client, vip_url, 300))
    counts = per_pod(seen.result, service.backends)
    stat = chi_square(counts)
    print(
        f"\n{kube_proxy.mode}: spread over b1, b2, b3 of 300 requests: {counts}, chi-square "
        f"{stat:.2f} (critical {CRITICAL:.2f} at {FALSE_ALARM:g})"
    )
    assert failures(seen.result) == 0, seen.explain()
    assert sum(counts) == 300, seen.explain()
    assert stat < CRITICAL, seen.explain()
    # Where kube-proxy decided: a DNAT counter counts new conntrack entries, so each pod's is
    # at least its answers (a SYN sent again before its entry was confirmed counts twice:
    # seen once, 51 for 50), and the counters pass the same test.
    picks = kube_proxy.picks(seen, endpoints)
    assert all(p >= c for p, c in zip(picks, counts, strict=True)), (picks, seen.explain())
    assert chi_square(picks) < CRITICAL, (picks, seen.explain())


@pytest.mark.vlanlb(layers=["vip", "service"])
def test_the_chi_square_test_catches_a_broken_ladder(
    vlanlb_layers, kube_proxy, vlanlb_client, vlanlb_router, service, endpoints
):
    """iptables mode: every rule at probability 1/3 (instead of 1/3, 1/2, 1) sends 1/3, 2/9,
    4/9.

    With n connections the statistic's noncentrality is n * 3 * (0 + (1/9)^2 + (1/9)^2)
    = n * 2/27. For n = 1200 that is 88.9: mean 90.9, sd sqrt(2 * (2 + 2 * 88.9)) = 19.0, so
    staying under the critical 18.42 would take a 3.8-sd fluke (p < 1e-4). The test must
    therefore reject, and it does."""
    svc = iptables.chain_names(kube_proxy.service, endpoints)["svc"]
    rules = vlanlb_router.exec("iptables-save", "-t", "nat").stdout.splitlines()
    second = [r for r in rules if r.startswith(f"-A {svc} ")][1]
    broken = re.sub(r"--probability \S+", "--probability 0.3333333333", second)
    vlanlb_router.exec(
        "/bin/sh", "-c", f"iptables -t nat -R {svc} 2 {broken[len(f'-A {svc} ') :]}"
    ).check()
    seen = many_connections(vlanlb_client, vlanlb_router, service)
    counts = kube_proxy.picks(seen, endpoints)
    stat = chi_square(counts)
    print(f"\nbroken ladder, {BROKEN_CONNECTIONS} connections: {counts}, chi-square {stat:.2f}")
    # Each connection passes kube-proxy's rules at least once; a source port reused while its
    # refused predecessor's conntrack entry lingers is counted again (a few, seen here).
    assert sum(counts) >= BROKEN_CONNECTIONS, seen.explain()
    assert stat > CRITICAL, seen.explain()


def many_connections(client, router, service) -> Observation:
    """BROKEN_CONNECTIONS new connections to the VIP in one curl process (URL globbing)."""
    url = f"http://{service.vip}/?[1-{BROKEN_CONNECTIONS}]"
    return observe(router, lambda: client.exec("curl", "-s", "-m", "2", url))


@pytest.mark.parametrize(
    ("modulus", "kept"),
    [(2, ["b1", "b2", "b3"]), (3, ["b1", "b3"])],
    ids=["wrong-mod", "missing-element"],
)
@pytest.mark.vlanlb(layers=["vip", "service:nftables"])
def test_the_chi_square_test_catches_a_broken_numgen_map(
    vlanlb_layers, kube_proxy, vlanlb_client, vlanlb_router, service, endpoints, modulus, kept
):
    """nftables mode has no ladder to break: one `numgen random mod N vmap` picks. Its two
    ways to be wrong are caught the same way.

    - wrong mod (`mod 2` over three elements): b1 and b2 get 1/2 each, b3 nothing. Over the
      counts the noncentrality is n * 3 * ((1/6)^2 + (1/6)^2 + (1/3)^2) = n/2 = 600 for
      n = 1200, so the statistic lands near 602, far past 18.42.
    - a map with a missing endpoint (`mod 3` with b2's element gone): a third of the numbers
      match no element, so those connections fall through the map undispatched and reach
      the router itself (the VIP is its address), which refuses them. b1 and b3 get 1/3 of
      all each, b2 nothing: over the 800 DNATed the statistic is n/3 = 400 for n = 1200. The
      fall-through shows on the map rule's own counter and in the diagnosis.
    """
    names = nftables.chain_names(kube_proxy.service, endpoints)
    chain = names["svc"]
    listing = vlanlb_router.exec("nft", "-a", "list", "chain", "ip", "kube-proxy", chain).stdout
    handle = re.search(r"numgen random .* # handle (\d+)", listing)[1]
    kept_endpoints = [e for b, e in zip(service.backends, endpoints, strict=True) if b.node in kept]
    rule = nftables.balance_rule(names, kept_endpoints, modulus)
    vlanlb_router.exec(
        "nft", "replace", "rule", "ip", "kube-proxy", chain, "handle", handle, *rule.split()
    ).check()
    seen = many_connections(vlanlb_client, vlanlb_router, service)
    counts = kube_proxy.picks(seen, endpoints)
    stat = chi_square(counts)
    evaluated = seen.moved("ip kube-proxy", chain, "vmap")
    print(
        f"\nnumgen map {rule!r}, {BROKEN_CONNECTIONS} connections: {counts}, "
        f"chi-square {stat:.2f}, {evaluated - sum(counts)} fell through"
    )
    assert evaluated >= BROKEN_CONNECTIONS, seen.explain()
    assert stat > CRITICAL, seen.explain()
    if len(kept) < len(endpoints):
        # A third fall through: binomial(1200, 1/3) is 400 +- 16, so 300 is 6 sd below.
        assert evaluated - sum(counts) > 300, seen.explain()
        assert "its map has no element for their number" in seen.explain()


@both_modes
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_affinity_keeps_a_client_on_one_pod(
    vlanlb_service, vlanlb_layers, kube_proxy, vlanlb_client, vlanlb_router, endpoints, vip_url
):
    """sessionAffinity ClientIP: iptables mode remembers the client with `-m recent`,
    nftables mode in a dynamic set per endpoint; either way 50 requests land on one pod."""
    vlanlb_layers.apply("affinity")
    seen = observe(vlanlb_router, lambda: http_many(vlanlb_client, vip_url, 50))
    print(f"\n{kube_proxy.mode}, 50 requests with sessionAffinity ClientIP: {dict(seen.result)}")
    assert failures(seen.result) == 0, seen.explain()
    assert len(seen.result) == 1, seen.explain()
    # Every connection was DNATed to that one pod, none to another (at least 50: see the
    # spread test on counting new conntrack entries).
    picks = sorted(kube_proxy.picks(seen, endpoints))
    assert picks[:2] == [0, 0], seen.explain()
    assert picks[2] >= 50, seen.explain()


@both_modes
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_a_removed_endpoint_gets_nothing_and_nothing_fails(
    vlanlb_service, vlanlb_layers, vlanlb_client, vlanlb_router, service, vip_url
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


@both_modes
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_no_endpoints_is_refused_at_once(
    vlanlb_service, vlanlb_layers, kube_proxy, vlanlb_client, vlanlb_router, vip_url
):
    """kube-proxy rejects a Service with no endpoints (iptables: KUBE-EXTERNAL-SERVICES;
    nftables: no-endpoint-services -> reject-chain): refused in well under 100 ms (curl's
    own clock), not left to time out; the reject rule's counter shows it was kube-proxy's."""
    vlanlb_layers.set_endpoints([])
    seen = observe(vlanlb_router, lambda: http_get(vlanlb_client, vip_url))
    assert seen.result.outcome is HttpOutcome.REFUSED, seen.explain()
    assert seen.result.elapsed < 0.1, seen.explain()
    assert seen.moved(*kube_proxy.reject) >= 1, seen.explain()


@pytest.mark.parametrize(
    ("vlanlb_service", "source"),
    [
        (CLUSTER["iptables"], "router_pods"),
        (LOCAL["iptables"], "client"),
        (CLUSTER["nftables"], "router_pods"),
        (LOCAL["nftables"], "client"),
    ],
    ids=["iptables-Cluster", "iptables-Local", "nftables-Cluster", "nftables-Local"],
    indirect=["vlanlb_service"],
)
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_what_the_pods_see_as_the_client(
    vlanlb_service, vlanlb_client, vlanlb_router, vlanlb_backends, vlanlb_topology, vip_url, source
):
    """Cluster masquerades external traffic (pods see the router's 192.168.20.1); Local keeps
    the client's own address (192.168.10.10)."""
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


@pytest.mark.parametrize(
    ("vlanlb_firewall", "vlanlb_service", "passes"),
    [
        ("workshop", CLUSTER["iptables"], True),
        ("workshop", CLUSTER["nftables"], False),
        ("dnat-aware", CLUSTER["iptables"], True),
        ("dnat-aware", CLUSTER["nftables"], True),
    ],
    ids=[
        "iptables-deny-all",
        "nftables-deny-all",
        "iptables-dnat-aware",
        "nftables-dnat-aware",
    ],
    indirect=["vlanlb_firewall", "vlanlb_service"],
)
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_service_traffic_and_a_networkpolicy_drop(
    vlanlb_firewall,  # first: kube-proxy's jump goes above a DROP already there, as on a node
    vlanlb_service,
    kube_proxy,
    vlanlb_client,
    vlanlb_router,
    service,
    endpoints,
    vip_url,
    passes,
):
    """Step 2's deny-all DROP (filter FORWARD, iptables) eats the workshop's DNAT.

    iptables mode: kube-proxy's KUBE-FORWARD, jumped to first in the same FORWARD chain,
    accepts the masquerade-marked Service traffic before the DROP sees it.

    nftables mode differs: it writes no such accept, and could not win with one, since an
    accept in table ip kube-proxy does not stop the packet from meeting the DROP in
    iptables' filter FORWARD at a later priority. So the DNATed request is dropped: silence,
    not a refusal. The dnat-aware firewall (drop what was not DNATed) serves both modes.
    """
    if passes:
        seen = observe(vlanlb_router, lambda: http_get(vlanlb_client, vip_url))
        assert seen.result.outcome is HttpOutcome.OK, seen.explain()
        assert seen.result.body.strip() in {b.greeting for b in service.backends}, seen.explain()
        assert seen.moved("filter", "FORWARD", "DROP") == 0, seen.explain()
        if kube_proxy.mode == "iptables" and vlanlb_firewall == "workshop":
            assert seen.moved("filter", "KUBE-FORWARD", "ACCEPT") >= 1, seen.explain()
        return
    seen = observe(
        vlanlb_router,
        lambda: http_get_negative(vlanlb_client, vip_url, evidence=[vlanlb_router]),
    )
    assert seen.result.outcome is HttpOutcome.TIMEOUT, seen.explain()
    assert sum(kube_proxy.picks(seen, endpoints)) >= 1, seen.explain()  # DNATed, then dropped
    assert seen.moved("filter", "FORWARD", "DROP") >= 1, seen.explain()
    assert "after DNAT" in seen.explain()


@pytest.mark.parametrize(
    ("leave", "remove", "seen_as"),
    [
        (
            ["nft", "add", "table", "ip", "stray"],
            ["nft", "delete", "table", "ip", "stray"],
            "+table ip stray",
        ),
        (
            ["iptables", "-t", "nat", "-N", "KUBE-STRAY"],
            ["iptables", "-t", "nat", "-X", "KUBE-STRAY"],
            "+:KUBE-STRAY - [0:0]",
        ),
    ],
    ids=["nft-table", "iptables-chain"],
)
def test_the_base_state_check_sees_what_a_revert_leaves(
    vlanlb_lab, vlanlb_router, leave, remove, seen_as
):
    """Every revert checks each router against its base state; that check covers nft tables
    (other than iptables-nft's own) and user-defined iptables chains, not only rules. Here a
    table and a chain are left on purpose: the revert must name them."""
    stack = LayerStack(vlanlb_lab).apply("webserver", "vip", "service:nftables")
    vlanlb_router.exec(*leave).check()
    try:
        with pytest.raises(LayerError, match="did not return to its base state") as failed:
            stack.revert()
        assert seen_as in str(failed.value).splitlines()
    finally:
        vlanlb_router.exec(*remove).check()


def test_nftables_mode_without_nft_on_the_router_names_the_fix(vlanlb_lab, vlanlb_router):
    """A router image without `nft` (a user's own): the layer fails with the fix in words,
    and nothing is left half-built."""
    nft = vlanlb_router.exec("/bin/sh", "-c", "command -v nft").stdout.strip()
    vlanlb_router.exec("mv", nft, f"{nft}.hidden").check()
    stack = LayerStack(vlanlb_lab)
    try:
        with pytest.raises(LayerError, match="add the nftables package to your --vlanlb-image"):
            stack.apply("vip", "service:nftables")
        assert stack.names() == []  # the VIP it had added is gone again: nothing half-built
    finally:
        vlanlb_router.exec("mv", f"{nft}.hidden", nft).check()
        stack.revert()  # checks the router against its base state


@both_modes
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_a_trace_walks_the_service_as_the_counters_do(
    vlanlb_service, kube_proxy, vlanlb_client, vlanlb_router, service, endpoints, vip_url
):
    """One request traced by netfilter: kube-proxy's choice is the one its counters show (in
    nftables mode, the numgen pick, named on the walk), and the trace leaves nothing."""
    match = f"ip daddr {service.vip} tcp dport {service.port}"
    seen = observe(
        vlanlb_router,
        lambda: traced(vlanlb_router, lambda: http_get(vlanlb_client, vip_url), match),
        kernel=False,
    )
    trace = seen.result
    assert trace.result.outcome is HttpOutcome.OK, seen.explain()
    rules = {(m.counter.table, m.counter.chain, m.counter.number) for m in trace.moves}
    counted = {(m.counter.table, m.counter.chain, m.counter.number) for m in seen.moves}
    # every rule the trace met that carries a counter (kube-proxy's nft rules mostly do not)
    # counted the request
    with_counter = {
        (c.table, c.chain, c.number) for c in snapshot(vlanlb_router, kernel=False).values()
    }
    assert {r for r in rules if r[2]} & with_counter <= counted, (trace.lines, seen.explain())
    assert {r for r in rules if r[2]} & with_counter, trace.lines  # and some did
    translated = {
        (m.counter.table, m.counter.chain)
        for m in trace.moves
        if m.counter.target in ("DNAT", "dnat")
    }
    picked = [e for e in endpoints if kube_proxy.dnat(e)[:2] in translated]
    assert kube_proxy.picks(seen, endpoints).count(1) == 1, seen.explain()
    chosen = endpoints[kube_proxy.picks(seen, endpoints).index(1)]
    assert picked == [chosen], (picked, trace.lines)
    facts = [f for s in trace.walk("router").stations for f in s.facts]
    if kube_proxy.mode == "nftables":
        [pick] = [f for f in facts if isinstance(f, Picked)]
        assert pick.index != ""
        assert pick.address == chosen
    assert TRACE_TABLE not in vlanlb_router.exec("nft", "list", "tables").check().stdout
