"""The layers applied to one lab for one test, reverted in reverse order afterwards."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...errors import LayerError, VlanlbError
from ...observation.probes import run_together
from ..build import Lab
from .catalog import SERVICE_VARIANTS, Layer, ordered
from .changes import Change, lab_facts
from .engine import best_effort_undo, run_steps
from .kube_proxy.rules import KubeProxyRules
from .kube_proxy.spec import ServiceSpec
from .state import base_state, normalise


@dataclass
class LayerStack:
    """Layers applied to a lab, reverted in reverse order, then checked back to base state.

    The service layers (`service`, `service:local`, `service:nftables`,
    `service:nftables:local`) and `affinity` describe kube-proxy's rule set; together with
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
            raise VlanlbError(
                f"layer affinity needs a service layer ({', '.join(SERVICE_VARIANTS)})"
            )
        steps = [step for lay in new for step in lay.steps]
        base_state(self.lab)  # read before the lab's first change, not after its first revert
        try:
            run_steps(self.lab, steps, undo=False)
        except BaseException:
            best_effort_undo(self.lab, steps)
            raise
        self.applied.extend(new)
        try:
            self._sync()
        except BaseException:  # kube-proxy's rules refused (no nft, say): none of it stays
            self.applied = self.applied[: len(self.applied) - len(new)]
            best_effort_undo(self.lab, steps)
            raise
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
        chosen = [SERVICE_VARIANTS[n] for n in names if n in SERVICE_VARIANTS]
        if not chosen:
            return None
        mode, policy = chosen[0]
        ready = tuple(filter(None, lab_facts(self.lab)["endpoints"].split(",")))
        return KubeProxyRules(ServiceSpec(policy, "affinity" in names, ready, mode))

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
        based = {  # the addresses the base lab owns: their entries stay right
            str(i.address)
            for spec in self.lab.topology.nodes.values()
            for i in spec.interfaces
            if i.address is not None
        }
        run_together(
            *[lambda n=n: n.forget_unresolved_neighbours(based) for n in self.lab.nodes.values()]
        )
        for router, base in base_state(self.lab).items():
            now = normalise(states[router])
            if now != base:
                diff = difflib.unified_diff(
                    base.splitlines(), now.splitlines(), "base", "now", lineterm=""
                )
                raise LayerError(
                    f"router {router} did not return to its base state after reverting "
                    "layers:\n" + "\n".join(diff)
                )
