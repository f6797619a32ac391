"""The rules kube-proxy's iptables mode writes for one LoadBalancer Service, as data.

Written after kube-proxy's `pkg/proxy/iptables/proxier.go` (syncProxyRules and
writeServiceToEndpointRules), with its chain names, comments and mark, so that a learner can
put `iptables-save` of the lab beside a real node's:

- nat: PREROUTING/OUTPUT -> KUBE-SERVICES -> KUBE-EXT-<hash> (the LoadBalancer IP) ->
  KUBE-SVC-<hash> (externalTrafficPolicy Cluster) or KUBE-SVL-<hash> (Local) -> one
  KUBE-SEP-<hash> per endpoint, picked with `-m statistic --mode random --probability
  1/(n-i)`, the last rule unconditional; KUBE-SEP DNATs to the pod. Cluster traffic is
  marked by KUBE-MARK-MASQ and masqueraded in KUBE-POSTROUTING.
- sessionAffinity ClientIP: `-m recent --rcheck --seconds N --reap` rules first in the
  policy chain, and `-m recent --set` on each KUBE-SEP's DNAT.
- filter: KUBE-FORWARD accepts marked and RELATED,ESTABLISHED traffic (jumped to first in
  FORWARD, so a deny-all firewall below it does not eat Service traffic); with no endpoints,
  KUBE-EXTERNAL-SERVICES rejects the LoadBalancer IP ("has no endpoints"), so a client is
  refused at once instead of timing out.

Chain hashes are computed as kube-proxy computes them: base32(sha256(...)) cut to 16.
This lab has one node (the router), so every endpoint counts as local for Local policy.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .spec import MASQ_MARK, STICKY_SECONDS

if TYPE_CHECKING:
    from .spec import ServiceSpec


def _hash(*parts: str) -> str:
    digest = hashlib.sha256("".join(parts).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def chain_names(service: str, endpoints: Sequence[str]) -> dict[str, str]:
    """KUBE-SVC/SVL/EXT for the service port and KUBE-SEP per endpoint, as kube-proxy names
    them (`service` is "namespace/name:port")."""
    port_hash = _hash(service, "tcp")
    names = {
        "svc": f"KUBE-SVC-{port_hash}",
        "svl": f"KUBE-SVL-{port_hash}",
        "ext": f"KUBE-EXT-{port_hash}",
    }
    for endpoint in endpoints:
        names[endpoint] = f"KUBE-SEP-{_hash(service, 'tcp', endpoint)}"
    return names


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


# The jumps into kube-proxy's chains (prepended, as kube-proxy's EnsureRule(Prepend)).
NAT_JUMPS = (
    ("PREROUTING", f"{_comment('kubernetes service portals')} -j KUBE-SERVICES"),
    ("OUTPUT", f"{_comment('kubernetes service portals')} -j KUBE-SERVICES"),
    ("POSTROUTING", f"{_comment('kubernetes postrouting rules')} -j KUBE-POSTROUTING"),
)
FILTER_JUMPS = (
    (
        "INPUT",
        "-m conntrack --ctstate NEW "
        f"{_comment('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES",
    ),
    (
        "FORWARD",
        "-m conntrack --ctstate NEW "
        f"{_comment('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES",
    ),
    ("FORWARD", f"{_comment('kubernetes forwarding rules')} -j KUBE-FORWARD"),
)


def _nat_chains(names: Mapping[str, str], spec: ServiceSpec) -> list[str]:
    chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    if spec.endpoints:
        chains += [names["ext"], names["svc"]]
        if spec.policy == "Local":
            chains.append(names["svl"])
        chains += [names[e] for e in spec.endpoints]
    return chains


def _policy_rules(
    chain: str, service: str, names: Mapping[str, str], spec: ServiceSpec
) -> list[str]:
    """writeServiceToEndpointRules: affinity checks first, then the probability ladder."""
    rules = []
    if spec.affinity:
        for endpoint in spec.endpoints:
            sep = names[endpoint]
            rules.append(
                f"-A {chain} {_comment(f'{service} -> {endpoint}')} -m recent --name {sep} "
                f"--mask 255.255.255.255 --rsource --rcheck --seconds {STICKY_SECONDS} --reap "
                f"-j {sep}"
            )
    n = len(spec.endpoints)
    for i, endpoint in enumerate(spec.endpoints):
        chance = (
            f"-m statistic --mode random --probability {1.0 / (n - i):0.10f} " if i < n - 1 else ""
        )
        rules.append(
            f"-A {chain} {_comment(f'{service} -> {endpoint}')} {chance}-j {names[endpoint]}"
        )
    return rules


def restore_text(service: str, vip: str, port: str, pod_subnet: str, spec: ServiceSpec) -> str:
    """iptables-restore --noflush input that installs the Service's rules."""
    names = chain_names(service, spec.endpoints)
    nat = [f":{c} - [0:0]" for c in _nat_chains(names, spec)]
    nat += [f"-I {chain} {rule}" for chain, rule in NAT_JUMPS]
    nat += [
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        f"-A KUBE-POSTROUTING {_comment('kubernetes service traffic requiring SNAT')} "
        "-j MASQUERADE",
    ]
    filter_ = [":KUBE-FORWARD - [0:0]", ":KUBE-EXTERNAL-SERVICES - [0:0]"]
    filter_ += [f"-I {chain} {rule}" for chain, rule in FILTER_JUMPS]
    filter_ += [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        f"-A KUBE-FORWARD {_comment('kubernetes forwarding rules')} "
        f"-m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
        f"-A KUBE-FORWARD {_comment('kubernetes forwarding conntrack rule')} "
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    if not spec.endpoints:
        filter_.append(
            f"-A KUBE-EXTERNAL-SERVICES -d {vip}/32 -p tcp "
            f"{_comment(f'{service} has no endpoints')} -m tcp --dport {port} "
            "-j REJECT --reject-with icmp-port-unreachable"
        )
        return _tables(nat, filter_)
    ext, svc, svl = names["ext"], names["svc"], names["svl"]
    nat.append(
        f"-A KUBE-SERVICES -d {vip}/32 -p tcp {_comment(f'{service} loadbalancer IP')} "
        f"-m tcp --dport {port} -j {ext}"
    )
    if spec.policy == "Cluster":
        nat.append(
            f"-A {ext} {_comment(f'masquerade traffic for {service} external destinations')} "
            "-j KUBE-MARK-MASQ"
        )
        nat.append(f"-A {ext} -j {svc}")
    else:
        nat += [
            f"-A {ext} {_comment(f'pod traffic for {service} external destinations')} "
            f"-s {pod_subnet} -j {svc}",
            f"-A {ext} {_comment(f'masquerade LOCAL traffic for {service} external destinations')} "
            "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
            f"-A {ext} {_comment(f'route LOCAL traffic for {service} external destinations')} "
            f"-m addrtype --src-type LOCAL -j {svc}",
            f"-A {ext} -j {svl}",
        ]
        nat += _policy_rules(svl, service, names, spec)
    nat += _policy_rules(svc, service, names, spec)
    for endpoint in spec.endpoints:
        sep, address = names[endpoint], endpoint.split(":")[0]
        recent = (
            f"-m recent --name {sep} --mask 255.255.255.255 --rsource --set "
            if spec.affinity
            else ""
        )
        nat += [
            f"-A {sep} -s {address}/32 {_comment(service)} -j KUBE-MARK-MASQ",
            f"-A {sep} -p tcp {_comment(service)} {recent}-m tcp "
            f"-j DNAT --to-destination {endpoint}",
        ]
    return _tables(nat, filter_)


def removal_text(service: str, spec: ServiceSpec) -> str:
    """iptables-restore --noflush input that removes what restore_text installed."""
    names = chain_names(service, spec.endpoints)
    chains = _nat_chains(names, spec)
    nat = [f"-D {chain} {rule}" for chain, rule in NAT_JUMPS]
    nat += [f":{c} - [0:0]" for c in chains] + [f"-X {c}" for c in chains]
    filter_ = [f"-D {chain} {rule}" for chain, rule in FILTER_JUMPS]
    filter_ += [":KUBE-FORWARD - [0:0]", ":KUBE-EXTERNAL-SERVICES - [0:0]"]
    filter_ += ["-X KUBE-FORWARD", "-X KUBE-EXTERNAL-SERVICES"]
    return _tables(nat, filter_)


def _tables(nat: list[str], filter_: list[str]) -> str:
    return "\n".join(["*nat", *nat, "COMMIT", "*filter", *filter_, "COMMIT", ""])
