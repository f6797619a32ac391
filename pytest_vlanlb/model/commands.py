"""The workshop's commands as data: the one place they are written (k8s_lb_ja.md Steps
1-5, and the corrected Step 2), as templates over a lab's facts ({public_if}, {vip}, ...).
The lab's layers apply them, grading's hints tell a student to type them, and the
grading tests build student-like labs from them."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from .topology import Role, Topology


def facts_for(topology: Topology, public_if: str, pod_if: str) -> dict[str, str]:
    """The values step templates may use: the service's, and the router's two legs."""
    service = topology.service
    return {
        "public_if": public_if,
        "pod_if": pod_if,
        "vip": str(service.vip),
        "port": str(service.port),
        "backend": str(service.backend_address),
        "backend_port": str(service.backend_port),
        "greeting": service.greeting,
        "port_hex": f"{service.backend_port:04X}",
    }


def render(template: str, facts: Mapping[str, str]) -> list[str]:
    """A one-line command template as words, each filled in on its own (a fact never splits
    into several words, whatever it holds)."""
    return [word.format_map(facts) for word in shlex.split(template)]


@dataclass(frozen=True)
class Rule:
    """One iptables rule on the router, inserted at the top or appended to its chain."""

    table: str
    chain: str
    spec: str  # the rule as the workshop writes it, e.g. "-i {public_if} -o {pod_if} -j DROP"
    insert: bool = False
    node: Role = Role.ROUTER
    leader_only: bool = False

    def command(self, action: str, facts: Mapping[str, str]) -> list[str]:
        table = ["-t", self.table] if self.table != "filter" else []  # as the workshop writes it
        return ["iptables", *table, action, self.chain, *render(self.spec, facts)]

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        return [self.command("-D" if undo else "-I" if self.insert else "-A", facts)]

    def settled(self, node: object, facts: Mapping[str, str], undo: bool) -> bool:
        return True

    def describe(self, facts: Mapping[str, str]) -> str:
        return shlex.join(self.command("-I" if self.insert else "-A", facts))


@dataclass(frozen=True)
class Address:
    """An address added to a node's interface (the VIP, as MetalLB's speaker does)."""

    interface: str  # a template such as {public_if}
    cidr: str
    node: Role = Role.ROUTER
    leader_only: bool = True  # an address lives on one router (MetalLB's leader)

    def command(self, action: str, facts: Mapping[str, str]) -> list[str]:
        return render(f"ip addr {action} {self.cidr} dev {self.interface}", facts)

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        return [self.command("del" if undo else "add", facts)]

    def settled(self, node: object, facts: Mapping[str, str], undo: bool) -> bool:
        return True

    def describe(self, facts: Mapping[str, str]) -> str:
        return shlex.join(self.command("add", facts))


#: The workshop's rules, one line each, as templates over the lab's facts.
DROP_DIRECT = "-i {public_if} -o {pod_if} -j DROP"


DROP_DIRECT_NOT_DNAT = "-i {public_if} -o {pod_if} -m conntrack ! --ctstate DNAT -j DROP"


DNAT_VIP = "-d {vip} -p tcp --dport {port} -j DNAT --to-destination {backend}:{backend_port}"


MASQUERADE_BACKEND = "-d {backend} -p tcp --dport {backend_port} -j MASQUERADE"


#: The VIP on the router's public leg (Step 3).
VIP_ADDRESS = Address("{public_if}", "{vip}/32")


#: Step 1 as the workshop types it on alpine. The suite's own server is WebServer (the same
#: answer without the loop's gap between connections); grading hints give this one.
WORKSHOP_SERVER = (
    "while true; do echo -e 'HTTP/1.1 200 OK\\n\\n{greeting}' | nc -l -p {backend_port}; done"
)


#: The alpine package that brings each tool the workshop, the lab and the grader run (the
#: one table: `apk add` in documents, the grader's hints, a user's node image).
ALPINE_PACKAGES = {
    "ip": "iproute2",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "ping": "iputils",
    "curl": "curl",
    "wget": "busybox",
    "awk": "busybox",
    "nc": "busybox-extras",
    "dig": "bind-tools",
}


def alpine_tools(package: str) -> tuple[str, ...]:
    """The tools the workshop uses that an alpine package brings (`apk add PKG`)."""
    return tuple(tool for tool, owner in ALPINE_PACKAGES.items() if owner == package)
