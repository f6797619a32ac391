"""What kube-proxy is told about the lab's one Service, and what both of its modes share."""

from __future__ import annotations

from dataclasses import dataclass

#: kube-proxy's --proxy-mode values the lab writes.
MODES = ("iptables", "nftables")


@dataclass(frozen=True)
class ServiceSpec:
    """What kube-proxy is told about the Service: its policy, affinity and endpoints, and the
    mode kube-proxy runs in."""

    policy: str  # "Cluster" or "Local" (externalTrafficPolicy)
    affinity: bool  # sessionAffinity: ClientIP
    endpoints: tuple[str, ...]  # "address:port", ready ones, in order
    mode: str = "iptables"  # kube-proxy's --proxy-mode


MASQ_MARK = "0x4000"  # kube-proxy's default --iptables-masquerade-bit 14


STICKY_SECONDS = 10800  # sessionAffinityConfig.clientIP.timeoutSeconds default
