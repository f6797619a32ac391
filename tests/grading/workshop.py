"""What the student-like labs type: the layer catalog's commands, rendered with the
workshop's own names (eth1, eth2, the basic topology's addresses), as shell lines."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pytest_vlanlb.grading.hints import shell_line
from pytest_vlanlb.model.commands import (
    DNAT_VIP,
    DROP_DIRECT,
    DROP_DIRECT_NOT_DNAT,
    MASQUERADE_BACKEND,
    VIP_ADDRESS,
    WORKSHOP_SERVER,
    Rule,
    facts_for,
)
from pytest_vlanlb.model.topology import load_topology

BASIC = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "basic.yaml")
FACTS = facts_for(BASIC, "eth1", "eth2")  # the workshop's own interface names


def typed(table, chain, spec, action):
    return shell_line(Rule(table, chain, spec).command(action, FACTS))


SERVER = WORKSHOP_SERVER.format_map(FACTS)
DROP_AS_WRITTEN = typed("filter", "FORWARD", DROP_DIRECT, "-I")
DROP_CORRECTED = typed("filter", "FORWARD", DROP_DIRECT_NOT_DNAT, "-I")
VIP = shell_line(VIP_ADDRESS.command("add", FACTS))
VIP_ON_ETH2 = shell_line(VIP_ADDRESS.command("add", {**FACTS, "public_if": "eth2"}))
DNAT = typed("nat", "PREROUTING", DNAT_VIP, "-A")
SNAT = typed("nat", "POSTROUTING", MASQUERADE_BACKEND, "-A")

COMPLETE = [DROP_CORRECTED, VIP, DNAT, SNAT]
#: Step 1 whose answer never ends: the headers, then the greeting forever.
ENDLESS_SERVER = (
    "while true; do { echo -e 'HTTP/1.1 200 OK\\n'; yes 'Hello from Pod B'; } | nc -l -p 80; done"
)
#: Step 4 to the wrong pod, with a comment that holds the right target's words.
DNAT_WRONG_WITH_COMMENT = (
    "iptables -t nat -A PREROUTING -d 192.168.10.100 -p tcp --dport 80 "
    '-m comment --comment "--to-destination 192.168.20.20:80" '
    "-j DNAT --to-destination 192.168.20.21:80"
)
#: Interface names a shell would run: pasting a hint that carries them unquoted runs code.
RENAME_HOSTILE = (
    "ip link set eth1 down && ip link set eth1 name 'x;id' && ip link set 'x;id' up && "
    "ip link set eth2 down && ip link set eth2 name '$(id)' && ip link set '$(id)' up"
)
#: The router's curl replaced by something that hangs. (Not a's ping: the busybox here runs
#: its applets directly from its shell, whatever /bin/ping is; alpine's does not.)
HANGING_CURL = "printf '#!/bin/sh\\nexec sleep 100000\\n' > /usr/bin/curl"
#: a's ping replaced by something that hangs without sending (a on the node image, whose
#: shell looks ping up on PATH): silence from it proves nothing.
HANGING_PING = (
    "printf '#!/bin/sh\\nexec sleep 100000\\n' > /usr/local/bin/ping && "
    "chmod +x /usr/local/bin/ping"
)
#: 3,000 rules that match nothing of the lab's (sources in 10.99/16), appended to FORWARD:
#: `iptables-save -c` then prints far more than a probe's 64 KiB of output.
HARMLESS_RULES = (
    "{ echo '*filter'; i=0; while [ $i -lt 3000 ]; do "
    'echo "-A FORWARD -s 10.99.$((i / 250)).$((i % 250 + 1))/32 -j ACCEPT"; i=$((i + 1)); done; '
    "echo COMMIT; } | iptables-restore -n"
)


@dataclass(frozen=True)
class Variant:
    """A student's lab: what was typed on the router, Step 1's server (None: not started),
    what was done afterwards in a or b, and which containers were then stopped or paused."""

    router: list[str]
    server: str | None = SERVER
    afterwards: tuple[tuple[str, str], ...] = ()  # (container role, command)
    stopped: tuple[str, ...] = ()
    paused: tuple[str, ...] = ()
    router_image: str = "node"  # node (with iptables) or busybox (without)
    client_image: str = "busybox"  # a's: busybox (alpine-like) or node (its own ping binary)


VARIANTS: dict[str, Variant] = {
    "no-iptables": Variant([VIP], router_image="busybox"),
    "complete": Variant(COMPLETE),
    "as-written": Variant([DROP_AS_WRITTEN, VIP, DNAT, SNAT]),
    "no-server": Variant(COMPLETE, server=None),
    "vip-wrong-if": Variant([DROP_CORRECTED, VIP_ON_ETH2, DNAT, SNAT]),
    "no-dnat": Variant([DROP_CORRECTED, VIP, SNAT]),
    "no-firewall": Variant([VIP, DNAT, SNAT]),
    # Hostile or broken labs: the grader must neither hang nor be fooled nor run code.
    "hostile-names": Variant([*COMPLETE, RENAME_HOSTILE]),
    "endless-answer": Variant(COMPLETE, server=ENDLESS_SERVER),
    "b-stopped-no-drop": Variant([VIP, DNAT, SNAT], stopped=("b",)),
    "hanging-curl": Variant(COMPLETE, afterwards=(("router", HANGING_CURL),)),
    "comment-dnat": Variant([DROP_CORRECTED, VIP, DNAT_WRONG_WITH_COMMENT, SNAT]),
    # Judged right at any size, and what is seen said as it is (issue 21).
    "many-rules": Variant([*COMPLETE, HARMLESS_RULES]),
    "paused-b": Variant(COMPLETE, paused=("b",)),
    "hanging-ping": Variant(COMPLETE, afterwards=(("a", HANGING_PING),), client_image="node"),
}
#: `VLANLB_GRADING_VARIANTS=a,b,...` builds and grades only those labs: a VM guest under TCG
#: (scripts/vm/guest-checks) grades the ones whose podman state or exec behaviour a podman
#: version could change; the host grades all of them.
ALL_VARIANTS = VARIANTS  # what a student lab can be built as (bench/grading.py's too)
if chosen := os.environ.get("VLANLB_GRADING_VARIANTS"):
    unknown = sorted(set(chosen.split(",")) - set(VARIANTS))
    if unknown:
        raise ValueError(f"VLANLB_GRADING_VARIANTS: unknown {unknown}; known: {list(VARIANTS)}")
    VARIANTS = {name: ALL_VARIANTS[name] for name in chosen.split(",")}

#: The seven usual mistakes (and none), graded as before the hostile ones were added.
USUAL = (
    "no-iptables",
    "complete",
    "as-written",
    "no-server",
    "vip-wrong-if",
    "no-dnat",
    "no-firewall",
)
