"""Each router's base state (rules and addresses), read once per lab and checked after every
revert, so that no test inherits another's changes."""

from __future__ import annotations

from ..lab import Lab

# Tables and chains linger once used (iptables-nft); only rules and addresses matter.
STATE_SCRIPT = "iptables-save | grep '^-A ' || true; ip -br addr"


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
