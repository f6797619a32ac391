"""`vlanlb graph`: the topology drawn by graphviz, as a person sees it in a browser (every
node, VLAN and address laid out as text), in English and Japanese; a project's own topology;
a wrong name is one error and no file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from grading.browser import read_svg_texts

from pytest_vlanlb.model.topology import load_topology, topology_dirs

SHIPPED = sorted(p for d in topology_dirs() for p in d.glob("*.yaml"))


def vlanlb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_vlanlb", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_node_and_vlan_is_shown(path, language, tmp_path):
    topology = load_topology(path)
    svg = tmp_path / "lab.svg"
    run = vlanlb(
        "graph", "--vlanlb-topology", topology.name, "--vlanlb-lang", language, "-o", str(svg),
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"wrote {svg}: topology {topology.name} ({path})\n"
    shown = "\n".join(read_svg_texts(svg, tmp_path))
    for node in topology.nodes.values():
        assert node.name in shown.splitlines(), shown
        for interface in node.interfaces:
            if interface.address is not None:
                assert str(interface.address) in shown, shown
    for segment in topology.segments.values():
        assert f"VLAN {segment.vlan} · {segment.name}" in shown, shown
    assert f"VIP {topology.service.vip} (Step 3" in shown
    router_word = "ルーター" if language == "ja" else "router ("
    assert router_word in shown


def test_a_projects_own_topology_and_the_default_file_name(tmp_path):
    own = tmp_path / "topologies"
    own.mkdir()
    basic = next(p for p in SHIPPED if p.stem == "basic").read_text()
    (own / "classroom.yaml").write_text(
        basic.replace("name: basic", "name: classroom").replace("192.168.", "10.77.")
    )
    run = vlanlb("graph", "--vlanlb-topology", "classroom", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    shown = read_svg_texts(tmp_path / "classroom.svg", tmp_path)
    assert "eth0 10.77.10.10" in shown
    assert not any("192.168." in line for line in shown)


def test_an_unknown_topology_is_one_error_and_no_file(tmp_path):
    run = vlanlb("graph", "--vlanlb-topology", "nope", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("vlanlb: nope: unknown topology; known topologies: basic")
    assert len(run.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
