"""Finding podman objects by their exact name.

podman's own lookups (`containers.get("a")`, `networks.get(...)`, `podman inspect a`) also
match ID prefixes: with no container named `a`, they return whichever container's ID starts
with `a`. Wherever a name matters, we filter by name and then compare it exactly.
"""

from __future__ import annotations

import re
from typing import Any

import podman
from podman.errors import NotFound


def container_named(client: podman.PodmanClient, name: str) -> Any:
    """The container called exactly `name` (full object), or raise NotFound."""
    pattern = f"^{re.escape(name)}$"
    for listed in client.containers.list(all=True, filters={"name": pattern}):
        if listed.name == name:
            return client.containers.get(listed.id)  # by full ID: a complete object
    raise NotFound(f"no container named {name!r}")


def network_named(client: podman.PodmanClient, name: str) -> Any:
    """The network called exactly `name`, or raise NotFound."""
    pattern = f"^{re.escape(name)}$"
    for network in client.networks.list(filters={"name": pattern}):
        if network.name == name:
            return network
    raise NotFound(f"no network named {name!r}")
