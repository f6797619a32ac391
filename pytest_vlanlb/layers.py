"""The workshop's steps as layers: data (what changes where) plus apply and revert.

A layer is a list of steps. Each step is a template over the lab's facts ({public_if},
{vip}, ...), rendered against the running lab, so the same data works whatever the router's
interfaces are called. Reverting runs the steps' inverses in reverse order and leaves the lab
as it was, so any combination can be composed on one lab without rebuilding it.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .errors import LabBuildError, VlanlbError
from .lab import Lab
from .node import ExecResult, Node
from .probes import run_together
from .waiting import wait_until

#: Where the web server writes its pid, and the client addresses it saw (one per line).
WEB_PID = "/tmp/vlanlb-web.pid"
WEB_PEERS = "/tmp/vlanlb-web.peers"


def lab_facts(lab: Lab) -> dict[str, str]:
    """The values layer templates may use, resolved from the running lab."""
    topology = lab.topology
    service = topology.service
    public = topology.segment_of(service.vip)
    pods = topology.segment_of(service.backend_address)
    return {
        "public_if": lab.router_interface(public),
        "pod_if": lab.router_interface(pods),
        "vip": str(service.vip),
        "port": str(service.port),
        "backend": str(service.backend_address),
        "backend_port": str(service.backend_port),
        "greeting": service.greeting,
        "port_hex": f"{service.backend_port:04X}",
    }


def _render(words: Sequence[str], facts: Mapping[str, str]) -> list[str]:
    return [word.format_map(facts) for word in words]


class Step(Protocol):
    """One change on one node: the commands that make it and the ones that undo it."""

    @property
    def node(self) -> str: ...  # router, client or backend

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]: ...
    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool: ...
    def describe(self, facts: Mapping[str, str]) -> str: ...


def _node(lab: Lab, role: str) -> Node:
    return {"router": lab.router, "client": lab.client_node, "backend": lab.backend}[role]


@dataclass(frozen=True)
class Rule:
    """One iptables rule on the router, inserted at the top or appended to its chain."""

    table: str
    chain: str
    spec: tuple[str, ...]
    insert: bool = False
    node: str = "router"

    def command(self, action: str, facts: Mapping[str, str]) -> list[str]:
        return ["iptables", "-t", self.table, action, self.chain, *_render(self.spec, facts)]

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        return [self.command("-D" if undo else "-I" if self.insert else "-A", facts)]

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
        return True

    def describe(self, facts: Mapping[str, str]) -> str:
        return shlex.join(self.command("-I" if self.insert else "-A", facts))


@dataclass(frozen=True)
class Address:
    """An address added to a node's interface (the VIP, as MetalLB's speaker does)."""

    interface: str  # a template such as {public_if}
    cidr: str
    node: str = "router"

    def command(self, action: str, facts: Mapping[str, str]) -> list[str]:
        return [
            "ip",
            "addr",
            action,
            self.cidr.format_map(facts),
            "dev",
            self.interface.format_map(facts),
        ]

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        return [self.command("del" if undo else "add", facts)]

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
        return True

    def describe(self, facts: Mapping[str, str]) -> str:
        return shlex.join(self.command("add", facts))


# The greeting server. The workshop runs `echo -e '...' | nc -l -p 80` in a loop; between two
# nc processes the port is closed and a request is refused. `nc -ll -e` keeps listening and
# runs the handler per connection: the answer is the same bytes, without that gap. The
# handler also records the client address it sees (from /proc/net/tcp*, busybox-only, so it
# works on alpine too): that is how tests observe SNAT.
_HANDLER = (
    "cr=$(printf '\\r'); while IFS= read -r l; do [ \"${{l%$cr}}\" = '' ] && break; done; "
    "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"
    " | awk '$2 ~ /:{port_hex}$/ && $4 == \"01\" {{print $3}}' >> " + WEB_PEERS + "; "
    "printf 'HTTP/1.1 200 OK\\r\\n\\r\\n{greeting}\\n'"
)


@dataclass(frozen=True)
class WebServer:
    """An HTTP server on the backend answering exactly the greeting (Step 1)."""

    node: str = "backend"

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        if undo:
            return [["busybox", "sh", "-c", f"kill $(cat {WEB_PID}) && rm -f {WEB_PID}"]]
        server = (
            f"echo $$ > {WEB_PID}; : > {WEB_PEERS}; "
            f"exec nc -ll -p {facts['backend_port']} -e busybox sh -c "
            f"{shlex.quote(_HANDLER.format_map(facts))}"
        )
        # In the background, detached from the exec's output, so the exec returns at once.
        start = f"busybox sh -c {shlex.quote(server)} </dev/null >/dev/null 2>&1 &"
        return [["busybox", "sh", "-c", start]]

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
        return _listening(node, facts["port_hex"]) is not undo

    def describe(self, facts: Mapping[str, str]) -> str:
        return f"nc -ll -p {facts['backend_port']} answering {facts['greeting']!r}"


def _listening(node: Node, port_hex: str) -> bool:
    """A TCP socket in LISTEN state (0A) on the port, read from the kernel's table."""
    table = node.exec("cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    return any(
        len(f := line.split()) > 3 and f[1].endswith(f":{port_hex}") and f[3] == "0A"
        for line in table.splitlines()
    )


def peers_seen(backend: Node) -> list[str]:
    """The client addresses the web server saw, oldest first (IPv4, from /proc hex)."""
    lines = backend.exec("cat", WEB_PEERS).stdout.split()
    return [hex_to_ipv4(line) for line in lines]


def hex_to_ipv4(entry: str) -> str:
    """'0A0AA8C0:D4F2' (or its IPv4-mapped tcp6 form) -> '192.168.10.10'."""
    address = entry.split(":")[0][-8:]
    return ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))


@dataclass(frozen=True)
class Layer:
    name: str
    title: str
    kubernetes: str
    steps: tuple[Step, ...] = field(default=())

    def apply(self, lab: Lab) -> None:
        run_steps(lab, self.steps, undo=False)

    def revert(self, lab: Lab) -> None:
        run_steps(lab, self.steps, undo=True)

    def describe(self, lab: Lab) -> list[str]:
        facts = lab_facts(lab)
        return [step.describe(facts) for step in self.steps]


STATE_MARK = "@@vlanlb-state@@"


def run_steps(lab: Lab, steps: Sequence[Step], undo: bool, *, report_state: bool = False) -> str:
    """Apply (or undo, in reverse) steps with one exec per node, nodes at the same time.

    With report_state, the router's exec also prints its state after the change (saves an
    exec per test for the base-state check). Returns that state, or "".
    """
    facts = lab_facts(lab)
    ordered_steps = list(reversed(steps)) if undo else list(steps)
    scripts: dict[str, list[str]] = {}
    for step in ordered_steps:
        scripts.setdefault(step.node, []).extend(shlex.join(c) for c in step.commands(facts, undo))
    if report_state:
        scripts.setdefault("router", []).append(f"echo {STATE_MARK}; {_STATE_SCRIPT}")

    def run(role: str) -> ExecResult:
        return _node(lab, role).exec("/bin/sh", "-c", "set -e; " + "; ".join(scripts[role]))

    results = dict(zip(scripts, run_together(*[lambda r=r: run(r) for r in scripts]), strict=True))
    failed = [
        f"{role}: {r.stderr.strip() or r.stdout.strip()}" for role, r in results.items() if not r.ok
    ]
    if failed:
        raise LabBuildError(
            f"{'reverting' if undo else 'applying'} layers failed on " + "; ".join(failed)
        )
    for step in ordered_steps:
        node = _node(lab, step.node)

        def settled(step: Step = step, node: Node = node) -> bool:
            return step.settled(node, facts, undo)

        if not wait_until(settled, timeout=5.0):
            raise LabBuildError(
                f"{step.describe(facts)} on {node.name} did not take effect within 5s"
            )
    state = results["router"].stdout if report_state else ""
    return state.split(STATE_MARK, 1)[1] if STATE_MARK in state else ""


_DROP_DIRECT = ("-i", "{public_if}", "-o", "{pod_if}")

LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer("webserver", "Step 1: web server on the pod", "the Pod's container", (WebServer(),)),
        Layer(
            "firewall:workshop",
            "Step 2 as written: drop VLAN 10 -> VLAN 20",
            "NetworkPolicy (deny all ingress)",
            (Rule("filter", "FORWARD", (*_DROP_DIRECT, "-j", "DROP"), insert=True),),
        ),
        Layer(
            "firewall:dnat-aware",
            "Step 2 corrected: drop direct traffic, not DNAT'ed",
            "NetworkPolicy + kube-proxy's KUBE-FORWARD accept",
            (
                Rule(
                    "filter",
                    "FORWARD",
                    (*_DROP_DIRECT, "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "DROP"),
                    insert=True,
                ),
            ),
        ),
        Layer("firewall:none", "no firewall", "no NetworkPolicy"),
        Layer(
            "vip",
            "Step 3: the VIP as a /32 on the router's public leg",
            "MetalLB speaker (L2 mode: answers ARP for the VIP)",
            (Address("{public_if}", "{vip}/32"),),
        ),
        Layer(
            "dnat",
            "Step 4: DNAT VIP:port -> backend:port",
            "kube-proxy KUBE-SERVICES/KUBE-SEP",
            (
                Rule(
                    "nat",
                    "PREROUTING",
                    (
                        "-d",
                        "{vip}",
                        "-p",
                        "tcp",
                        "--dport",
                        "{port}",
                        "-j",
                        "DNAT",
                        "--to-destination",
                        "{backend}:{backend_port}",
                    ),
                ),
            ),
        ),
        Layer(
            "snat",
            "Step 5: MASQUERADE toward the backend",
            "kube-proxy KUBE-POSTROUTING",
            (
                Rule(
                    "nat",
                    "POSTROUTING",
                    (
                        "-d",
                        "{backend}",
                        "-p",
                        "tcp",
                        "--dport",
                        "{backend_port}",
                        "-j",
                        "MASQUERADE",
                    ),
                ),
            ),
        ),
    )
}
FIREWALL_VARIANTS = ("workshop", "dnat-aware", "none")
#: The order the workshop applies them in; a stack is always applied in this order.
ORDER = ("webserver", "firewall", "vip", "dnat", "snat")


def layer(name: str) -> Layer:
    """A layer by name; `firewall` alone means the corrected `firewall:dnat-aware`."""
    key = "firewall:dnat-aware" if name == "firewall" else name
    if key not in LAYERS:
        raise VlanlbError(f"unknown layer {name!r}; known layers: {', '.join(LAYERS)}")
    return LAYERS[key]


def ordered(names: Iterable[str]) -> list[Layer]:
    layers = [layer(n) for n in names]
    families = [lay.name.split(":")[0] for lay in layers]
    if len(set(families)) != len(families):
        raise VlanlbError(f"a layer appears twice in {list(names)} (one firewall variant at most)")
    return sorted(layers, key=lambda lay: ORDER.index(lay.name.split(":")[0]))


@dataclass
class LayerStack:
    """Layers applied to a lab, reverted in reverse order, then checked back to base state."""

    lab: Lab
    applied: list[Layer] = field(default_factory=list)

    def apply(self, *names: str) -> LayerStack:
        ordered([*self.names(), *names])  # rejects a second firewall, a layer twice
        new = ordered(names)
        steps = [step for lay in new for step in lay.steps]
        try:
            run_steps(self.lab, steps, undo=False)
        except BaseException:
            _best_effort_undo(self.lab, steps)
            raise
        self.applied.extend(new)
        return self

    def names(self) -> list[str]:
        return [lay.name for lay in self.applied]

    def revert(self) -> None:
        steps = [step for lay in self.applied for step in lay.steps]
        self.applied.clear()
        now = run_steps(self.lab, steps, undo=True, report_state=True)
        base = base_state(self.lab)
        if _normalise(now) != base:
            raise LabBuildError(
                "the lab did not return to its base state after reverting layers:\n"
                + "\n".join(
                    difflib.unified_diff(
                        base.splitlines(), _normalise(now).splitlines(), "base", "now", lineterm=""
                    )
                )
            )


def _best_effort_undo(lab: Lab, steps: Sequence[Step]) -> None:
    facts = lab_facts(lab)
    for step in reversed(steps):
        for command in step.commands(facts, undo=True):
            _node(lab, step.node).exec(*command)


# Tables and chains linger once used (iptables-nft); only rules and addresses matter.
_STATE_SCRIPT = "iptables-save | grep '^-A ' || true; ip -br addr"


def _normalise(state: str) -> str:
    return "\n".join(line.strip() for line in state.strip().splitlines())


def base_state(lab: Lab) -> str:
    """The router's rules and addresses before any layer: read once per lab."""
    if "base_state" not in lab.memo:
        lab.memo["base_state"] = _normalise(lab.router.exec("/bin/sh", "-c", _STATE_SCRIPT).stdout)
    return str(lab.memo["base_state"])
