"""The commands a hint tells the student to type: the layer catalog's commands, rendered with
the student's own container and interface names, each word shell-quoted where it needs it
(names come from the student's lab and may hold anything)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..model.commands import (
    ALPINE_PACKAGES,
    DNAT_VIP,
    DROP_DIRECT,
    DROP_DIRECT_NOT_DNAT,
    MASQUERADE_BACKEND,
    VIP_ADDRESS,
    WORKSHOP_SERVER,
    Rule,
    facts_for,
    render,
)
from ..model.topology import Role
from .student import StudentLab

_DOUBLE_QUOTE_UNSAFE = ('"', "$", "`")


def shell_word(word: str) -> str:
    """`word` as a shell reads it back unchanged: bare when it can be, in double quotes as the
    workshop writes `sh -c "..."` where that is exact, else in single quotes."""
    if word == "!" or shlex.quote(word) == word:
        return word
    if not any(c in word for c in _DOUBLE_QUOTE_UNSAFE) and not word.endswith("\\"):
        return f'"{word}"'
    return shlex.quote(word)


def shell_line(words: Sequence[str]) -> str:
    return " ".join(shell_word(w) for w in words)


class Hints:
    """The workshop's commands for one student's lab."""

    def __init__(self, lab: StudentLab) -> None:
        self.lab = lab
        topology, service = lab.topology, lab.topology.service
        self.public_if = lab.router_leg_toward(service.vip) or "eth1"
        self.pod_if = lab.router_leg_toward(service.backend_address) or "eth2"
        self.public_vlan = topology.segments[topology.segment_of(service.vip)].vlan
        self.pod_vlan = topology.segments[topology.segment_of(service.backend_address)].vlan
        self.facts = facts_for(topology, self.public_if, self.pod_if)

    def on(self, role: Role, words: Sequence[str], *, detach: bool = False) -> str:
        """`podman exec CONTAINER WORDS...` for the student's container playing `role`."""
        flags = ["-d"] if detach else []
        return shell_line(["podman", "exec", *flags, self.lab.container(role), *words])

    def install(self, tool: str) -> str:
        role = {"curl": Role.CLIENT, "nc": Role.POD, "iptables": Role.ROUTER}[tool]
        return self.on(role, ["apk", "add", "--no-cache", ALPINE_PACKAGES[tool]])

    def _rule(self, table: str, chain: str, spec: str, action: str) -> str:
        return self.on(Role.ROUTER, Rule(table, chain, spec).command(action, self.facts))

    def firewall(self) -> str:
        """Step 2, corrected so that it spares DNAT'ed traffic."""
        return self._rule("filter", "FORWARD", DROP_DIRECT_NOT_DNAT, "-I")

    def replace_firewall(self) -> str:
        """Step 2 as written, removed, and the corrected rule in its place."""
        written = self._rule("filter", "FORWARD", DROP_DIRECT, "-D")
        return f"{written}; {self.firewall()}"

    def add_vip(self) -> str:
        return self.on(Role.ROUTER, VIP_ADDRESS.command("add", self.facts))

    def remove_vip_from(self, interface: str) -> str:
        return self.on(
            Role.ROUTER, VIP_ADDRESS.command("del", {**self.facts, "public_if": interface})
        )

    def dnat(self) -> str:
        return self._rule("nat", "PREROUTING", DNAT_VIP, "-A")

    def dnat_match(self) -> str:
        """What a's request must match: Step 4's rule up to its target."""
        spec = render(DNAT_VIP, self.facts)
        return " ".join(spec[: spec.index("-j")])

    def masquerade(self) -> str:
        return self._rule("nat", "POSTROUTING", MASQUERADE_BACKEND, "-A")

    def start_server(self) -> str:
        loop = WORKSHOP_SERVER.format_map(self.facts)
        return self.on(Role.POD, ["sh", "-c", loop], detach=True)
