"""The host side of the VLAN segments: the links that macvlan networks hang on.

The workshop puts 802.1Q sub-interfaces on the host NIC. We never touch the host's real NIC:
each lab gets its own veth "trunk" and, where the kernel has 8021q, real VLAN
sub-interfaces on it (as in the workshop); otherwise one veth pair per segment, which gives
the same isolated L2 segments. Every link carries an ifalias naming its run, so a crashed
run's links are found and removed later.
"""

from __future__ import annotations

import enum
import json
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import CommandError, PreflightError
from .naming import LinkAlias, RunNames
from .setup import missing_tools


class WireKind(str, enum.Enum):
    DOT1Q = "8021q"
    VETH = "veth"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if missing := missing_tools("ip"):
        raise PreflightError(missing)
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise CommandError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def kernel_supports_8021q() -> bool:
    """Try a VLAN sub-interface in a throwaway network namespace (never on a host link). The
    namespace is the probe process's own: it leaves no /run/netns mount behind, as a named
    namespace (`ip netns add`) would on a host that never had one."""
    if missing := missing_tools("unshare"):
        raise PreflightError(missing)
    probe = subprocess.run(
        [
            "unshare",
            "--net",
            "sh",
            "-c",
            "ip link add p0 type veth peer name p1 && "
            "ip link add link p0 name p0.10 type vlan id 10",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0


def choose_wire_kind(requested: str) -> WireKind:
    if requested == "auto":
        return WireKind.DOT1Q if kernel_supports_8021q() else WireKind.VETH
    kind = WireKind(requested)
    if kind is WireKind.DOT1Q and not kernel_supports_8021q():
        raise PreflightError(
            "--vlanlb-wire=8021q: this kernel cannot create 802.1Q VLAN links "
            "(`modprobe 8021q` first, or use --vlanlb-wire=veth or auto)"
        )
    return kind


@dataclass
class Wires:
    """The macvlan parent of each segment, and every host link made for them."""

    kind: WireKind
    parents: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)  # deleting these removes everything


@dataclass(frozen=True)
class WireCommand:
    """One `ip` command of the plan; `creates` names the link it adds (to delete on undo)."""

    args: tuple[str, ...]
    creates: str | None = None


def plan_wires(
    kind: WireKind, names: RunNames, vlans: Sequence[tuple[str, int]]
) -> list[WireCommand]:
    """The `ip` commands that create the wires, in order (pure, for unit tests)."""
    commands: list[WireCommand] = []

    def label_and_up(link: str) -> None:
        commands.append(WireCommand(("link", "set", "dev", link, "alias", names.link_alias)))
        commands.append(WireCommand(("link", "set", "dev", link, "up")))

    def veth(name: str) -> None:
        peer = f"{name}p"
        commands.append(
            WireCommand(("link", "add", name, "type", "veth", "peer", "name", peer), name)
        )
        label_and_up(name)
        # The host's end hears every broadcast of the segment: NOARP, so the host answers
        # none (else a node told an address of the host's is on its link would reach the
        # host; and the lab's nodes are then every possible answer: observation/arp.py).
        commands.append(WireCommand(("link", "set", "dev", peer, "arp", "off")))
        label_and_up(peer)

    if kind is WireKind.VETH:
        for _segment, vlan in vlans:
            veth(names.link(f"v{vlan}"))
    else:
        trunk = names.link("t")
        veth(trunk)
        for _segment, vlan in vlans:
            sub = f"{trunk}.{vlan}"
            add = ("link", "add", "link", trunk, "name", sub, "type", "vlan", "id", str(vlan))
            commands.append(WireCommand(add, sub))
            label_and_up(sub)
    return commands


def parent_names(
    kind: WireKind, names: RunNames, vlans: Sequence[tuple[str, int]]
) -> dict[str, str]:
    if kind is WireKind.VETH:
        return {segment: names.link(f"v{vlan}") for segment, vlan in vlans}
    return {segment: f"{names.link('t')}.{vlan}" for segment, vlan in vlans}


def create_wires(kind: WireKind, names: RunNames, vlans: Sequence[tuple[str, int]]) -> Wires:
    wires = Wires(kind, parent_names(kind, names, vlans))
    try:
        for command in plan_wires(kind, names, vlans):
            ip(*command.args)
            if command.creates is not None:
                # Deleting one end of a veth removes its peer and its VLAN sub-interfaces.
                wires.links.append(command.creates)
    except Exception:
        delete_links(wires.links)
        raise
    return wires


def delete_links(links: Iterable[str]) -> None:
    for link in reversed(list(links)):
        ip("link", "del", "dev", link, check=False)


def vlanlb_links() -> list[tuple[str, LinkAlias]]:
    """Every host link made by some run of this plugin, with its ifalias parsed."""
    result = ip("-j", "link", "show")
    found = []
    for link in json.loads(result.stdout or "[]"):
        alias = LinkAlias.parse(link.get("ifalias"))
        if alias is not None:
            found.append((link["ifname"], alias))
    return found
