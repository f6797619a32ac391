"""The topology model: the shipped topology loads; every malformed field is named."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path

import pytest
import yaml

from pytest_vlanlb.errors import TopologyError
from pytest_vlanlb.model.topology import (
    UPLINK,
    known_topologies,
    load_topology,
    parse_topology,
    resolve_topology,
    topology_dirs,
)

ROOT = Path(__file__).resolve().parents[2]
BASIC = ROOT / "topologies" / "basic.yaml"


@pytest.fixture
def basic_data():
    return yaml.safe_load(BASIC.read_text())


def test_basic_topology_matches_the_workshop():
    topology = load_topology(BASIC)
    assert topology.name == "basic"
    assert {s.name: (s.vlan, str(s.subnet)) for s in topology.segments.values()} == {
        "public": (10, "192.168.10.0/24"),
        "pods": (20, "192.168.20.0/24"),
    }
    router = topology.router
    assert [i.segment for i in router.interfaces] == [UPLINK, "public", "pods"]
    assert router.address_on("public") == ipaddress.IPv4Address("192.168.10.1")
    assert router.forwarding
    assert topology.client.name == "a"
    assert topology.client.address_on("public") == ipaddress.IPv4Address("192.168.10.10")
    assert topology.backend.name == "b"
    service = topology.service
    assert (str(service.vip), service.port) == ("192.168.10.100", 80)
    assert (str(service.backend_address), service.backend_port) == ("192.168.20.20", 80)
    assert service.greeting == "Hello from Pod B"
    assert topology.segment_of(service.vip) == "public"


def _set(data, path, value):
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value


_DELETE = object()

MALFORMED = [
    (("segments", 0, "subnet"), "192.168.10.5/24", "segments[0].subnet", "IPv4 subnet"),
    (("segments", 0, "gateway"), "192.168.99.1", "segments[0].gateway", "not in subnet"),
    (("segments", 1, "vlan"), 10, "segments[1].vlan", "used by another segment"),
    (("segments", 1, "vlan"), 5000, "segments[1].vlan", "from 1 to 4094"),
    (("segments", 1, "subnet"), "192.168.0.0/16", "segments[1].subnet", "overlaps"),
    (("segments", 0, "name"), _DELETE, "segments[0].name", "is required"),
    (
        ("nodes", "a", "interfaces", 0, "address"),
        "192.168.30.10",
        "nodes.a.interfaces[0].address",
        "not in segment public",
    ),
    (
        ("nodes", "a", "interfaces", 0, "address"),
        "banana",
        "nodes.a.interfaces[0].address",
        "IPv4 address",
    ),
    (
        ("nodes", "b", "interfaces", 0, "segment"),
        "vlan30",
        "nodes.b.interfaces[0].segment",
        "unknown segment",
    ),
    (
        ("nodes", "b", "interfaces", 0, "address"),
        "192.168.20.1",
        "nodes.b.interfaces[0].address",
        "already used",
    ),
    (("nodes", "a", "role"), "server", "nodes.a.role", "one of router, client, pod"),
    (
        ("nodes", "router", "role"),
        "client",
        "nodes.router.interfaces[0].segment",
        "only the router has an uplink",
    ),
    (("service", "vip"), "10.0.0.1", "service.vip", "in no segment"),
    (("service", "vip"), "192.168.10.10", "service.vip", "already used"),
    (("service", "port"), "80", "service.port", "whole number"),
    (("service", "backend", "node"), "c", "service.backend.node", "unknown node"),
    (
        ("service", "backend", "address"),
        "192.168.20.21",
        "service.backend.address",
        "not an address of node b",
    ),
    (("service", "greeting"), "it's", "service.greeting", "single quotes"),
    (("nodes", "router", "forwarding"), "yes", "nodes.router.forwarding", "true or false"),
    (("service",), _DELETE, "service", "is required"),
    # misspelt keys: never a default taken silently
    (("nodes", "router", "forwardng"), True, "nodes.router.forwardng", "did you mean `forwarding`"),
    (("segments", 0, "vlna"), 10, "segments[0].vlna", "did you mean `vlan`"),
    (("service", "greting"), "hi", "service.greting", "did you mean `greeting`"),
    (("service", "backend", "prot"), 80, "service.backend.prot", "did you mean `port`"),
    (("nodes", "a", "interfaces", 0, "adress"), "x", "nodes.a.interfaces[0].adress", "address"),
    (("colour",), "blue", "colour", "known keys: name, description, segments, nodes, service"),
    # segments too small to hold hosts, and addresses no host can have
    (("segments", 1, "subnet"), "192.168.20.20/31", "segments[1].subnet", "too small"),
    (("segments", 1, "subnet"), "192.168.20.0/32", "segments[1].subnet", "too small"),
    (("service", "vip"), "192.168.10.255", "service.vip", "broadcast address"),
    (
        ("nodes", "a", "interfaces", 0, "address"),
        "192.168.10.0",
        "nodes.a.interfaces[0].address",
        "network or broadcast address",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"), MALFORMED, ids=[m[2] + ":" + m[3] for m in MALFORMED]
)
def test_malformed_topology_names_file_and_field(basic_data, path, value, field, problem):
    data = copy.deepcopy(basic_data)
    _set(data, path, value)
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, "topologies/broken.yaml")
    assert caught.value.source == "topologies/broken.yaml"
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"topologies/broken.yaml: {field}: ")


def test_gateway_must_be_the_routers_address(basic_data):
    data = copy.deepcopy(basic_data)
    data["segments"][0]["gateway"] = "192.168.10.254"
    with pytest.raises(TopologyError, match=r"segments.public.gateway: .*router's address"):
        parse_topology(data, "x.yaml")


def test_every_router_attaches_to_every_segment(basic_data):
    data = copy.deepcopy(basic_data)
    data["nodes"]["a"]["role"] = "router"
    with pytest.raises(TopologyError, match=r"nodes.a.interfaces: a router must attach to pods"):
        parse_topology(data, "x.yaml")


def test_a_topology_needs_a_router(basic_data):
    data = copy.deepcopy(basic_data)
    data["nodes"]["router"]["role"] = "client"
    data["nodes"]["router"]["interfaces"].pop(0)  # clients have no uplink
    with pytest.raises(TopologyError, match=r"nodes: at least one node must have role router"):
        parse_topology(data, "x.yaml")


def test_several_backends_each_with_a_greeting(basic_data):
    data = copy.deepcopy(basic_data)
    data["nodes"]["b2"] = {
        "role": "pod",
        "interfaces": [{"segment": "pods", "address": "192.168.20.22"}],
    }
    service = data["service"]
    service["backends"] = [
        dict(service.pop("backend"), greeting="Hello from Pod B1"),
        {"node": "b2", "address": "192.168.20.22", "port": 80},
    ]
    topology = parse_topology(data, "x.yaml")
    assert [b.node for b in topology.service.backends] == ["b", "b2"]
    assert [b.greeting for b in topology.service.backends] == [
        "Hello from Pod B1",
        "Hello from Pod B",
    ]
    service["backends"][1]["node"] = "a"
    with pytest.raises(TopologyError, match=r"service.backends\[1\].node: node a has role client"):
        parse_topology(data, "x.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("segments:\n  - name: public\n   vlan: [\n")
    with pytest.raises(TopologyError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_topology(broken)


def test_top_level_must_be_a_mapping(tmp_path):
    broken = tmp_path / "list.yaml"
    broken.write_text("- 1\n- 2\n")
    with pytest.raises(TopologyError, match=r"list.yaml: \(top level\): must be a mapping"):
        load_topology(broken)


def test_unknown_name_lists_the_known_ones():
    dirs = topology_dirs()
    assert "basic" in known_topologies(dirs)
    with pytest.raises(TopologyError, match=r"unknown topology; known topologies: .*basic"):
        resolve_topology("nope", dirs)


def test_resolve_by_name_and_by_path(tmp_path):
    assert resolve_topology("basic", topology_dirs()) == BASIC
    own = tmp_path / "mine.yaml"
    own.write_text(BASIC.read_text())
    assert resolve_topology(str(own), []) == own
    with pytest.raises(TopologyError, match="no such file"):
        resolve_topology(str(tmp_path / "missing.yaml"), [])


def test_users_own_topologies_dir_is_searched(tmp_path):
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "classroom.yaml").write_text(BASIC.read_text())
    dirs = topology_dirs(tmp_path)
    assert "classroom" in known_topologies(dirs)
    assert load_topology(resolve_topology("classroom", dirs)).service.port == 80


def test_a_projects_own_basic_is_the_one_it_gets(tmp_path):
    """A project's topologies/basic.yaml comes before the plugin's (it used to be shadowed)."""
    (tmp_path / "topologies").mkdir()
    own = tmp_path / "topologies" / "basic.yaml"
    own.write_text(BASIC.read_text().replace("Hello from Pod B", "Hello from our own b"))
    path = resolve_topology("basic", topology_dirs(tmp_path))
    assert path.resolve() == own.resolve()
    assert load_topology(path).service.greeting == "Hello from our own b"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a" * 200, "200 characters long; at most 32"),
        ("aé", "only ASCII letters, digits"),
        ("-a", "must start with a letter or digit"),
        ("a;b $(id)", "only ASCII letters, digits"),
        ("a.b", "only ASCII letters, digits"),
    ],
)
def test_node_and_segment_names_podman_and_the_kernel_accept(basic_data, name, problem):
    nodes = copy.deepcopy(basic_data)
    nodes["nodes"][name] = nodes["nodes"].pop("a")
    with pytest.raises(TopologyError) as caught:
        parse_topology(nodes, "x.yaml")
    assert caught.value.field == f"nodes.{name}"
    assert problem in caught.value.problem

    segments = copy.deepcopy(basic_data)
    segments["segments"][0]["name"] = name
    with pytest.raises(TopologyError) as caught:
        parse_topology(segments, "x.yaml")
    assert caught.value.field == "segments[0].name"
    assert problem in caught.value.problem


def test_longest_and_plainest_names_are_accepted(basic_data):
    data = copy.deepcopy(basic_data)
    long_name = "n" * 32
    data["nodes"][long_name] = data["nodes"].pop("a")
    data["nodes"]["web-1_x"] = data["nodes"].pop("b")
    data["service"]["backend"]["node"] = "web-1_x"
    assert long_name in parse_topology(data, "x.yaml").nodes
