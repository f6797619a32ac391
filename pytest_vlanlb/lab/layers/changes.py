"""Kinds of change a layer is made of (the protocol; the rule and the address are
model/commands.py's), and the running lab's facts their templates are rendered with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ...model.commands import facts_for
from ...model.topology import Role
from ..build import Lab
from ..node import Node


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
