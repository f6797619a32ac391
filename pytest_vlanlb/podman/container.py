"""A container's commands through the podman API, for every mode: the lab's nodes and a
student's containers alike (nothing here reaches around podman into the host)."""

from __future__ import annotations

import ipaddress
import json
import shlex
from dataclasses import dataclass
from typing import Any, cast

from podman.domain.containers import Container as PodmanContainer

from ..errors import CommandError
from .exec_shells import ShellPool, ShellUnavailable


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
            raise CommandError(
                f"`{shlex.join(self.command)}` exited {self.rc}: {self.stderr.strip()}"
            )
        return self


def exec_in(container: PodmanContainer, command: list[str] | tuple[str, ...]) -> ExecResult:
    rc, output = container.exec_run(list(command), demux=True)
    out, err = cast("tuple[bytes | None, bytes | None]", output)
    return ExecResult(
        tuple(command),
        int(rc if rc is not None else -1),
        (out or b"").decode(errors="replace"),
        (err or b"").decode(errors="replace"),
    )


class Container:
    """A running container: commands run in it (through long-lived shells where podman
    allows), the tools it has, its interfaces and neighbours as it sees them."""

    def __init__(self, container: PodmanContainer, *, shells: bool = True) -> None:
        """With `shells=False`, one exec per command (a container read now and then, where a
        lingering shell of ours would be a process the container's owner did not start)."""
        self.container = container
        self._interfaces: dict[str, Any] | None = None
        #: The long-lived shells; None once they proved unavailable (then one exec each).
        self._shells: ShellPool | None = None
        self._one_exec_each = not shells
        self._commands: dict[str, bool] = {}

    @property
    def container_name(self) -> str:
        return str(self.container.name)

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"container {self.container_name}"

    def has_command(self, name: str) -> bool:
        """Whether `name` is on the container's PATH: asked once (an image does not change
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
        """Run a command in the container, through its long-lived shells where podman allows.

        The command must not leave a background process writing to its stdout or stderr:
        that output would land in a later command's result (see exec_shells.py)."""
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
        """End the shells (before the container goes, or it would end them anyway)."""
        if self._shells is not None:
            self._shells.close()

    # --- interfaces, read from the container rather than assumed (eth1, eth2, ...) ---------

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
        raise CommandError(f"{self.label} has no interface with address {wanted}")

    def mac_of(self, interface: str) -> str:
        return str(self.interfaces()[interface]["address"])

    def neighbour(self, address: str) -> str | None:
        """The MAC the container has resolved for an address, or None if unresolved."""
        entries = json.loads(self.exec("ip", "-j", "neigh", "show", address).check().stdout)
        for entry in entries:
            if "lladdr" in entry and "FAILED" not in entry.get("state", []):
                return str(entry["lladdr"])
        return None
