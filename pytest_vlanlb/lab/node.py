"""One lab node: its podman container, commands run in it, and a testinfra host for it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Collection
from functools import cached_property
from typing import Any

import testinfra.host
from podman.domain.containers import Container as PodmanContainer
from testinfra.backend import base as testinfra_base

from ..errors import CommandError
from ..model.topology import NodeSpec
from ..podman.container import Container


class Node(Container):
    """A running container of the lab, addressed by its topology name, with what only the
    lab's own containers allow: a testinfra host, and housekeeping in its network namespace
    from the host (local and root only)."""

    def __init__(self, spec: NodeSpec, container: PodmanContainer) -> None:
        super().__init__(container)
        self.spec = spec
        self._pid: int | None = None

    def __repr__(self) -> str:
        return f"Node({self.spec.name!r}, {self.container_name!r})"

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def host(self) -> testinfra.host.Host:
        """A testinfra host that runs its commands through the podman API."""
        return testinfra.host.Host(PodmanApiBackend(self))

    @property
    def label(self) -> str:
        return f"node {self.name}"

    def interface_on(self, segment: str) -> str:
        return self.interface_with(self.spec.address_on(segment))

    def pid(self) -> int:
        """The container's first process on the host (read once: lab containers never restart)."""
        if self._pid is None:
            self.container.reload()
            self._pid = int(self.container.attrs["State"]["Pid"])
        return self._pid

    def write_sysctl(self, key: str, value: str) -> None:
        """Set a network sysctl in the node's namespace (containers see /proc/sys read-only)."""
        self._in_netns(f"echo {value} > /proc/sys/{key.replace('.', '/')}")

    def flush_neighbours(self) -> None:
        """Forget the node's ARP cache (the node itself lacks NET_ADMIN, as in the workshop)."""
        self._in_netns("ip neigh flush all")

    def forget_unresolved_neighbours(self, keep: Collection[str] | None = None) -> None:
        """Drop ARP entries still resolving (INCOMPLETE) or given up (FAILED) and, given
        `keep`, the resolved ones for any other address.

        A resolution left pending by one probe retries only on its 1 s timer, so the next
        test's first packet to that address would wait for it. An address a reverted layer
        added (the VIP) has no owner any more: an entry left for it would send the next
        test's packets to the old owner's MAC without asking, as if someone still had it.
        """
        entries = json.loads(self.exec("ip", "-j", "neigh", "show").check().stdout or "[]")
        stale = [
            e["dst"]
            for e in entries
            if {"INCOMPLETE", "FAILED"} & set(e.get("state", []))
            or (keep is not None and e.get("dst") not in keep and "PERMANENT" not in e["state"])
        ]
        if stale:
            self._in_netns("; ".join(f"ip neigh flush to {address}" for address in stale))

    def _in_netns(self, script: str) -> None:
        """Run a host-side command inside only this node's network namespace.

        For lab housekeeping the node cannot do itself; local and root only.
        """
        result = subprocess.run(
            ["nsenter", "-t", str(self.pid()), "-n", "sh", "-c", script],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise CommandError(f"`{script}` in {self.name}'s namespace: {result.stderr.strip()}")


class PodmanApiBackend(testinfra_base.BaseBackend):  # type: ignore[misc]
    """testinfra backend over podman-py's exec, so it works with any podman API URL."""

    NAME = "vlanlb-podman"

    def __init__(self, node: Node, *args: Any, **kwargs: Any) -> None:
        self.node = node
        super().__init__(node.container_name, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> testinfra_base.CommandResult:
        cmd = self.get_command(command, *args)
        result = self.node.exec("/bin/sh", "-c", cmd)
        return self.result(result.rc, self.encode(cmd), result.stdout, result.stderr)
