from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Addresses:
    """The addresses the workshop's claims speak of, taken from the topology in use."""

    vip: str
    backend: str  # b
    client: str  # a
    router_pods: str  # the router's leg on the pod network (what b sees with SNAT)

    @property
    def vip_url(self):
        return f"http://{self.vip}"

    @property
    def direct_url(self):
        return f"http://{self.backend}"


@pytest.fixture(scope="session")
def addr(vlanlb_topology):
    topology = vlanlb_topology
    service = topology.service
    pods = topology.segment_of(service.backend_address)
    public = topology.segment_of(service.vip)
    return Addresses(
        vip=str(service.vip),
        backend=str(service.backend_address),
        client=str(topology.client.address_on(public)),
        router_pods=str(topology.router.address_on(pods)),
    )
