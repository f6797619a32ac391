"""The layers applied to one lab for one test, reverted in reverse order afterwards."""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import LabBuildError, VlanlbError
from ..lab import Lab
from ..node import Node
from ..topology import Role
from .catalog import Layer, ordered
from .engine import best_effort_undo, run_steps
from .kube_proxy import ServiceSpec, removal_text, restore_text
from .state import base_state, normalise
from .steps import Change, lab_facts


@dataclass(frozen=True)
class KubeProxyRules:
    """kube-proxy's rule set for a ServiceSpec, written on every router (a step)."""

    spec: ServiceSpec
    node: Role = Role.ROUTER
    leader_only: bool = False

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        service = facts["service_name"]
        if undo:
            text = removal_text(service, self.spec)
        else:
            text = restore_text(
                service, facts["vip"], facts["port"], facts["pod_subnet"], self.spec
            )
        return [["sh", "-c", f"printf '%s' {shlex.quote(text)} | iptables-restore --noflush"]]

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
        return True

    def describe(self, facts: Mapping[str, str]) -> str:
        return f"kube-proxy rules {self.spec}"


@dataclass
class LayerStack:
    """Layers applied to a lab, reverted in reverse order, then checked back to base state.

    `service`, `service:local` and `affinity` describe kube-proxy's rule set; together with
    the ready endpoints (`set_endpoints`) it is written on every router and rewritten when
    either changes."""

    lab: Lab
    applied: list[Layer] = field(default_factory=list)
    kube_proxy: KubeProxyRules | None = None

    def apply(self, *names: str) -> LayerStack:
        ordered([*self.names(), *names])  # rejects a second firewall, a layer twice
        new = ordered(names)
        if any(lay.name == "affinity" for lay in new) and not any(
            n.startswith("service") for n in [*self.names(), *names]
        ):
            raise VlanlbError("layer affinity needs a service layer (service or service:local)")
        steps = [step for lay in new for step in lay.steps]
        try:
            run_steps(self.lab, steps, undo=False)
        except BaseException:
            best_effort_undo(self.lab, steps)
            raise
        self.applied.extend(new)
        self._sync()
        return self

    def names(self) -> list[str]:
        return [lay.name for lay in self.applied]

    def set_endpoints(self, nodes: Sequence[str]) -> None:
        """The backends kube-proxy sends to (the ready ones), by node name; [] for none.
        Rewrites the rules at once, as kube-proxy does on an EndpointSlice change."""
        known = [b.node for b in self.lab.topology.service.backends]
        unknown = [n for n in nodes if n not in known]
        if unknown:
            raise VlanlbError(f"unknown endpoints {unknown}; the Service's backends: {known}")
        self.lab.memo["endpoints"] = [n for n in known if n in nodes]
        self._sync()

    def endpoints(self) -> list[str]:
        return list(
            self.lab.memo.get("endpoints", [b.node for b in self.lab.topology.service.backends])
        )

    def _wanted(self) -> KubeProxyRules | None:
        names = self.names()
        policy = "Local" if "service:local" in names else "Cluster" if "service" in names else None
        if policy is None:
            return None
        ready = lab_facts(self.lab)["endpoints"]
        spec = ServiceSpec(policy, "affinity" in names, tuple(filter(None, ready.split(","))))
        return KubeProxyRules(spec)

    def _sync(self) -> None:
        wanted = self._wanted()
        if wanted == self.kube_proxy:
            return
        if self.kube_proxy is not None:
            run_steps(self.lab, [self.kube_proxy], undo=True)
            self.kube_proxy = None
        if wanted is not None:
            run_steps(self.lab, [wanted], undo=False)
            self.kube_proxy = wanted

    def revert(self) -> None:
        steps: list[Change] = [step for lay in self.applied for step in lay.steps]
        if self.kube_proxy is not None:
            steps.append(self.kube_proxy)
        self.applied.clear()
        self.kube_proxy = None
        self.lab.memo.pop("endpoints", None)
        states = run_steps(self.lab, steps, undo=True, report_state=True)
        for node in self.lab.nodes.values():
            node.forget_unresolved_neighbours()
        for router, base in base_state(self.lab).items():
            now = normalise(states[router])
            if now != base:
                diff = difflib.unified_diff(
                    base.splitlines(), now.splitlines(), "base", "now", lineterm=""
                )
                raise LabBuildError(
                    f"router {router} did not return to its base state after reverting "
                    "layers:\n" + "\n".join(diff)
                )
