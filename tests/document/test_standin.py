"""Document mode's stand-in for `alpine` pings as alpine does, with or without NET_RAW
(podman-backed).

podman 5 no longer grants NET_RAW by default. Alpine's busybox ping then falls back to an ICMP
datagram socket (alpine patches it so); Debian's busybox, the stand-in's, cannot. The
stand-in's `ping` must give the same lines and statuses either way, or every ping of a
workshop document fails on podman 5 for a reason a student with real alpine never meets.
"""

from __future__ import annotations

import contextlib
import re

import podman.errors
import pytest

from pytest_vlanlb.host.image import ImageRecipe, ensure_alpine_standin, ensure_image
from pytest_vlanlb.host.naming import RunNames
from pytest_vlanlb.podman.settings import ULIMITS

#: A reply (127.0.0.1) and silence (a neighbour that is not there, behind a veth of its own).
#: One stream (stderr into stdout): ping's complaint and the status after it stay in the
#: order they were written; the logs of two streams need not keep it.
SCRIPT = """
exec 2>&1
ip link add v0 type veth peer name v1 && ip addr add 10.9.9.1/24 dev v0 &&
ip link set v0 up && ip link set v1 up || exit 99
echo "NET_RAW $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 13 & 1 ))"
ping -c 2 127.0.0.1; echo "status $?"
ping -c 2 -W 1 10.9.9.2; echo "status $?"
"""
CAP_NET_RAW = "NET_RAW"


@pytest.fixture(scope="module")
def standin(vlanlb_podman) -> str:
    client = vlanlb_podman.client()
    return ensure_alpine_standin(client, ensure_image(client, ImageRecipe()))


def run(vlanlb_podman, image: str, net_raw: bool, ping_groups: str = "0 0") -> str:
    client = vlanlb_podman.client()
    container = client.containers.create(
        image,
        command=["sh", "-c", SCRIPT],
        network_mode="none",
        sysctls={"net.ipv4.ping_group_range": ping_groups},  # podman 5's default: "0 0"
        cap_add=["NET_ADMIN"],
        cap_drop=[] if net_raw else [CAP_NET_RAW],
        ulimits=ULIMITS,
        # A run's labels: a run killed while this container lives leaves it to the next
        # run's sweep of dead runs, like any lab of its.
        labels=RunNames.new().labels(**{"vlanlb.test": "standin"}),
    )
    try:
        container.start()
        assert container.wait() == 0
        return b"".join(container.logs(stdout=True, stderr=False)).decode()
    finally:
        with contextlib.suppress(podman.errors.APIError):
            container.remove(force=True)


def normalised(output: str) -> str:
    """Times vary from run to run; everything else must match."""
    output = re.sub(r"time=[\d.]+", "time=T", output)
    output = re.sub(r"min/avg/max = [\d./]+", "min/avg/max = T", output)
    return re.sub(r"NET_RAW \d", "NET_RAW ?", output)


def test_ping_without_net_raw_replies_as_with_it(vlanlb_podman, standin):
    with_raw = run(vlanlb_podman, standin, net_raw=True)
    without_raw = run(vlanlb_podman, standin, net_raw=False)
    assert "NET_RAW 1" in with_raw  # each path was taken
    assert "NET_RAW 0" in without_raw
    # busybox's own lines: seq from 0, "packets received", a round-trip summary
    assert "64 bytes from 127.0.0.1: seq=0 ttl=64" in with_raw
    assert "2 packets transmitted, 2 packets received, 0% packet loss" in with_raw
    assert "2 packets transmitted, 0 packets received, 100% packet loss\nstatus 1" in with_raw
    assert normalised(without_raw).splitlines() == normalised(with_raw).splitlines()


def test_ping_without_net_raw_or_datagram_sockets_is_refused_as_alpines(vlanlb_podman, standin):
    """Where root's group may not open ICMP datagram sockets either (podman 4's default),
    alpine's ping cannot fall back: it says so, as busybox does, and fails at once."""
    output = run(vlanlb_podman, standin, net_raw=False, ping_groups="1 0")
    assert "NET_RAW 0" in output
    assert output.count("ping: permission denied (are you root?)\nstatus 1") == 2
