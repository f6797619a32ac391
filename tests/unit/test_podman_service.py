"""Choosing the podman service: backends, versions, ssh commands (no podman needed)."""

from __future__ import annotations

import pytest

from pytest_vlanlb import podman_service
from pytest_vlanlb.errors import PreflightError
from pytest_vlanlb.podman_service import check_version, choose_backend, containers_conf
from pytest_vlanlb.remote import is_ssh, ssh_command


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
    monkeypatch.setattr(podman_service, "installed_backends", lambda: installed)
    assert choose_backend(requested) == chosen


def test_a_missing_backend_names_the_package(monkeypatch):
    monkeypatch.setattr(podman_service, "installed_backends", lambda: ["netavark"])
    with pytest.raises(PreflightError, match="apt-get install containernetworking-plugins"):
        choose_backend("cni")
    monkeypatch.setattr(podman_service, "installed_backends", lambda: [])
    with pytest.raises(PreflightError, match="no network backend installed: run scripts/setup"):
        choose_backend("auto")


def test_our_containers_conf_names_the_backend_explicitly():
    assert '[network]\nnetwork_backend = "cni"' in containers_conf("cni")
    assert "network_backend" not in containers_conf(None)


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
    conf = containers_conf(None, stop_timeout=0)
    engine = conf.split("[engine]\n", 1)[1]
    assert "exit_command_delay = 30" in engine
    assert "stop_timeout = 0" in engine
