"""The plugin as another project depends on it (podman-backed, slow: a wheel, a venv, a lab).

In a folder outside the clone: a new venv, the wheel built from this checkout installed into
it with pip, `vlanlb setup --no-packages`, a topology of the project's own (other VLAN ids,
subnets, node names, port and greeting) in its `topologies/`, a test file of its own (the
workshop's layers, and kube-proxy's in both modes through the `vlanlb_service` fixture), and
`pytest --vlanlb-topology=NAME`, which must build that lab and pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TOPOLOGY = """\
name: shop
description: A user's own lab, nothing like the workshop's numbers.
segments:
  - {name: front, vlan: 110, subnet: 10.61.0.0/24, gateway: 10.61.0.1}
  - {name: back, vlan: 120, subnet: 10.62.8.0/23, gateway: 10.62.8.1}
nodes:
  gw:
    role: router
    interfaces:
      - segment: uplink
      - {segment: front, address: 10.61.0.1}
      - {segment: back, address: 10.62.8.1}
  shopper:
    role: client
    interfaces: [{segment: front, address: 10.61.0.50}]
  web:
    role: pod
    interfaces: [{segment: back, address: 10.62.9.80}]
service:
  vip: 10.61.0.200
  port: 8080
  backend: {node: web, address: 10.62.9.80, port: 8080}
  greeting: Welcome to the shop
"""

USER_TEST = """\
import pytest

from pytest_vlanlb import HttpOutcome, http_get, ping_lost


@pytest.mark.vlanlb(layers=["webserver", "firewall:dnat-aware", "vip", "dnat", "snat"])
def test_the_vip_serves_the_shop_while_the_pod_stays_unreachable(vlanlb_layers, vlanlb_client):
    got = http_get(vlanlb_client, "http://10.61.0.200:8080")
    assert got.outcome is HttpOutcome.OK, str(got)
    assert got.body.rstrip("\\n") == "Welcome to the shop"
    assert ping_lost(vlanlb_client, "10.62.9.80").received == 0


@pytest.mark.parametrize("vlanlb_service", ["service", "service:nftables"], indirect=True)
@pytest.mark.vlanlb(layers=["webserver", "vip"])
def test_kube_proxy_serves_the_shop_in_either_mode(vlanlb_service, vlanlb_client):
    got = http_get(vlanlb_client, "http://10.61.0.200:8080")
    assert got.outcome is HttpOutcome.OK, str(got)
    assert got.body.rstrip("\\n") == "Welcome to the shop"


def test_the_lab_is_the_projects_own(vlanlb_topology, vlanlb_router, vlanlb_client):
    assert vlanlb_topology.name == "shop"
    assert (vlanlb_router.name, vlanlb_client.name) == ("gw", "shopper")
"""


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.vlanlb
def test_a_project_of_its_own_installs_the_wheel_and_runs_its_own_topology(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("pytest_vlanlb-*.whl")
    project = tmp_path / "shop-workshop"  # outside the clone
    (project / "topologies").mkdir(parents=True)
    run(sys.executable, "-m", "venv", project / ".venv", cwd=project)
    python = project / ".venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", wheel, cwd=project)
    setup = run(project / ".venv" / "bin" / "vlanlb", "setup", "--no-packages", cwd=project)
    said = setup.stdout.splitlines()
    # One line per change or finding; the node image is named once it exists.
    assert any(line.startswith("node image: localhost/vlanlb-node:") for line in said), setup.stdout
    assert any(line.startswith("document mode's crun: ") for line in said), setup.stdout
    (project / "topologies" / "shop.yaml").write_text(TOPOLOGY)
    (project / "test_shop.py").write_text(USER_TEST)
    result = run(python, "-m", "pytest", "-p", "no:cacheprovider", "--vlanlb-topology=shop",
                 cwd=project)  # fmt: skip
    assert "4 passed" in result.stdout, result.stdout[-3000:]
    # The plugin came from the wheel in that venv, not from this checkout.
    where = run(python, "-c", "import pytest_vlanlb; print(pytest_vlanlb.__file__)", cwd=project)
    assert where.stdout.startswith(str(project / ".venv")), where.stdout
