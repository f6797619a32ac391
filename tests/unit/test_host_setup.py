"""`vlanlb setup`'s checks, without installing anything (no podman needed)."""

from __future__ import annotations

import pytest

from pytest_vlanlb import cli
from pytest_vlanlb.errors import PreflightError
from pytest_vlanlb.host import setup


def test_a_host_without_apt_is_told_what_to_install_and_how_to_go_on(monkeypatch):
    monkeypatch.setattr(setup.shutil, "which", lambda tool: None)
    with pytest.raises(PreflightError) as caught:
        setup.install_packages(print)
    message = str(caught.value)
    assert "this host has no apt" in message
    assert "`vlanlb setup --no-packages`" in message
    for package in ("podman", "runc", "netavark", "mmdebstrap", "iproute2"):
        assert package in message


def test_missing_tools_are_named_with_their_packages(monkeypatch):
    present = {"podman", "runc", "crun", "iptables", "mmdebstrap"}
    monkeypatch.setattr(setup.shutil, "which", lambda tool: tool if tool in present else None)
    with pytest.raises(PreflightError) as caught:
        setup.check_tools()
    assert str(caught.value) == (
        "missing: ip, nsenter, unshare: install iproute2 util-linux "
        "(`vlanlb setup` does it on a host with apt)"
    )


def test_setup_needs_root(monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    with pytest.raises(PreflightError, match="needs root: run it with sudo"):
        cli.set_up(packages=False)
