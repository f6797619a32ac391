"""The base lab of vlan_ja.md (BASE_LAB.md), observed on the network."""

from __future__ import annotations

import ipaddress

import pytest

from pytest_vlanlb.model.topology import UPLINK, Role
from pytest_vlanlb.observation.probes import ping, ping_lost

#: The workshop's lab: these claims are about the basic topology's one router and pod b.
pytestmark = pytest.mark.vlanlb(topology="basic")


def test_nodes_have_documented_addresses_and_routes(vlanlb_lab, vlanlb_topology):
    for spec in vlanlb_topology.nodes.values():
        node = vlanlb_lab.node(spec.name)
        addresses = {
            a["local"]
            for link in node.interfaces().values()
            for a in link.get("addr_info", [])
            if a.get("family") == "inet"
        }
        for interface in spec.interfaces:
            if interface.address is not None:
                assert str(interface.address) in addresses, f"{spec.name}: {addresses}"
        if spec.role is not Role.ROUTER:
            segment = vlanlb_topology.segments[spec.segments[0]]
            route = node.exec("ip", "route", "show", "default").check().stdout
            assert f"default via {segment.gateway} " in route, f"{spec.name}: {route}"


def test_router_interfaces_follow_the_workshop_order(vlanlb_lab, vlanlb_router):
    # The workshop's commands say eth1 (VLAN 10) and eth2 (VLAN 20); creation order makes it so.
    assert vlanlb_lab.router_interface("public") == "eth1"
    assert vlanlb_lab.router_interface("pods") == "eth2"
    uplink = vlanlb_router.interfaces()["eth0"]
    inet = [a for a in uplink["addr_info"] if a["family"] == "inet"]
    assert inet
    # On podman's default network, whatever subnet this podman gives it (10.88.0.0/16 unless
    # the user configured another).
    default = vlanlb_lab.podman.networks.get("podman").attrs
    subnets = [s["subnet"] for s in default.get("subnets", [])]
    assert any(
        ipaddress.IPv4Address(inet[0]["local"]) in ipaddress.IPv4Network(net) for net in subnets
    ), (inet, subnets)
    assert vlanlb_router.spec.interfaces[0].segment == UPLINK


@pytest.mark.parametrize(("source", "target"), [("a", "b"), ("b", "a")])
def test_ping_crosses_exactly_one_router_hop(vlanlb_lab, vlanlb_topology, source, target):
    spec = vlanlb_topology.nodes[target]
    address = str(spec.interfaces[0].address)
    result = ping(vlanlb_lab.node(source), address, count=2)
    assert result.received == 2, str(result)
    # Linux starts at TTL 64; the router's forward decrements it once.
    assert result.ttls == (63, 63), str(result)


def test_a_cannot_reach_b_when_the_router_stops_forwarding(
    vlanlb_client, vlanlb_backend, vlanlb_router
):
    target = str(vlanlb_backend.spec.interfaces[0].address)
    vlanlb_router.write_sysctl("net.ipv4.ip_forward", "0")
    try:
        lost = ping_lost(vlanlb_client, target, evidence=[vlanlb_router])
    finally:
        vlanlb_router.write_sysctl("net.ipv4.ip_forward", "1")
    assert lost.transmitted == 2, str(lost)
    assert lost.received == 0, str(lost)
    # No rule took them: the router's kernel counted them dropped, for not forwarding.
    assert "2 packets dropped by the router's kernel (InAddrErrors" in str(lost), str(lost)
    assert ping(vlanlb_client, target).received == 1  # and forwarding back on restores it
