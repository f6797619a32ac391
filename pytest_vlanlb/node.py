"""One lab node: its podman container, commands run in it, and a testinfra host for it."""

from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import testinfra.host
from podman.domain.containers import Container
from testinfra.backend import base as testinfra_base

from .errors import LabBuildError
from .shells import ShellPool, ShellUnavailable
from .topology import NodeSpec


@dataclass(frozen=True)
class ExecResult:
    command: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self) -> ExecResult:
        if self.rc != 0:
            raise LabBuildError(
                f"`{shlex.join(self.command)}` exited {self.rc}: {self.stderr.strip()}"
            )
        return self


def exec_in(container: Container, command: list[str] | tuple[str, ...]) -> ExecResult:
    rc, output = container.exec_run(list(command), demux=True)
    out, err = cast("tuple[bytes | None, bytes | None]", output)
    return ExecResult(
        tuple(command),
        int(rc if rc is not None else -1),
        (out or b"").decode(errors="replace"),
        (err or b"").decode(errors="replace"),
    )


@dataclass
class Node:
    """A running container of the lab, addressed by its topology name."""

    spec: NodeSpec
    container: Container
    _interfaces: dict[str, Any] | None = field(default=None, repr=False)
    #: The node's long-lived shells; None once they proved unavailable (then one exec each).
    _shells: ShellPool | None = field(default=None, repr=False)
    _one_exec_each: bool = field(default=False, repr=False)
    _pid: int | None = field(default=None, repr=False)
    _commands: dict[str, bool] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def container_name(self) -> str:
        return str(self.container.name)

    def has_command(self, name: str) -> bool:
        """Whether `name` is on the node's PATH: asked once per node (an image does not change
        under a run), so a probe that reads a tool only where it exists costs no exec after."""
        if name not in self._commands:
            found = self.exec("/bin/sh", "-c", f"command -v {shlex.quote(name)}")
            self._commands[name] = found.ok and bool(found.stdout.strip())
        return self._commands[name]

    def open_shells(self, count: int) -> None:
        """Open the shells `count` commands at once will need, side by side, now."""
        if not self._one_exec_each:
            try:
                self._pool().open_idle(count)
            except ShellUnavailable:
                self._one_exec_each = True

    def _pool(self) -> ShellPool:
        if self._shells is None:
            self._shells = ShellPool(self.container)
        return self._shells

    def exec(self, *command: str) -> ExecResult:
        """Run a command in the node, through its long-lived shells where podman allows.

        The command must not leave a background process writing to its stdout or stderr:
        that output would land in a later command's result (see shells.py)."""
        if not self._one_exec_each:
            try:
                client = self.container.client  # its timeout bounds a command, as for exec_run
                rc, out, err = self._pool().run(command, client.timeout if client else None)
            except ShellUnavailable:
                self._one_exec_each = True  # e.g. an image without /bin/sh
            else:
                return ExecResult(
                    command, rc, out.decode(errors="replace"), err.decode(errors="replace")
                )
        return exec_in(self.container, command)

    def close_shells(self) -> None:
        """End the node's shells (before its container goes, or it would end them anyway)."""
        if self._shells is not None:
            self._shells.close()

    @cached_property
    def host(self) -> testinfra.host.Host:
        """A testinfra host that runs its commands through the podman API."""
        return testinfra.host.Host(PodmanApiBackend(self))

    # --- interfaces, resolved from the container rather than assumed (eth1, eth2, ...) ---

    def interfaces(self) -> dict[str, Any]:
        if self._interfaces is None:
            raw = json.loads(self.exec("ip", "-j", "addr", "show").check().stdout)
            self._interfaces = {link["ifname"]: link for link in raw}
        return self._interfaces

    def forget_interfaces(self) -> None:
        """Read the interfaces again next time (after addresses changed)."""
        self._interfaces = None

    def interface_with(self, address: ipaddress.IPv4Address | str) -> str:
        wanted = str(address)
        for name, link in self.interfaces().items():
            if any(a.get("local") == wanted for a in link.get("addr_info", [])):
                return name
        raise LabBuildError(f"node {self.name} has no interface with address {wanted}")

    def interface_on(self, segment: str) -> str:
        return self.interface_with(self.spec.address_on(segment))

    def mac_of(self, interface: str) -> str:
        return str(self.interfaces()[interface]["address"])

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

    def forget_unresolved_neighbours(self) -> None:
        """Drop ARP entries still resolving (INCOMPLETE) or given up (FAILED).

        A resolution left pending by one probe retries only on its 1 s timer, so the next
        test's first packet to that address would wait for it; resolved entries stay.
        """
        entries = json.loads(self.exec("ip", "-j", "neigh", "show").check().stdout or "[]")
        if any({"INCOMPLETE", "FAILED"} & set(e.get("state", [])) for e in entries):
            self._in_netns("ip neigh flush nud incomplete nud failed")

    def neighbour(self, address: str) -> str | None:
        """The MAC the node has resolved for an address, or None if unresolved."""
        entries = json.loads(self.exec("ip", "-j", "neigh", "show", address).check().stdout)
        for entry in entries:
            if "lladdr" in entry and "FAILED" not in entry.get("state", []):
                return str(entry["lladdr"])
        return None

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
            raise LabBuildError(f"`{script}` in {self.name}'s namespace: {result.stderr.strip()}")


class PodmanApiBackend(testinfra_base.BaseBackend):  # type: ignore[misc]
    """testinfra backend over podman-py's exec, so it works with any podman service URL."""

    NAME = "vlanlb-podman"

    def __init__(self, node: Node, *args: Any, **kwargs: Any) -> None:
        self.node = node
        super().__init__(node.container_name, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> testinfra_base.CommandResult:
        cmd = self.get_command(command, *args)
        result = self.node.exec("/bin/sh", "-c", cmd)
        return self.result(result.rc, self.encode(cmd), result.stdout, result.stderr)
