"""Choosing the podman API: backends, versions, ssh commands (no podman needed)."""

from __future__ import annotations

import pytest

from pytest_vlanlb.errors import PreflightError
from pytest_vlanlb.podman import api
from pytest_vlanlb.podman.api import api_conf, check_version, choose_network_backend
from pytest_vlanlb.podman.remote import is_ssh, ssh_command


@pytest.mark.parametrize(
    ("installed", "requested", "chosen"),
    [
        (["netavark", "cni"], "auto", "netavark"),
        (["cni"], "auto", "cni"),
        (["netavark", "cni"], "cni", "cni"),
        (["netavark"], "default", None),  # podman's own choice, as its CLI makes it
    ],
)
def test_backend_choice(monkeypatch, installed, requested, chosen):
    monkeypatch.setattr(api, "installed_network_backends", lambda: installed)
    monkeypatch.setattr(api, "podman_builds_cni", lambda: True)
    assert choose_network_backend(requested) == chosen


def test_a_missing_backend_names_the_package(monkeypatch):
    monkeypatch.setattr(api, "installed_network_backends", lambda: ["netavark"])
    monkeypatch.setattr(api, "podman_builds_cni", lambda: True)
    with pytest.raises(PreflightError, match="apt-get install containernetworking-plugins"):
        choose_network_backend("cni")
    monkeypatch.setattr(api, "installed_network_backends", lambda: [])
    with pytest.raises(PreflightError, match="no network backend installed: run `vlanlb setup`"):
        choose_network_backend("auto")


#: podman 5 as Debian 13 and Fedora build it: no CNI.
PODMAN_5_WITHOUT_CNI = """#!/bin/sh
case "$1" in
    --version) echo "podman version 5.4.2" ;;
    *) echo 'Error: cni support is not enabled in this build, only netavark. Got unsupported \
network backend "cni"' >&2; exit 125 ;;
esac
"""


@pytest.fixture(autouse=True)
def fresh_cni_probe():
    """podman_builds_cni() is asked once per process: each test asks its own podman."""
    api.podman_builds_cni.cache_clear()
    yield
    api.podman_builds_cni.cache_clear()


def fake_podman(folder, script: str, monkeypatch) -> None:
    (folder / "podman").write_text(script)
    (folder / "podman").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    monkeypatch.setattr(api, "CNI_DIRS", (str(folder),))
    (folder / "macvlan").write_text("")  # CNI's plugins are installed: podman cannot use them


@pytest.mark.parametrize(
    ("script", "has_cni"),
    [
        (PODMAN_5_WITHOUT_CNI, False),
        ('#!/bin/sh\necho "podman version 5.2.0"\n', True),  # built with CNI: info succeeds
        ('#!/bin/sh\necho "podman version 4.3.1"\nexit 99\n', True),  # 4.x: never asked
    ],
)
def test_cni_is_found_only_in_a_podman_built_with_it(tmp_path, monkeypatch, script, has_cni):
    fake_podman(tmp_path, script, monkeypatch)
    monkeypatch.setattr(api, "HELPER_DIRS", (str(tmp_path),))
    (tmp_path / "netavark").write_text("")
    assert api.podman_builds_cni() is has_cni
    assert api.installed_network_backends() == ["netavark", "cni"][: 1 + has_cni]


def test_cni_on_a_podman_without_it_says_so_and_how_to_go_on(tmp_path, monkeypatch):
    fake_podman(tmp_path, PODMAN_5_WITHOUT_CNI, monkeypatch)
    with pytest.raises(PreflightError) as caught:
        choose_network_backend("cni")
    assert str(caught.value) == (
        "--vlanlb-network-backend=cni: this podman (5.4.2) was built without CNI, as podman 5 "
        "usually is: use --vlanlb-network-backend=netavark (or auto)"
    )


def test_our_containers_conf_names_the_backend_explicitly():
    assert '[network]\nnetwork_backend = "cni"' in api_conf("cni")
    assert "network_backend" not in api_conf(None)


@pytest.mark.parametrize("version", ["4.3.1", "4.9.3", "5.2.0", "5.0.0-dev"])
def test_supported_podman_versions(version):
    check_version(version, "unix:///x")


@pytest.mark.parametrize("version", ["3.4.4", "4.2.0", "1.9.3"])
def test_an_old_podman_is_one_clear_line(version):
    with pytest.raises(PreflightError, match=rf"podman {version} at unix:///x is too old: .* 4\.3"):
        check_version(version, "unix:///x")


def test_ssh_command_is_non_interactive_and_bounded():
    command = ssh_command("ssh://root@vm.example:2222/run/podman/podman.sock", "~/k", "true")
    assert command[0] == "ssh"
    assert "BatchMode=yes" in command
    assert any(option.startswith("ConnectTimeout=") for option in command)
    assert command[-2:] == ["root@vm.example", "true"]
    assert command[command.index("-p") + 1] == "2222"
    assert command[command.index("-i") + 1].endswith("/k")
    assert is_ssh("ssh://h/s")
    assert not is_ssh("unix:///run/podman/podman.sock")


def test_our_containers_conf_shortens_the_exec_sessions_linger():
    conf = api_conf(None, stop_timeout=0)
    engine = conf.split("[engine]\n", 1)[1]
    assert "exit_command_delay = 30" in engine
    assert "stop_timeout = 0" in engine
