"""The layers: the workshop's steps (k8s_lb_ja.md Steps 1-5, and the corrected Step 2) made
of the commands model/commands.py writes, each with its Kubernetes counterpart."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ...errors import VlanlbError
from ...model.commands import (
    DNAT_VIP,
    DROP_DIRECT,
    DROP_DIRECT_NOT_DNAT,
    MASQUERADE_BACKEND,
    VIP_ADDRESS,
    Rule,
)
from ..build import Lab
from .changes import Change, lab_facts
from .engine import run_steps
from .webserver import WebServer


@dataclass(frozen=True)
class Layer:
    name: str
    title: str
    kubernetes: str
    steps: tuple[Change, ...] = field(default=())

    def apply(self, lab: Lab) -> None:
        run_steps(lab, self.steps, undo=False)

    def revert(self, lab: Lab) -> None:
        run_steps(lab, self.steps, undo=True)

    def describe(self, lab: Lab) -> list[str]:
        facts = lab_facts(lab)
        return [step.describe(facts) for step in self.steps]


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer("webserver", "Step 1: web server on the pod", "the Pod's container", (WebServer(),)),
        Layer(
            "firewall:workshop",
            "Step 2 as written: drop VLAN 10 -> VLAN 20",
            "NetworkPolicy (deny all ingress)",
            (Rule("filter", "FORWARD", DROP_DIRECT, insert=True),),
        ),
        Layer(
            "firewall:dnat-aware",
            "Step 2 corrected: drop direct traffic, not DNAT'ed",
            "NetworkPolicy + kube-proxy's KUBE-FORWARD accept",
            (Rule("filter", "FORWARD", DROP_DIRECT_NOT_DNAT, insert=True),),
        ),
        Layer("firewall:none", "no firewall", "no NetworkPolicy"),
        Layer(
            "vip",
            "Step 3: the VIP as a /32 on the router's public leg",
            "MetalLB speaker (L2 mode: answers ARP for the VIP)",
            (VIP_ADDRESS,),
        ),
        Layer(
            "dnat",
            "Step 4: DNAT VIP:port -> backend:port",
            "kube-proxy KUBE-SERVICES/KUBE-SEP",
            (Rule("nat", "PREROUTING", DNAT_VIP),),
        ),
        Layer(
            "snat",
            "Step 5: MASQUERADE toward the backend",
            "kube-proxy KUBE-POSTROUTING",
            (Rule("nat", "POSTROUTING", MASQUERADE_BACKEND),),
        ),
        # kube-proxy's own rules over all ready endpoints (layers/kube_proxy.py). They have
        # no steps of their own: the stack writes the rule set they describe together with
        # the endpoints, and rewrites it whenever either changes, as kube-proxy syncs.
        Layer(
            "service",
            "kube-proxy, externalTrafficPolicy Cluster: KUBE-SVC/SEP, masquerade, KUBE-FORWARD",
            "kube-proxy (iptables mode), Service type LoadBalancer",
        ),
        Layer(
            "service:local",
            "kube-proxy, externalTrafficPolicy Local: KUBE-SVL, the client's address kept",
            "kube-proxy (iptables mode), externalTrafficPolicy: Local",
        ),
        Layer(
            "service:nftables",
            "kube-proxy, nftables mode, externalTrafficPolicy Cluster: service-ips vmap, "
            "numgen over endpoint chains, masquerading",
            "kube-proxy (nftables mode), Service type LoadBalancer",
        ),
        Layer(
            "service:nftables:local",
            "kube-proxy, nftables mode, externalTrafficPolicy Local: local- chain, the "
            "client's address kept",
            "kube-proxy (nftables mode), externalTrafficPolicy: Local",
        ),
        Layer(
            "affinity",
            "kube-proxy sessionAffinity ClientIP: -m recent (iptables) or a dynamic set with a "
            "timeout (nftables) per endpoint",
            "Service sessionAffinity: ClientIP",
        ),
    )
}
FIREWALL_VARIANTS = ("workshop", "dnat-aware", "none")
#: The service layers: kube-proxy's mode and the Service's externalTrafficPolicy.
SERVICE_VARIANTS = {
    "service": ("iptables", "Cluster"),
    "service:local": ("iptables", "Local"),
    "service:nftables": ("nftables", "Cluster"),
    "service:nftables:local": ("nftables", "Local"),
}
#: The order the workshop applies them in; a stack is always applied in this order.
ORDER = ("webserver", "firewall", "vip", "dnat", "snat", "service", "affinity")


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
        raise VlanlbError(
            f"a layer appears twice in {list(names)} (one firewall, one service layer at most)"
        )
    return sorted(layers, key=lambda lay: ORDER.index(lay.name.split(":")[0]))
