"""Building and removing the lab through podman-py: wires, networks, containers.

Building is all or nothing: every step registers its undo first, and a failure unwinds what
was built before the error reaches the user.

On podman's CNI backend, host-local IPAM refuses a subnet's gateway as a static address
("requested ip 192.168.10.1 is subnet's gateway"), yet the workshop's router *is* the gateway.
There the router joins with a free "parking" address, and then moves its own interface to the
gateway address (it has NET_ADMIN, as in the workshop). podman's records then show the parking
address; the network itself (what a and b see) is the same as on netavark.

Teardown removes everything by name; objects a crashed run left behind are found by label
(and host links by ifalias) and removed by the next run (sweep.py).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import podman
from podman.errors import APIError

from ..errors import LabBuildError, VlanlbError
from ..host.image import REQUIRED_TOOLS
from ..host.naming import LABEL_NODE, RunNames
from ..host.sweep import remove_container, remove_network
from ..host.wires import WireKind, Wires, create_wires, delete_links
from ..model.commands import ALPINE_PACKAGES
from ..model.topology import UPLINK, Role, Topology
from ..podman.lookup import network_named
from ..podman.settings import ULIMITS
from .node import Node

#: podman's default network: the workshop router's uplink (eth0).
UPLINK_NETWORK = "podman"
Undo = Callable[[], None]


@dataclass
class Lab:
    """A built lab: the topology, its run's names, and a Node per topology node."""

    topology: Topology
    names: RunNames
    podman: podman.PodmanClient
    wires: Wires
    nodes: dict[str, Node] = field(default_factory=dict)
    network_backend: str = "netavark"  # the podman API's network backend: netavark or cni
    memo: dict[str, Any] = field(default_factory=dict, repr=False)  # facts read once per lab
    _undo: list[tuple[str, Undo, str | None]] = field(default_factory=list, repr=False)

    def on_teardown(self, what: str, undo: Undo, batch: str | None = None) -> None:
        """Register how to remove something just built; teardown runs these in reverse.

        Consecutive undos of one `batch` (the containers) run at the same time."""
        self._undo.append((what, undo, batch))

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r} in topology {self.topology.name}") from None

    @property
    def router(self) -> Node:
        """The first router: the gateways' holder and, at the start, the VIP's."""
        return self.nodes[self.topology.router.name]

    @property
    def routers(self) -> list[Node]:
        return [self.nodes[spec.name] for spec in self.topology.routers]

    @property
    def backends(self) -> list[Node]:
        """The Service's backend pods, in the topology's order."""
        return [self.nodes[b.node] for b in self.topology.service.backends]

    @property
    def client_node(self) -> Node:
        return self.nodes[self.topology.client.name]

    @property
    def backend(self) -> Node:
        return self.nodes[self.topology.backend.name]

    def segment_peers(self, node: Node) -> list[Node]:
        """Every other node on `node`'s segments: all that could answer its ARP there (the
        host's end of each wire answers none). [] for a node on the uplink, which podman's
        network shares with the host and other containers: nobody can name them all."""
        spec = self.topology.nodes[node.name]
        if any(i.segment == UPLINK for i in spec.interfaces):
            return []
        return [
            self.nodes[other.name]
            for other in self.topology.nodes.values()
            if other.name != node.name and set(other.segments) & set(spec.segments)
        ]

    def router_interface(self, segment: str, router: Node | None = None) -> str:
        """A router's interface name on a segment (eth1 for public in the basic lab)."""
        return (router or self.router).interface_on(segment)

    def teardown(self) -> list[str]:
        """Undo every build step in reverse; returns the errors it met (never raises)."""
        errors: list[str] = []
        while self._undo:
            group = [self._undo.pop()]
            while group[0][2] is not None and self._undo and self._undo[-1][2] == group[0][2]:
                group.append(self._undo.pop())
            with ThreadPoolExecutor(max_workers=len(group)) as pool:
                outcomes = [(what, pool.submit(undo)) for what, undo, _ in group]
            for what, outcome in outcomes:
                if (exc := outcome.exception()) is not None:
                    errors.append(f"removing {what}: {exc}")
        return errors

    def describe(self) -> str:
        containers = " ".join(n.container_name for n in self.nodes.values())
        networks = " ".join(self.names.network(s) for s in self.topology.segments)
        return (
            f"containers: {containers}\nnetworks: {networks}\n"
            f"host links: {' '.join(self.wires.links)} ({self.wires.kind.value} wires)"
        )


def build_lab(
    client: podman.PodmanClient,
    topology: Topology,
    image: str,
    wire_kind: WireKind,
    names: RunNames,
    *,
    network_backend: str = "netavark",
) -> Lab:
    vlans = [(s.name, s.vlan) for s in topology.segments.values()]
    wires = create_wires(wire_kind, names, vlans)
    lab = Lab(topology, names, client, wires, network_backend=network_backend)
    try:
        lab.on_teardown("host links", lambda: delete_links(wires.links))
        for segment in topology.segments.values():
            _create_network(lab, segment.name)
        # The nodes at the same time (each one's interfaces still in order): podman spends
        # most of a container's start waiting, not working.
        with ThreadPoolExecutor(max_workers=len(topology.nodes)) as pool:
            built = [pool.submit(_create_node, lab, name, image) for name in topology.nodes]
        for outcome in built:
            outcome.result()  # the first failure, once every node got as far as it could
        lab.nodes = {name: lab.nodes[name] for name in topology.nodes}  # topology order
    except BaseException as exc:
        errors = lab.teardown()
        if errors:
            raise LabBuildError(
                f"{exc}\n(and cleaning up after it failed: {'; '.join(errors)})"
            ) from exc
        if isinstance(exc, VlanlbError):
            raise
        if isinstance(exc, APIError):
            raise LabBuildError(f"podman refused to build the lab: {exc}") from exc
        raise
    return lab


def _create_network(lab: Lab, segment_name: str) -> None:
    segment = lab.topology.segments[segment_name]
    name = lab.names.network(segment_name)
    # podman-py's networks.create() never sends the macvlan parent; the REST call does.
    body = {
        "name": name,
        "driver": "macvlan",
        "network_interface": lab.wires.parents[segment_name],
        "subnets": [{"subnet": str(segment.subnet), "gateway": str(segment.gateway)}],
        "labels": lab.names.labels(),
    }
    response = lab.podman.api.post(
        "/networks/create", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    if response.status_code != 200:
        raise LabBuildError(f"creating podman network {name}: {response.text.strip()}")
    lab.on_teardown(f"network {name}", lambda: remove_network(lab.podman, name))


def _create_node(lab: Lab, node_name: str, image: str) -> None:
    spec = lab.topology.nodes[node_name]
    first, *rest = spec.interfaces
    caps = ["NET_RAW"]  # ping, as the workshop's alpine containers can
    if spec.role is Role.ROUTER:
        caps.append("NET_ADMIN")
    gateways = {s.gateway for s in lab.topology.segments.values()}
    parked = {
        i.segment: parking_address(lab.topology, i.segment)
        for i in spec.interfaces
        if lab.network_backend == "cni" and i.address in gateways
    }
    if parked and spec.role is not Role.ROUTER:
        raise LabBuildError(
            f"node {node_name} holds a gateway address, which podman's CNI backend cannot "
            "give it (only the router can take it over itself): use the netavark backend"
        )

    def podman_address(interface: Any) -> Any:
        return parked.get(interface.segment, interface.address)

    create_args: dict[str, Any] = {
        "name": lab.names.container(node_name),
        "hostname": node_name,
        "labels": lab.names.labels(**{LABEL_NODE: node_name}),
        "cap_add": caps,
        "ulimits": ULIMITS,
        "stop_timeout": 0,  # `sleep infinity` as PID 1 ignores SIGTERM: do not wait for it
        "network_mode": "bridge",
        "networks": {_network_for(lab, first.segment): _static(podman_address(first))},
    }
    if spec.forwarding:
        create_args["sysctls"] = {"net.ipv4.ip_forward": "1"}
    container = lab.podman.containers.create(image, **create_args)
    name = str(container.name)

    def remove() -> None:
        if node_name in lab.nodes:
            lab.nodes[node_name].close_shells()
        # Looked up through lab.podman: the service may have been restarted since.
        remove_container(lab.podman, name)

    lab.on_teardown(f"container {name}", remove, batch="containers")
    container.start()
    for interface in rest:  # connected after start, in order, as the workshop does
        network = network_named(lab.podman, _network_for(lab, interface.segment))
        network.connect(container, ipv4_address=str(podman_address(interface)), compatible=True)
    container.reload()
    node = Node(spec, container)
    lab.nodes[node_name] = node
    for segment, parking in parked.items():
        _take_over_gateway(node, lab.topology.segments[segment], parking)
    _check_tools(node, image)
    # Its shells, side by side while the lab is built: the client runs up to three probes at
    # once (a Service's VIP, a ping and HTTP to a pod); a shell opened later costs 0.1-0.2 s.
    node.open_shells(3 if spec.role is Role.CLIENT else 1)


def parking_address(topology: Topology, segment: str) -> ipaddress.IPv4Address:
    """The highest address of a segment that no node, gateway or VIP of the topology uses."""
    subnet = topology.segments[segment].subnet
    used = {i.address for n in topology.nodes.values() for i in n.interfaces}
    used |= {s.gateway for s in topology.segments.values()} | {topology.service.vip}
    for address in reversed(list(subnet.hosts())):
        if address not in used:
            return address
    raise LabBuildError(f"segment {segment} ({subnet}) has no free address left for podman")


def _take_over_gateway(node: Node, segment: Any, parking: ipaddress.IPv4Address) -> None:
    """Move the router's leg from its parking address to the gateway address (CNI only)."""
    ifname = node.interface_with(parking)
    prefix = segment.subnet.prefixlen
    node.exec(
        "/bin/sh",
        "-c",
        # Delete first: deleting a primary address also deletes its secondaries.
        f"ip addr del {parking}/{prefix} dev {ifname} && "
        f"ip addr add {segment.gateway}/{prefix} brd + dev {ifname} && "
        # CNI's default route via the gateway now points at ourselves: drop it.
        f"(ip route del default via {segment.gateway} dev {ifname} 2>/dev/null; true)",
    ).check()
    node.forget_interfaces()


def _network_for(lab: Lab, segment: str) -> str:
    return UPLINK_NETWORK if segment == UPLINK else lab.names.network(segment)


def _static(address: object) -> dict[str, Any]:
    return {"static_ips": [str(address)]} if address is not None else {}


def _check_tools(node: Node, image: str) -> None:
    needed = REQUIRED_TOOLS[node.spec.role]
    script = " ".join(f"command -v {tool} >/dev/null || echo {tool};" for tool in needed)
    probe = node.exec("/bin/sh", "-c", script)
    missing = probe.stdout.split()
    if probe.rc != 0 or missing:
        packages = " ".join(sorted({ALPINE_PACKAGES[t] for t in missing})) or "(none)"
        raise LabBuildError(
            f"image {image!r} lacks {', '.join(missing) or 'a working /bin/sh'} needed on "
            f"{node.spec.role.value} {node.name}: use an image that has them (on alpine: "
            f"`apk add {packages}` in a derived image), or drop --vlanlb-image to use the "
            "built-in node image"
        )
