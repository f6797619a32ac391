"""What `vlanlb setup` leaves of the user's own podman (podman-backed): on a storage podman
has never looked at, podman makes its own choice of network backend before setup stores an
image (netavark, as on a fresh install), so that the workshop's vlan_ja.md Step 3 — a router
started with the segment's gateway as its address — works with the user's own `podman`; and
setup installs no OCI runtime that would become podman's default.

The user's podman here is the podman CLI with its storage and network configuration moved to
folders of the test's (CONTAINERS_STORAGE_CONF, CONTAINERS_CONF): a fresh install, without
touching the host's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_vlanlb.host import setup
from pytest_vlanlb.host.image import ImageRecipe

#: The ulimits this kind of machine needs for any rootful container (no CAP_SYS_RESOURCE:
#: ../shared/ENVIRONMENT.md); a user's machine does without.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


@pytest.fixture
def fresh_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "storage"
    conf = tmp_path / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}"\nrunroot = "{tmp_path / "run"}"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    # And no networks of the host's: podman 4 chooses CNI where CNI networks exist (a fresh
    # install has none; this host has the lab's, on the suite's CNI pass).
    containers_conf = tmp_path / "containers.conf"
    containers_conf.write_text(f'[network]\nnetwork_config_dir = "{tmp_path / "networks"}"\n')
    monkeypatch.setenv("CONTAINERS_CONF", str(containers_conf))
    yield root
    # Only the test's own: this storage's containers and images, and its one network.
    podman("rm", "-af", "-t", "0")
    podman("rmi", "-af")
    podman("network", "rm", "-f", "vlbsetup-net")


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=False)


def test_podman_chooses_netavark_before_an_image_and_step_3_works(fresh_storage, tmp_path):
    assert not (fresh_storage / "defaultNetworkBackend").exists()
    said = setup.podman_chooses_its_network_backend()
    assert said == (
        "podman's network backend: netavark (podman chose it now, before any image was stored)"
    )
    assert (fresh_storage / "defaultNetworkBackend").read_text().strip() == "netavark"
    # Then setup stores its image, and podman's choice stays what it was.
    archive = tmp_path / "node.tar"
    host = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINERS_")}
    with archive.open("wb") as out:  # from the host's storage, where setup built it
        subprocess.run(["podman", "save", ImageRecipe().tag], stdout=out, env=host, check=True)
    assert podman("load", "-q", "-i", str(archive)).returncode == 0
    assert setup.podman_chooses_its_network_backend() == (
        "podman's network backend: netavark (chosen before, unchanged)"
    )
    # vlan_ja.md Step 3 with the user's own podman: the router takes the gateway address.
    subprocess.run(
        ["ip", "link", "add", "vlbsetup0", "type", "veth", "peer", "name", "vlbsetup1"],
        check=True,
    )
    try:
        made = podman(
            "network", "create", "-d", "macvlan", "-o", "parent=vlbsetup0",
            "--subnet", "192.168.77.0/24", "--gateway", "192.168.77.1", "vlbsetup-net",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        ran = podman(
            "run", "--rm", *ULIMITS, "--network", "vlbsetup-net", "--ip", "192.168.77.1",
            ImageRecipe().tag, "ip", "-4", "-o", "addr", "show",
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert "192.168.77.1/24" in ran.stdout
    finally:
        subprocess.run(["ip", "link", "del", "vlbsetup0"], check=False)


def test_setup_installs_no_oci_runtime_but_runc():
    """crun, installed, would become podman's default; on cgroup-v1 hybrid hosts it cannot
    start containers there. Document mode unpacks its own instead."""
    assert "crun" not in setup.PACKAGES
    assert setup.PRIVATE_CRUN.is_relative_to("/usr/local/lib/vlanlb")
    runtime = podman("info", "--format", "{{.Host.OCIRuntime.Name}}").stdout.strip()
    ran = podman("run", "--rm", *ULIMITS, ImageRecipe().tag, "true")
    assert ran.returncode == 0, (runtime, ran.stderr)
