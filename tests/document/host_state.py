"""What a document run could change on the host, read from the host itself: podman's
containers, networks and images; links; the firewall; mounts; processes; sandbox folders and
cgroups."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_vlanlb.document.confinement import id_range
from pytest_vlanlb.document.sandbox import SANDBOX_PREFIX, sandbox_base


def _lines(*argv: str) -> list[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def sandbox_processes() -> list[str]:
    """Processes of document sandboxes as the host sees them: every one runs as a uid of the
    sandboxes' range (their root and everything it starts, the gate included). A process
    that has exited and waits to be reaped (a zombie) runs nothing and is not counted: a
    killed run's sandbox processes linger so for a moment after it."""
    ids = id_range()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields["State"].split()[0] in ("Z", "X"):
            continue
        uid = int(fields["Uid"].split()[1])
        if ids.overlaps(uid, 1):
            found.append(f"{proc.name} {b' '.join(argv).decode(errors='replace').strip()}")
    return found


def sandbox_cgroups() -> list[str]:
    """Cgroups of document sandboxes (where the host let them be made), anywhere in the
    hierarchies (v1: under the runner's own cgroup)."""
    found = []
    for root, folders, _ in os.walk("/sys/fs/cgroup"):
        found += [f"{root}/{f}" for f in folders if f.startswith(SANDBOX_PREFIX)]
        folders[:] = [f for f in folders if not f.startswith(SANDBOX_PREFIX)]
    return found


@dataclass(frozen=True)
class HostState:
    containers: tuple[str, ...]
    networks: tuple[str, ...]
    images: tuple[str, ...]
    links: tuple[str, ...]
    firewall: tuple[str, ...]
    mounts: tuple[str, ...]
    processes: tuple[str, ...]
    sandboxes: tuple[str, ...]
    cgroups: tuple[str, ...]
    names: tuple[str, ...]  # hostname and NIS domain name

    def differences(self, later: HostState) -> dict[str, tuple[set[str], set[str]]]:
        """field -> (gone, new), for each field that changed. A sandbox folder, cgroup or
        process that is gone is a dead run's, swept by this one as designed (or still dying
        when the first reading was taken; tests/unit/test_sandbox.py proves the sweep leaves
        live and kept ones): only a new one is a leftover."""
        changed = {}
        for name in self.__dataclass_fields__:
            before, after = set(getattr(self, name)), set(getattr(later, name))
            if name in ("sandboxes", "cgroups", "processes"):
                before &= after  # gone: swept, not left
            if before != after:
                changed[name] = (before - after, after - before)
        return changed


def host_state() -> HostState:
    containers = json.loads(
        subprocess.run(
            ["podman", "ps", "-a", "--format", "json"], capture_output=True, text=True, check=True
        ).stdout
        or "[]"
    )
    links = json.loads("".join(_lines("ip", "-j", "link", "show")) or "[]")
    firewall = [
        line
        for command in ("iptables-save", "ip6tables-save")
        for line in _lines(command)
        if not line.startswith("#")
    ]
    return HostState(
        containers=tuple(f"{c['Names'][0]} {c['State']}" for c in containers),
        networks=tuple(_lines("podman", "network", "ls", "--format", "{{.Name}}")),
        images=tuple(_lines("podman", "images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")),
        links=tuple(f"{link['ifname']} {','.join(link.get('flags', []))}" for link in links),
        firewall=tuple(firewall),
        mounts=tuple(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
        processes=tuple(sandbox_processes()),
        sandboxes=tuple(p.name for p in sandbox_base().glob(f"{SANDBOX_PREFIX}*")),
        cgroups=tuple(sandbox_cgroups()),
        names=tuple(
            Path(f"/proc/sys/kernel/{n}").read_text().strip() for n in ("hostname", "domainname")
        ),
    )
