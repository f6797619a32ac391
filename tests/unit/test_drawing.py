"""The lab drawn (observation/drawing.py): every shipped topology's DOT names each node,
VLAN, subnet, address and the VIP, in both languages, and any text is quoted for DOT."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pytest_vlanlb.host.graphviz import render_svg
from pytest_vlanlb.model.topology import load_topology, parse_topology, topology_dirs
from pytest_vlanlb.observation.drawing import topology_dot

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for d in topology_dirs() for p in d.glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_node_vlan_and_address_is_named(path, language):
    topology = load_topology(path)
    dot = topology_dot(topology, language)
    for node in topology.nodes.values():
        assert f'"node:{node.name}"' in dot
        assert f'label="{node.name}\\n' in dot
        for interface in node.interfaces:
            if interface.address is not None:
                assert str(interface.address) in dot
    for segment in topology.segments.values():
        assert f"VLAN {segment.vlan} · {segment.name}" in dot
        assert str(segment.subnet) in dot
    assert f"VIP {topology.service.vip}" in dot
    assert dot.count(f"VIP {topology.service.vip} (Step 3") == 1  # on one router's leg
    assert ("ゲートウェイ" in dot) is (language == "ja")


def test_the_picture_reads_from_the_client_outwards():
    """a -- VLAN 10 -- router -- VLAN 20 -- b: each edge is written from the client's side."""
    dot = topology_dot(load_topology(next(p for p in SHIPPED if p.stem == "basic")))
    assert '"node:a" -- "segment:public"' in dot
    assert '"segment:public" -- "node:router"' in dot
    assert '"node:router" -- "segment:pods"' in dot
    assert '"segment:pods" -- "node:b"' in dot


def test_any_greeting_is_quoted_for_dot():
    data = yaml.safe_load(next(p for p in SHIPPED if p.stem == "basic").read_text())
    data["service"]["greeting"] = 'say "hi" \\ then } { ; -- "'
    topology = parse_topology(data, "test")
    dot = topology_dot(topology)
    drawn = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
    assert drawn.returncode == 0, drawn.stderr
    assert """answers 'say "hi" \\ then } { ; -- "' on :80""" in html.unescape(drawn.stdout)


def test_only_the_shipped_languages():
    with pytest.raises(ValueError, match="the languages are"):
        topology_dot(load_topology(SHIPPED[0]), "fr")


def test_shipped_topologies_found():
    assert {p.stem for p in SHIPPED} >= {"basic", "service", "ha"}
    assert all(isinstance(p, Path) for p in SHIPPED)


@pytest.mark.parametrize(("picture", "language"), [("basic.svg", "en"), ("basic.ja.svg", "ja")])
def test_the_docs_picture_is_what_vlanlb_graph_draws(picture, language):
    """The READMEs' picture of `basic`, regenerated: the same texts (positions may differ
    between graphviz versions). Redraw with `vlanlb graph [--vlanlb-lang ja] -o docs/...`."""
    basic = load_topology(next(p for p in SHIPPED if p.stem == "basic"))
    drawn = render_svg(topology_dot(basic, language))
    docs = (ROOT / "docs" / picture).read_text(encoding="utf-8")
    assert texts(docs) == texts(drawn)


def texts(svg: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]
