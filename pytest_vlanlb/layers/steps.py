"""Kinds of step a layer is made of, and the lab facts their templates are rendered with."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..lab import Lab
from ..node import Node
from ..topology import Role, Topology


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


def lab_facts(lab: Lab, node: Node | None = None) -> dict[str, str]:
    """The template values for a running lab as seen by `node` (default: the first router):
    a router's own interface names, a pod's own address and greeting, and the endpoints."""
    topology, service = lab.topology, lab.topology.service
    router = node if node is not None and node.spec.role is Role.ROUTER else lab.router
    public = lab.router_interface(topology.segment_of(service.vip), router)
    pods = lab.router_interface(topology.segment_of(service.backend_address), router)
    facts = facts_for(topology, public, pods)
    if node is not None and node.spec.role is Role.POD:
        backend = service.backend(node.name)
        facts.update(
            backend=str(backend.address),
            backend_port=str(backend.port),
            greeting=backend.greeting,
            port_hex=f"{backend.port:04X}",
        )
    ready = lab.memo.get("endpoints", [b.node for b in service.backends])
    facts["endpoints"] = ",".join(
        f"{b.address}:{b.port}" for b in service.backends if b.node in ready
    )
    facts["pod_subnet"] = str(
        topology.segments[topology.segment_of(service.backend_address)].subnet
    )
    facts["service_name"] = f"default/{topology.name}:http"
    return facts


def render(template: str, facts: Mapping[str, str]) -> list[str]:
    """A one-line command template as words, each filled in on its own (a fact never splits
    into several words, whatever it holds)."""
    return [word.format_map(facts) for word in shlex.split(template)]


class Change(Protocol):
    """One change on the nodes of one role: the commands that make it and undo it.

    It acts on every node of that role (every router, as kube-proxy runs on every node;
    every backend pod), unless `leader_only` (the VIP: one router holds it)."""

    @property
    def node(self) -> Role: ...  # which nodes it acts on

    @property
    def leader_only(self) -> bool: ...

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]: ...
    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool: ...
    def describe(self, facts: Mapping[str, str]) -> str: ...


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

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
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

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
        return True

    def describe(self, facts: Mapping[str, str]) -> str:
        return shlex.join(self.command("add", facts))
