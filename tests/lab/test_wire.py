"""802.1Q on the wire: where the kernel has 8021q, the lab's segments are tagged
sub-interfaces of the run's trunk, as in the workshop (podman-backed).

Observed on the host's side of the trunk with tcpdump: a's and b's broadcasts leave their
macvlan parents as frames tagged 10 and 20, and a frame of VLAN 10 never reaches VLAN 20's
sub-interface. On a kernel without 8021q the lab uses veth wires and these tests skip with
the reason; the VM tier (`scripts/vm-check`) runs them on kernels that have it.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pytest_vlanlb.host.wires import WireKind

pytestmark = pytest.mark.vlanlb(topology="basic")

IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
#: How long a capture listens: ARP asks again each second, so a few requests are seen.
CAPTURE = 3.0


@pytest.fixture
def trunk(vlanlb_lab) -> str:
    if vlanlb_lab.wires.kind is not WireKind.DOT1Q:
        pytest.skip(
            "this kernel has no 8021q: the lab's segments are veth wires here "
            "(scripts/vm-check runs these tests in guests whose kernels have it)"
        )
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is missing: `apt-get install tcpdump` (scripts/setup installs it)")
    return vlanlb_lab.names.link("t")


@contextmanager
def capture(interface: str) -> Iterator[list[str]]:
    """tcpdump's lines (link-level headers, numeric) on one host link, while the body runs."""
    lines: list[str] = []
    process = subprocess.Popen(
        ["tcpdump", "-e", "-n", "-l", "-i", interface, "arp or (vlan and arp)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    process.stderr.readline()  # "listening on ...": from here on, frames are seen
    try:
        yield lines
        time.sleep(CAPTURE)
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
        lines += out.splitlines()


def ask_for_gateway(node, gateway: str) -> None:
    """Make the node broadcast an ARP request for its gateway: its cache is forgotten first
    (from the host: the node itself lacks NET_ADMIN), then it pings."""
    node.flush_neighbours()
    node.exec("ping", "-c", "1", "-W", "1", gateway)


def test_each_segment_is_tagged_with_its_vlan_on_the_trunk(vlanlb_lab, vlanlb_topology, trunk):
    public, pods = vlanlb_topology.segments["public"], vlanlb_topology.segments["pods"]
    a, b = vlanlb_lab.client_node, vlanlb_lab.backend
    with capture(f"{trunk}p") as frames:  # the far end of the trunk: what the wire carries
        ask_for_gateway(a, str(public.gateway))
        ask_for_gateway(b, str(pods.gateway))
    text = "\n".join(frames)
    a_address = vlanlb_topology.client.address_on("public")
    b_address = vlanlb_topology.backend.address_on("pods")
    assert re.search(
        rf"802\.1Q.*vlan {public.vlan},.*who-has {public.gateway} tell {a_address}\b", text
    ), text
    assert re.search(
        rf"802\.1Q.*vlan {pods.vlan},.*who-has {pods.gateway} tell {b_address}\b", text
    ), text
    untagged = [f for f in frames if "who-has" in f and "802.1Q" not in f]
    assert not untagged, text


def test_a_frame_of_one_vlan_never_reaches_the_other(vlanlb_lab, vlanlb_topology, trunk):
    public, pods = vlanlb_topology.segments["public"], vlanlb_topology.segments["pods"]
    with capture(f"{trunk}.{public.vlan}") as own, capture(f"{trunk}.{pods.vlan}") as other:
        ask_for_gateway(vlanlb_lab.client_node, str(public.gateway))
    assert any(f"who-has {public.gateway}" in line for line in own), own  # seen where it belongs
    leaked = [
        line
        for line in other
        if any(ipaddress.ip_address(a) in public.subnet for a in IPV4.findall(line))
    ]
    assert not leaked, other
