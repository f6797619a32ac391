"""The rules kube-proxy's nftables mode writes for one LoadBalancer Service, as data.

Written after kube-proxy's `pkg/proxy/nftables/proxier.go` (setupNFTables, syncProxyRules and
writeServiceToEndpointRules), with its table, chain, set and map names and its comments, so
that `nft list table ip kube-proxy` of the lab can be put beside a real node's:

- one table, `ip kube-proxy`; base chains `filter-*` at priority dstnat - 10 (filtering sees
  the address before DNAT), `nat-prerouting`/`nat-output` at dstnat, `nat-postrouting` at
  srcnat;
- `services`: one verdict map, `service-ips`, keyed by `daddr . l4proto . dport`, sends the
  LoadBalancer IP to `external-<base>`, which marks Cluster traffic for masquerade
  (`mark-for-masquerade`) and goes to `service-<base>` (Cluster) or `local-<base>` (Local);
- the policy chain picks an endpoint with one `numgen random mod N vmap` (instead of
  iptables' ladder of `statistic` probabilities), after the affinity checks: one dynamic set
  per endpoint (`affinity-<base>`, `flags dynamic,timeout`) that `endpoint-<base>` updates
  with the client's address before its DNAT;
- with no endpoints, `no-endpoint-services` maps the IP to `goto reject-chain`, checked in
  the filter chains for new connections: refused at once;
- `masquerading` (nat-postrouting) masquerades what carries the mark, then clears it.

Two things differ from kube-proxy on purpose, for the lab: the rules that decide something
carry a `counter` (kube-proxy's carry none), so that a probe can tell which chain and numgen
pick took its packets; and a rewrite replaces the whole table in one transaction (kube-proxy
flushes and refills it), which forgets the affinity sets' entries.

There is no `KUBE-FORWARD` counterpart: an `accept` in this table does not stop a packet
from meeting a DROP in another table at a later priority (iptables' filter FORWARD, say),
so nftables mode cannot let Service traffic past a deny-all firewall as iptables mode does.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

# kube-proxy's settings, the same in both modes: one definition.
from .spec import MASQ_MARK, STICKY_SECONDS

if TYPE_CHECKING:
    from .spec import ServiceSpec

TABLE = "kube-proxy"

DSTNAT, SRCNAT = -100, 100  # the priorities nft calls dstnat and srcnat
#: (name, type, hook, priority), setupNFTables' base chains. Numbers, as knftables writes
#: them: nft before 1.0.7 takes the name dstnat at the prerouting hook only.
BASE_CHAINS = (
    ("filter-prerouting", "filter", "prerouting", DSTNAT - 10),
    ("filter-input", "filter", "input", DSTNAT - 10),
    ("filter-forward", "filter", "forward", DSTNAT - 10),
    ("filter-output", "filter", "output", DSTNAT - 10),
    ("filter-output-post-dnat", "filter", "output", DSTNAT + 10),
    ("nat-prerouting", "nat", "prerouting", DSTNAT),
    ("nat-output", "nat", "output", DSTNAT),
    ("nat-postrouting", "nat", "postrouting", SRCNAT),
)
#: (from base chain, condition, to chain), setupNFTables' jumps into the regular chains.
JUMPS = (
    ("filter-input", "ct state new", "nodeport-endpoints-check"),
    ("filter-input", "ct state new", "service-endpoints-check"),
    ("filter-forward", "ct state new", "service-endpoints-check"),
    ("filter-output", "ct state new", "service-endpoints-check"),
    ("filter-prerouting", "ct state new", "firewall-check"),
    ("filter-output", "ct state new", "firewall-check"),
    ("nat-output", "", "services"),
    ("nat-prerouting", "", "services"),
    ("nat-postrouting", "", "masquerading"),
    ("filter-forward", "ct state new", "cluster-ips-check"),
    ("filter-output-post-dnat", "ct state new", "cluster-ips-check"),
)
DISPATCH_KEY = "ip daddr . meta l4proto . th dport"
ADDRESS_PORT_MAP = "ipv4_addr . inet_proto . inet_service : verdict"
PORT_MAP = "inet_proto . inet_service : verdict"


def _base(name: str) -> str:
    """hashAndTruncate: 8 characters of base32(sha256(name)), a dash, the name."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"{base64.b32encode(digest).decode()[:8]}-{name}"


def _parts(service: str) -> tuple[str, str, str]:
    """ "namespace/name:port" -> (namespace, name, port name)."""
    namespaced, _, port = service.rpartition(":")
    namespace, _, name = namespaced.partition("/")
    return namespace, name, port


def chain_names(service: str, endpoints: Sequence[str]) -> dict[str, str]:
    """service-/local-/external- for the service port, endpoint- and affinity- per endpoint
    ("address:port"), as kube-proxy names them (`service` is "namespace/name:port")."""
    namespace, name, port = _parts(service)
    base = _base(f"{namespace}/{name}/tcp/{port}")
    names = {"svc": f"service-{base}", "svl": f"local-{base}", "ext": f"external-{base}"}
    for endpoint in endpoints:
        address, _, endpoint_port = endpoint.rpartition(":")
        endpoint_base = _base(f"{namespace}/{name}/tcp/{port}__{address}/{endpoint_port}")
        names[endpoint] = f"endpoint-{endpoint_base}"
        names[f"affinity {endpoint}"] = f"affinity-{endpoint_base}"
    return names


def _rule(chain: str, rule: str, comment: str = "") -> str:
    tail = f' comment "{comment}"' if comment else ""
    return f"add rule ip {TABLE} {chain} {rule}{tail}"


def _setup() -> list[str]:
    """setupNFTables: the table, its base chains and jumps, masquerading, the maps."""
    lines = [f'add table ip {TABLE} {{ comment "rules for kube-proxy" ; }}']
    for name, kind, hook, priority in BASE_CHAINS:
        lines.append(
            f"add chain ip {TABLE} {name} {{ type {kind} hook {hook} priority {priority} ; }}"
        )
    regular = dict.fromkeys(to for _, _, to in JUMPS)
    regular.update(dict.fromkeys(("services", "cluster-ips-check", "masquerading")))
    regular["mark-for-masquerade"] = None
    lines += [f"add chain ip {TABLE} {chain}" for chain in regular]
    lines += [_rule(source, f"{condition} jump {to}".strip()) for source, condition, to in JUMPS]
    lines += [
        _rule("mark-for-masquerade", f"mark set mark or {MASQ_MARK}"),
        _rule("masquerading", f"mark and {MASQ_MARK} == 0 return"),
        _rule("masquerading", f"mark set mark xor {MASQ_MARK}"),
        _rule("masquerading", "counter masquerade fully-random"),
        f'add set ip {TABLE} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
        _rule(
            "cluster-ips-check",
            "ip daddr @cluster-ips counter reject",
            "Reject traffic to invalid ports of ClusterIPs",
        ),
        f"add map ip {TABLE} no-endpoint-services {{ type {ADDRESS_PORT_MAP} ; "
        'comment "vmap to drop or reject packets to services with no endpoints" ; }',
        f"add map ip {TABLE} no-endpoint-nodeports {{ type {PORT_MAP} ; "
        'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }',
        f"add chain ip {TABLE} reject-chain "
        '{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }',
        _rule("reject-chain", "counter reject"),
        _rule("service-endpoints-check", f"{DISPATCH_KEY} vmap @no-endpoint-services"),
        _rule(
            "nodeport-endpoints-check",
            "ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports",
        ),
        f"add map ip {TABLE} firewall-ips {{ type {ADDRESS_PORT_MAP} ; "
        'comment "destinations that are subject to LoadBalancerSourceRanges" ; }',
        _rule("firewall-check", f"{DISPATCH_KEY} vmap @firewall-ips"),
        f"add map ip {TABLE} service-ips {{ type {ADDRESS_PORT_MAP} ; "
        'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }',
        f"add map ip {TABLE} service-nodeports "
        f'{{ type {PORT_MAP} ; comment "NodePort traffic" ; }}',
        _rule("services", f"{DISPATCH_KEY} vmap @service-ips"),
        _rule(
            "services",
            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
            "vmap @service-nodeports",
        ),
    ]
    return lines


def balance_rule(
    names: dict[str, str], endpoints: Sequence[str], modulus: int | None = None
) -> str:
    """writeServiceToEndpointRules' load-balancing rule: `numgen random mod N vmap` over the
    endpoint chains (N = the number of endpoints unless `modulus` says otherwise)."""
    elements = ", ".join(f"{i} : goto {names[e]}" for i, e in enumerate(endpoints))
    mod = len(endpoints) if modulus is None else modulus
    return f"counter numgen random mod {mod} vmap {{ {elements} }}"


def _policy_rules(chain: str, names: dict[str, str], spec: ServiceSpec) -> list[str]:
    """writeServiceToEndpointRules: affinity checks first, then one numgen verdict map."""
    rules = []
    if spec.affinity:
        for endpoint in spec.endpoints:
            affinity = names[f"affinity {endpoint}"]
            rules.append(_rule(chain, f"ip saddr @{affinity} counter goto {names[endpoint]}"))
    rules.append(_rule(chain, balance_rule(names, spec.endpoints)))
    return rules


def ruleset_text(service: str, vip: str, port: str, pod_subnet: str, spec: ServiceSpec) -> str:
    """`nft -f` input that replaces table ip kube-proxy, whole, in one transaction."""
    lines = [
        f"add table ip {TABLE}",  # so that the delete below finds it on a first sync
        f"delete table ip {TABLE}",
        *_setup(),
    ]
    names = chain_names(service, spec.endpoints)
    key = f"{vip} . tcp . {port}"
    if not spec.endpoints:
        lines.append(
            f"add element ip {TABLE} no-endpoint-services "
            f'{{ {key} comment "{service}" : goto reject-chain }}'
        )
        return "\n".join(lines) + "\n"
    svc, svl, ext = names["svc"], names["svl"], names["ext"]
    chains = [svc, ext] + ([svl] if spec.policy == "Local" else [])
    chains += [names[e] for e in spec.endpoints]
    lines += [f"add chain ip {TABLE} {chain}" for chain in chains]
    if spec.affinity:
        lines += [
            f"add set ip {TABLE} {names[f'affinity {e}']} "
            f"{{ type ipv4_addr ; flags dynamic,timeout ; timeout {STICKY_SECONDS}s ; }}"
            for e in spec.endpoints
        ]
    lines.append(f"add element ip {TABLE} service-ips {{ {key} : goto {ext} }}")
    if spec.policy == "Cluster":
        lines += [_rule(ext, "jump mark-for-masquerade"), _rule(ext, f"goto {svc}")]
    else:
        lines += [
            _rule(ext, f"ip saddr {pod_subnet} goto {svc}", "short-circuit pod traffic"),
            _rule(ext, "fib saddr type local jump mark-for-masquerade", "masquerade local traffic"),
            _rule(ext, f"fib saddr type local goto {svc}", "short-circuit local traffic"),
            _rule(ext, f"goto {svl}"),
        ]
        lines += _policy_rules(svl, names, spec)
    lines += _policy_rules(svc, names, spec)
    for endpoint in spec.endpoints:
        chain, address = names[endpoint], endpoint.rpartition(":")[0]
        lines.append(_rule(chain, f"ip saddr {address} jump mark-for-masquerade"))
        if spec.affinity:
            lines.append(_rule(chain, f"update @{names[f'affinity {endpoint}']} {{ ip saddr }}"))
        lines.append(_rule(chain, f"meta l4proto tcp counter dnat to {endpoint}"))
    return "\n".join(lines) + "\n"
