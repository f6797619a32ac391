"""What the student-like labs type: the layer catalog's commands, rendered with the
workshop's own names (eth1, eth2, the basic topology's addresses), as shell lines."""

from __future__ import annotations

from pathlib import Path

from pytest_vlanlb.grading.hints import shell_line
from pytest_vlanlb.layers.catalog import (
    DNAT_VIP,
    DROP_DIRECT,
    DROP_DIRECT_NOT_DNAT,
    MASQUERADE_BACKEND,
    VIP_ADDRESS,
    WORKSHOP_SERVER,
)
from pytest_vlanlb.layers.steps import Rule
from pytest_vlanlb.topology import load_topology

BASIC = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "basic.yaml")
_service = BASIC.service
FACTS = {
    "public_if": "eth1",
    "pod_if": "eth2",
    "vip": str(_service.vip),
    "port": str(_service.port),
    "backend": str(_service.backend_address),
    "backend_port": str(_service.backend_port),
    "greeting": _service.greeting,
}


def typed(table, chain, spec, action):
    return shell_line(Rule(table, chain, spec).command(action, FACTS))


SERVER = WORKSHOP_SERVER.format_map(FACTS)
DROP_AS_WRITTEN = typed("filter", "FORWARD", DROP_DIRECT, "-I")
DROP_CORRECTED = typed("filter", "FORWARD", DROP_DIRECT_NOT_DNAT, "-I")
VIP = shell_line(VIP_ADDRESS.command("add", FACTS))
VIP_ON_ETH2 = shell_line(VIP_ADDRESS.command("add", {**FACTS, "public_if": "eth2"}))
DNAT = typed("nat", "PREROUTING", DNAT_VIP, "-A")
SNAT = typed("nat", "POSTROUTING", MASQUERADE_BACKEND, "-A")

#: Each variant: the commands the student typed on the router, and whether Step 1 was done.
#: "no-iptables": the router is busybox-only (the student never ran `apk add iptables`).
VARIANTS: dict[str, tuple[list[str], bool]] = {
    "no-iptables": ([VIP], True),
    "complete": ([DROP_CORRECTED, VIP, DNAT, SNAT], True),
    "as-written": ([DROP_AS_WRITTEN, VIP, DNAT, SNAT], True),
    "no-server": ([DROP_CORRECTED, VIP, DNAT, SNAT], False),
    "vip-wrong-if": ([DROP_CORRECTED, VIP_ON_ETH2, DNAT, SNAT], True),
    "no-dnat": ([DROP_CORRECTED, VIP, SNAT], True),
    "no-firewall": ([VIP, DNAT, SNAT], True),
}
