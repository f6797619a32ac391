"""Each router's base state (rules and addresses), read once per lab and checked after every
revert, so that no test inherits another's changes."""

from __future__ import annotations

from ...observation.counters import OURS, XTABLES_FAMILIES, XTABLES_NAMES
from ..build import Lab

#: Rules, user-defined chains, nft tables of anyone but iptables-nft (kube-proxy's nftables
#: mode writes `ip kube-proxy`), and addresses. iptables-nft's own tables and built-in chains
#: linger once used, so they are left out; their rules are in iptables-save's lines. So are
#: our own (ARP's counting stays once written: observation/arp.py).
XTABLES = (
    f"^table ({'|'.join(sorted(XTABLES_FAMILIES))}) ({'|'.join(sorted(XTABLES_NAMES))})$"
    f"|^table [a-z0-9]+ {OURS}"
)
STATE_SCRIPT = (
    "iptables-save | grep -E '^-A |^:[^ ]+ - ' || true; "
    f"if command -v nft >/dev/null; then nft list tables | grep -vE '{XTABLES}' || true; fi; "
    "ip -br addr"
)


def normalise(state: str) -> str:
    return "\n".join(line.strip() for line in state.strip().splitlines())


def base_state(lab: Lab) -> dict[str, str]:
    """Each router's rules and addresses before any layer: read once per lab."""
    if "base_state" not in lab.memo:
        lab.memo["base_state"] = {
            router.name: normalise(router.exec("/bin/sh", "-c", STATE_SCRIPT).stdout)
            for router in lab.routers
        }
    return dict(lab.memo["base_state"])
