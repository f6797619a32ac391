"""docs/topology.md and docs/topology.schema.json against the model: every key the loader
knows is documented and in the schema, nothing else is; every shipped topology (and the
page's own example) is valid by the schema and by the loader; and the schema refuses what
the loader refuses for shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from pytest_vlanlb.errors import TopologyError
from pytest_vlanlb.model import topology
from pytest_vlanlb.model.topology import load_topology, parse_topology

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "topology.md").read_text(encoding="utf-8")
SCHEMA = json.loads((ROOT / "docs" / "topology.schema.json").read_text(encoding="utf-8"))
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml"))


def section(title: str) -> str:
    return PAGE.split(f"### {title}\n", 1)[1].split("\n#", 1)[0]


def documented(title: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z]+)` \|", section(title), re.MULTILINE))


def schema_keys(*path: str) -> set[str]:
    node = SCHEMA
    for step in path:
        node = node[step]
    return set(node["properties"])


@pytest.mark.parametrize(
    ("title", "keys", "schema_path"),
    [
        ("Top level", topology.TOP_KEYS, ()),
        ("`segments[]`", topology.SEGMENT_KEYS, ("properties", "segments", "items")),
        ("`nodes.NAME`", topology.NODE_KEYS, ("properties", "nodes", "additionalProperties")),
        (
            "`nodes.NAME.interfaces[]`",
            topology.INTERFACE_KEYS,
            ("properties", "nodes", "additionalProperties", "properties", "interfaces", "items"),
        ),
        ("`service`", topology.SERVICE_KEYS, ("properties", "service")),
        ("`service.backend` and `service.backends[]`", topology.BACKEND_KEYS, ("$defs", "backend")),
    ],
)
def test_every_key_is_documented_and_in_the_schema(title, keys, schema_path):
    assert documented(title) == set(keys)
    assert schema_keys(*schema_path) == set(keys)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_topology_is_valid_by_the_schema_and_the_loader(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)
    load_topology(path)


def test_the_pages_example_is_the_workshops_lab():
    example = PAGE.split("## The workshop's lab, whole\n", 1)[1].split("```yaml\n", 1)[1]
    data = yaml.safe_load(example.split("```", 1)[0])
    jsonschema.validate(data, SCHEMA)
    shown = parse_topology(data, "docs/topology.md")
    basic = load_topology(ROOT / "topologies" / "basic.yaml")
    assert (shown.segments, shown.nodes, shown.service) == (
        basic.segments,
        basic.nodes,
        basic.service,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["nodes"]["router"].update(forwardng=True), "nodes.router.forwardng"),
        (lambda d: d["segments"][0].update(vlan=5000), "segments[0].vlan"),
        (lambda d: d["service"].pop("port"), "service.port"),
        (lambda d: d["service"].update(backends=[d["service"]["backend"]]), "service.backends"),
        (lambda d: d["nodes"]["a"].update(role="switch"), "nodes.a.role"),
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(change, field):
    data = yaml.safe_load((ROOT / "topologies" / "basic.yaml").read_text())
    change(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, "x.yaml")
    assert caught.value.field == field
