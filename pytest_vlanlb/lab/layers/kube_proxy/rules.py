"""kube-proxy for the lab's one Service: what it is told (ServiceSpec) and the step that
writes its rules on every router, in either of its modes.

The rule sets themselves are data in `iptables` (after
`pkg/proxy/iptables/proxier.go`) and `nftables` (after
`pkg/proxy/nftables/proxier.go`). The step writes the whole set in one command per router
(`iptables-restore --noflush` or `nft -f`), as kube-proxy's sync does, and the stack rewrites
it whenever the layers or the ready endpoints change.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from ....model.topology import Role
from ...node import Node
from . import iptables, nftables
from .spec import ServiceSpec

#: Said when the router has no `nft`: the fix, not just the failure.
NO_NFT = (
    "kube-proxy's nftables mode needs `nft` on the router: the default node image has it; "
    "add the nftables package to your --vlanlb-image"
)


@dataclass(frozen=True)
class KubeProxyRules:
    """kube-proxy's rule set for a ServiceSpec, written on every router (a step)."""

    spec: ServiceSpec
    node: Role = Role.ROUTER
    leader_only: bool = False

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        service, spec = facts["service_name"], self.spec
        if spec.mode == "nftables":
            if undo:
                return [["nft", "delete", "table", "ip", nftables.TABLE]]
            text = nftables.ruleset_text(
                service, facts["vip"], facts["port"], facts["pod_subnet"], spec
            )
            script = (
                f"command -v nft >/dev/null || {{ echo {shlex.quote(NO_NFT)} >&2; exit 127; }}; "
                f"printf '%s' {shlex.quote(text)} | nft -f -"
            )
            return [["sh", "-c", script]]
        if undo:
            text = iptables.removal_text(service, spec)
        else:
            text = iptables.restore_text(
                service, facts["vip"], facts["port"], facts["pod_subnet"], spec
            )
        return [["sh", "-c", f"printf '%s' {shlex.quote(text)} | iptables-restore --noflush"]]

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
        return True  # one atomic restore/transaction: in force when the command returns

    def describe(self, facts: Mapping[str, str]) -> str:
        return f"kube-proxy rules {self.spec}"
