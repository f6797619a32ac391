"""Topologies as data: a YAML file describes segments, nodes and the published service.

The model is deliberately small and fully validated, so that a typo in a topology file is
reported with the file and the field (``nodes.a.interfaces[0].address``) before anything is
built.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ..errors import TopologyError

#: The pseudo-segment for a router's uplink: podman's default network, as in the workshop.
UPLINK = "uplink"
#: The keys each mapping of a topology file may have; any other is a usage error.
TOP_KEYS = ("name", "description", "segments", "nodes", "service")
SEGMENT_KEYS = ("name", "vlan", "subnet", "gateway")
NODE_KEYS = ("role", "interfaces", "forwarding")
INTERFACE_KEYS = ("segment", "address")
SERVICE_KEYS = ("vip", "port", "greeting", "backend", "backends")
BACKEND_KEYS = ("node", "address", "port", "greeting")
#: The smallest segment: a /30 has two addresses for hosts besides its network and broadcast
#: addresses (on a /31 or /32 podman hands out those too, and nothing answers).
LONGEST_PREFIX = 30


class Role(str, enum.Enum):
    """What a node is in the lab: the one vocabulary for topology, layers and grading."""

    ROUTER = "router"  # forwards between the segments, holds the VIP and the NAT rules
    CLIENT = "client"  # uses the Service from the public segment (`a`)
    POD = "pod"  # a Service endpoint on the pod segment (`b`)


ROLES = tuple(role.value for role in Role)


@dataclass(frozen=True)
class Segment:
    """One VLAN: an isolated L2 segment with an IPv4 subnet."""

    name: str
    vlan: int
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address


@dataclass(frozen=True)
class Interface:
    """A node's attachment, in creation order (the router's order gives eth0, eth1, eth2)."""

    segment: str  # a segment name or UPLINK
    address: ipaddress.IPv4Address | None  # None on the uplink: podman assigns it


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: Role
    interfaces: tuple[Interface, ...]
    forwarding: bool = False

    def address_on(self, segment: str) -> ipaddress.IPv4Address:
        for interface in self.interfaces:
            if interface.segment == segment and interface.address is not None:
                return interface.address
        raise KeyError(f"node {self.name} has no address on segment {segment}")

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(i.segment for i in self.interfaces if i.segment != UPLINK)


@dataclass(frozen=True)
class Backend:
    """One endpoint of the Service: a pod node, its address and port, what it answers."""

    node: str
    address: ipaddress.IPv4Address
    port: int
    greeting: str


@dataclass(frozen=True)
class Service:
    """What the later layers publish: VIP:port -> the backends (a LoadBalancer Service)."""

    vip: ipaddress.IPv4Address
    port: int
    backends: tuple[Backend, ...]

    # The first backend: the workshop's one pod `b` (its steps name one backend).
    @property
    def backend_node(self) -> str:
        return self.backends[0].node

    @property
    def backend_address(self) -> ipaddress.IPv4Address:
        return self.backends[0].address

    @property
    def backend_port(self) -> int:
        return self.backends[0].port

    @property
    def greeting(self) -> str:
        return self.backends[0].greeting

    def backend(self, node: str) -> Backend:
        return next(b for b in self.backends if b.node == node)


@dataclass(frozen=True)
class Topology:
    name: str
    source: str
    description: str
    segments: Mapping[str, Segment]
    nodes: Mapping[str, NodeSpec]
    service: Service

    @property
    def routers(self) -> list[NodeSpec]:
        """All routers, the VIP's first holder (MetalLB's leader at start) first."""
        return [n for n in self.nodes.values() if n.role is Role.ROUTER]

    @property
    def router(self) -> NodeSpec:
        return self.routers[0]

    @property
    def client(self) -> NodeSpec:
        """The client that uses the VIP: the first client node on the VIP's segment."""
        vip_segment = self.segment_of(self.service.vip)
        return next(
            n for n in self.nodes.values() if n.role is Role.CLIENT and vip_segment in n.segments
        )

    @property
    def backend(self) -> NodeSpec:
        return self.nodes[self.service.backend_node]

    def segment_of(self, address: ipaddress.IPv4Address) -> str:
        for segment in self.segments.values():
            if address in segment.subnet:
                return segment.name
        raise KeyError(f"{address} is in no segment of topology {self.name}")


# --- loading -------------------------------------------------------------------------------

#: Node and segment names become parts of podman names (`vlb-<run>-<name>`, which podman
#: checks against [a-zA-Z0-9][a-zA-Z0-9_.-]*) and node names become hostnames (at most 64
#: bytes for sethostname); a shell may see them in hints. ASCII letters, digits, - and _.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
NAME_MAX = 32


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a node or segment, or None if it can."""
    if not isinstance(name, str) or not name:
        return f"names must be non-empty strings, not {name!r}"
    if len(name) > NAME_MAX:
        return f"name {name[:20]!r}... is {len(name)} characters long; at most {NAME_MAX}"
    if not NAME_PATTERN.fullmatch(name):
        return (
            f"name {name!r} may hold only ASCII letters, digits, '-' and '_' and must start "
            "with a letter or digit (it becomes part of podman names and a hostname)"
        )
    return None


def topology_dirs(rootdir: Path | None = None) -> list[Path]:
    """Where topology names are looked up, first match wins: the invoking project's own
    ``topologies/`` (so a project's ``basic.yaml`` is the one it gets: the run's header names
    the file), then the plugin's (beside the package in a checkout, inside it in a wheel).
    """
    package = Path(__file__).resolve().parents[1]  # pytest_vlanlb/, beside model/
    dirs = [package.parent / "topologies", package / "topologies"]
    if rootdir is not None:
        dirs.insert(0, rootdir / "topologies")
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.append(d.resolve())
    return seen


def known_topologies(dirs: Iterable[Path]) -> list[str]:
    names = {p.stem for d in dirs for p in d.glob("*.yaml")}
    return sorted(names)


def resolve_topology(name_or_path: str, dirs: Iterable[Path]) -> Path:
    """A name from ``topologies/`` or a path to a YAML file."""
    dirs = list(dirs)
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if candidate.is_file():
            return candidate
        raise TopologyError(name_or_path, "", "no such file")
    for d in dirs:
        path = d / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    known = ", ".join(known_topologies(dirs)) or "(none found)"
    raise TopologyError(
        name_or_path,
        "",
        f"unknown topology; known topologies: {known} "
        f"(or pass a path to a YAML file with --vlanlb-topology)",
    )


def load_topology(path: Path) -> Topology:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(source, "", f"cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise TopologyError(source, where, f"not valid YAML: {exc}") from exc
    return parse_topology(data, source, default_name=path.stem)


def parse_topology(data: Any, source: str, default_name: str = "") -> Topology:
    """Validate raw YAML data into a Topology; every error names the field."""
    top = _Fields(data, source, "", TOP_KEYS)
    name = top.optional_text("name") or default_name
    description = top.optional_text("description") or ""

    segments: dict[str, Segment] = {}
    for index, raw in enumerate(top.sequence("segments")):
        f = _Fields(raw, source, f"segments[{index}]", SEGMENT_KEYS)
        seg_name = f.text("name")
        if problem := name_problem(seg_name):
            f.fail("name", problem)
        if seg_name in segments or seg_name == UPLINK:
            f.fail("name", f"duplicate or reserved segment name {seg_name!r}")
        vlan = f.number("vlan", 1, 4094)
        if any(s.vlan == vlan for s in segments.values()):
            f.fail("vlan", f"VLAN id {vlan} is used by another segment")
        subnet = f.network("subnet")
        if subnet.prefixlen > LONGEST_PREFIX:
            f.fail(
                "subnet", f"{subnet} is too small: a segment needs a /{LONGEST_PREFIX} or larger"
            )
        gateway = f.address("gateway")
        if gateway not in subnet:
            f.fail("gateway", f"{gateway} is not in subnet {subnet}")
        if gateway in (subnet.network_address, subnet.broadcast_address):
            f.fail("gateway", f"{gateway} is {subnet}'s network or broadcast address")
        for other in segments.values():
            if subnet.overlaps(other.subnet):
                f.fail("subnet", f"{subnet} overlaps segment {other.name} ({other.subnet})")
        segments[seg_name] = Segment(seg_name, vlan, subnet, gateway)
    if not segments:
        top.fail("segments", "at least one segment is required")

    nodes: dict[str, NodeSpec] = {}
    raw_nodes = top.mapping("nodes")
    used: dict[ipaddress.IPv4Address, str] = {}
    for node_name, raw in raw_nodes.items():
        f = _Fields(raw, source, f"nodes.{node_name}", NODE_KEYS)
        if problem := name_problem(node_name):
            f.fail("", problem)
        role = Role(f.choice("role", ROLES))
        interfaces = []
        for index, raw_if in enumerate(f.sequence("interfaces")):
            fi = _Fields(raw_if, source, f"nodes.{node_name}.interfaces[{index}]", INTERFACE_KEYS)
            seg = fi.text("segment")
            if seg == UPLINK:
                if role is not Role.ROUTER:
                    fi.fail("segment", "only the router has an uplink")
                interfaces.append(Interface(UPLINK, None))
                continue
            if seg not in segments:
                fi.fail("segment", f"unknown segment {seg!r}; known: {', '.join(segments)}")
            address = fi.address("address")
            subnet = segments[seg].subnet
            if address not in subnet:
                fi.fail("address", f"{address} is not in segment {seg} ({subnet})")
            if address in (subnet.network_address, subnet.broadcast_address):
                fi.fail("address", f"{address} is {subnet}'s network or broadcast address")
            if address in used:
                fi.fail("address", f"{address} is already used by {used[address]}")
            used[address] = f"nodes.{node_name}"
            interfaces.append(Interface(seg, address))
        if not interfaces:
            f.fail("interfaces", "a node needs at least one interface")
        if len({i.segment for i in interfaces}) != len(interfaces):
            f.fail("interfaces", "a node attaches to each segment at most once")
        forwarding = f.flag("forwarding", default=role is Role.ROUTER)
        nodes[node_name] = NodeSpec(node_name, role, tuple(interfaces), forwarding)

    routers = [n for n in nodes.values() if n.role is Role.ROUTER]
    if not routers:
        top.fail("nodes", "at least one node must have role router")
    for router in routers:
        for segment in segments.values():
            if segment.name not in router.segments:
                top.fail(
                    f"nodes.{router.name}.interfaces", f"a router must attach to {segment.name}"
                )
    leader = routers[0]  # holds the gateways (the segments' default route) and first the VIP
    for segment in segments.values():
        if leader.address_on(segment.name) != segment.gateway:
            top.fail(
                f"segments.{segment.name}.gateway",
                f"{segment.gateway} must be the router's address on {segment.name} "
                f"({leader.address_on(segment.name)}; with several routers, the first one's)",
            )

    fs = _Fields(top.mapping("service"), source, "service", SERVICE_KEYS)
    vip = fs.address("vip")
    vip_segment = next((s for s in segments.values() if vip in s.subnet), None)
    if vip_segment is None:
        fs.fail("vip", f"{vip} is in no segment; it must be on the clients' segment")
    if vip in used:
        fs.fail("vip", f"{vip} is already used by {used[vip]}")
    if vip in (vip_segment.subnet.network_address, vip_segment.subnet.broadcast_address):
        fs.fail("vip", f"{vip} is {vip_segment.subnet}'s network or broadcast address")
    port = fs.number("port", 1, 65535)
    default_greeting = fs.optional_text("greeting")
    if default_greeting is not None and ("'" in default_greeting or "\n" in default_greeting):
        fs.fail("greeting", "must be one line without single quotes (it is served by sh)")
    if "backend" in fs.data and "backends" in fs.data:
        fs.fail("backends", "give either backend (one) or backends (a list), not both")
    if "backends" in fs.data:
        raw_backends = [
            (f"service.backends[{i}]", b) for i, b in enumerate(fs.sequence("backends"))
        ]
    else:
        raw_backends = [("service.backend", fs.mapping("backend"))]
    if not raw_backends:
        fs.fail("backends", "at least one backend is required")
    backends: list[Backend] = []
    for where, raw_backend in raw_backends:
        fb = _Fields(raw_backend, source, where, BACKEND_KEYS)
        backend_node = fb.text("node")
        if backend_node not in nodes:
            fb.fail("node", f"unknown node {backend_node!r}; known: {', '.join(nodes)}")
        if nodes[backend_node].role is not Role.POD:
            fb.fail(
                "node", f"node {backend_node} has role {nodes[backend_node].role.value}, not pod"
            )
        if any(b.node == backend_node for b in backends):
            fb.fail("node", f"node {backend_node} is a backend twice")
        backend_address = fb.address("address")
        if backend_address not in [i.address for i in nodes[backend_node].interfaces]:
            fb.fail("address", f"{backend_address} is not an address of node {backend_node}")
        backend_port = fb.number("port", 1, 65535)
        greeting = fb.optional_text("greeting") or default_greeting
        if greeting is None:
            fb.fail("greeting", "is required (here or as service.greeting)")
        if "'" in greeting or "\n" in greeting:
            fb.fail("greeting", "must be one line without single quotes (it is served by sh)")
        backends.append(Backend(backend_node, backend_address, backend_port, greeting))
    if not any(n.role is Role.CLIENT and vip_segment.name in n.segments for n in nodes.values()):
        top.fail("nodes", f"no client node on the VIP's segment {vip_segment.name}")

    return Topology(
        name=name,
        source=source,
        description=description,
        segments=segments,
        nodes=nodes,
        service=Service(vip, port, tuple(backends)),
    )


def unknown_key(key: str, keys: Iterable[str]) -> str:
    """The problem with an unknown key, naming the nearest known one (a likely typo)."""
    known = list(keys)
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if near:
        return f"unknown key; did you mean `{near[0]}`?"
    return f"unknown key; known keys: {', '.join(known)}"


class _Fields:
    """Typed access to one YAML mapping, raising TopologyError with the field's path."""

    def __init__(self, data: Any, source: str, prefix: str, keys: tuple[str, ...]) -> None:
        self.source = source
        self.prefix = prefix
        if not isinstance(data, dict):
            raise TopologyError(source, prefix or "(top level)", "must be a mapping")
        self.data = data
        for key in data:
            if key not in keys:  # a misspelt key must not fall back to a default silently
                self.fail(str(key), unknown_key(str(key), keys))

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)

    def fail(self, key: str, problem: str) -> NoReturn:
        raise TopologyError(self.source, self.path(key), problem)

    def get(self, key: str) -> Any:
        if key not in self.data:
            self.fail(key, "is required")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string, not {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self.data else None

    def number(self, key: str, low: int, high: int) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"must be a whole number from {low} to {high}, not {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def sequence(self, key: str) -> list[Any]:
        value = self.get(key)
        if not isinstance(value, list):
            self.fail(key, "must be a list")
        return value

    def mapping(self, key: str) -> dict[Any, Any]:
        value = self.get(key)
        if not isinstance(value, dict):
            self.fail(key, "must be a mapping")
        return value

    def address(self, key: str) -> ipaddress.IPv4Address:
        value = self.get(key)
        try:
            return ipaddress.IPv4Address(str(value))
        except ValueError:
            self.fail(key, f"must be an IPv4 address, not {value!r}")

    def network(self, key: str) -> ipaddress.IPv4Network:
        value = self.get(key)
        try:
            return ipaddress.IPv4Network(str(value), strict=True)
        except ValueError as exc:
            self.fail(key, f"must be an IPv4 subnet like 192.168.10.0/24: {exc}")
