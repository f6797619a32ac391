"""The host's side of a document sandbox's boundary: whose uids the sandbox's root has, the
cgroups that bound its memory and processes, and starting a process under the boundary
(`gate` does the inside's part).

The sandbox's root is root only in a user namespace of its own. On the host it is an unused
uid (`id_range`): it owns no file of the host's and holds no capability there, so device
nodes, file handles, the host's namespaces, global kernel settings, cgroup release agents,
binfmt_misc, bpf, perf and modules are refused to it by the kernel, whatever a document runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import PreflightError
from ..util.processes import kill_with_parent
from ..util.waiting import wait_until
from . import gate

GATE = Path(gate.__file__)
#: The host ids that are 0..65535 in a sandbox, unless /etc/subuid and /etc/subgid give the
#: user `vlanlb` a range: the first 64 Ki past the ranges systemd hands containers
#: (524288..1879048191), above the ones useradd gives users (/etc/subuid, up to 600100000).
DEFAULT_ID_BASE = 0x70000000
ID_COUNT = 65536
ID_OWNER = "vlanlb"
#: What one sandbox may use at most: processes (RLIMIT_NPROC always, pids.max and memory
#: where the host lets us make a cgroup).
PROCESS_LIMIT = 2048
MEMORY_LIMIT = 3 << 30


@dataclass(frozen=True)
class IdRange:
    """Host uids/gids base .. base+count-1, which are 0 .. count-1 inside."""

    base: int
    count: int = ID_COUNT

    @property
    def map_line(self) -> str:
        return f"0 {self.base} {self.count}\n"

    def overlaps(self, start: int, count: int) -> bool:
        return start < self.base + self.count and self.base < start + count


def _subordinate(path: Path) -> list[tuple[str, int, int]]:
    entries = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, _, rest = line.strip().partition(":")
            start, _, count = rest.partition(":")
            if start.isdigit() and count.isdigit():
                entries.append((name, int(start), int(count)))
    return entries


def id_range(etc: Path = Path("/etc")) -> IdRange:
    """The sandbox's ids: `vlanlb`'s range in /etc/subuid and /etc/subgid if both give it one
    of 65536 or more, else DEFAULT_ID_BASE, checked to be nobody else's (a user or group, or
    another subordinate range)."""
    uids, gids = _subordinate(etc / "subuid"), _subordinate(etc / "subgid")
    own = [
        (s, c) for n, s, c in uids if n == ID_OWNER and (ID_OWNER, s, c) in gids and c >= ID_COUNT
    ]
    if own:
        return IdRange(own[0][0])
    ids = IdRange(DEFAULT_ID_BASE)
    taken = [
        f"{file} gives {name} {start}..{start + count - 1}"
        for file, entries in (("/etc/subuid", uids), ("/etc/subgid", gids))
        for name, start, count in entries
        if ids.overlaps(start, count)
    ]
    for file in ("passwd", "group"):
        with contextlib.suppress(OSError):
            for line in (etc / file).read_text().splitlines():
                fields = line.split(":")
                if len(fields) > 2 and fields[2].isdigit() and ids.overlaps(int(fields[2]), 1):
                    taken.append(f"/etc/{file} has {fields[0]} ({fields[2]})")
    if taken:
        raise PreflightError(
            f"document mode's sandbox maps its root to host ids {ids.base}..."
            f"{ids.base + ids.count - 1}, but {taken[0]}: give it a free range of 65536 with "
            f"a line `{ID_OWNER}:START:65536` in both /etc/subuid and /etc/subgid"
        )
    return ids


# --- cgroups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cgroups:
    """The sandbox's cgroups (one per v1 hierarchy, or one v2 cgroup), or why there are none."""

    paths: tuple[Path, ...] = ()
    missing: str = ""

    @property
    def procs(self) -> list[str]:
        return [str(p / "cgroup.procs") for p in self.paths]

    def describe(self) -> str:
        if not self.paths:
            return f"{PROCESS_LIMIT} processes (no memory limit: {self.missing})"
        return f"{PROCESS_LIMIT} processes, {MEMORY_LIMIT >> 30} GiB of memory"

    def join(self, pid: int) -> None:
        for procs in self.procs:
            Path(procs).write_text(str(pid))

    def remove(self, timeout: float = 10.0) -> None:
        """Remove them once their processes are gone (exiting ones take a moment)."""
        for path in self.paths:

            def removed(path: Path = path) -> bool:
                try:
                    path.rmdir()
                except FileNotFoundError:
                    return True
                except OSError:
                    return False
                return True

            wait_until(removed, timeout=timeout)


_CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Per v1 controller: its limit file and the limit.
_V1_LIMITS = {
    "memory": ("memory.limit_in_bytes", MEMORY_LIMIT),
    "pids": ("pids.max", PROCESS_LIMIT),
}


def make_cgroups(name: str, root: Path = _CGROUP_ROOT) -> Cgroups:
    """Cgroups for one sandbox. On cgroup v1, under this process's own cgroup in the memory
    and pids hierarchies (whatever bounds the runner bounds the sandbox too); on v2, at the top
    of the hierarchy this process sees, where the memory and pids controllers are delegated
    (a v2 cgroup with processes of its own cannot have limited children). None, with the
    reason, where the host does not let us (a read-only /sys/fs/cgroup in a container)."""
    made: list[Path] = []
    try:
        if (root / "cgroup.controllers").exists():
            enabled = (root / "cgroup.subtree_control").read_text().split()
            if not {"memory", "pids"} <= set(enabled):
                return Cgroups(missing=f"{root} does not delegate the memory and pids controllers")
            path = root / name
            path.mkdir()
            made.append(path)
            (path / "memory.max").write_text(str(MEMORY_LIMIT))
            (path / "pids.max").write_text(str(PROCESS_LIMIT))
            return Cgroups((path,))
        own = dict(_own_cgroups())
        for controller, (limit_file, limit) in _V1_LIMITS.items():
            if controller not in own or not (root / controller).is_dir():
                raise OSError(f"no cgroup v1 {controller} hierarchy")
            path = root / controller / own[controller].lstrip("/") / name
            path.mkdir()
            made.append(path)
            (path / limit_file).write_text(str(limit))
        return Cgroups(tuple(made))
    except OSError as exc:
        Cgroups(tuple(made)).remove(timeout=1)
        return Cgroups(missing=str(exc))


def _own_cgroups() -> list[tuple[str, str]]:
    """(controller, path) of this process's v1 cgroups."""
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        found += [(c, path) for c in controllers.split(",") if c]
    return found


# --- starting a process under the boundary ---------------------------------------------------


def gate_command(mode: str, *args: str) -> list[str]:
    """The gate's command line (isolated Python, no site: it starts in about 20 ms)."""
    return [sys.executable, "-I", "-S", str(GATE), mode, *args]


def spawn_mapped(
    argv: Sequence[str],
    ids: IdRange,
    cgroups: Cgroups,
    *,
    env: Mapping[str, str],
    stdout: int | IO[Any] | None,
    stderr: int | IO[Any] | None,
    die_with_us: bool = True,
    lock_read_only: tuple[tuple[Path, Path], ...] = (),
) -> subprocess.Popen[bytes]:
    """Run `argv` as root of a new user namespace whose ids are `ids` on the host, in
    `cgroups`. Each (source, target) of `lock_read_only` is bound read-only at target first, in
    a mount namespace of the host's root's (nothing of it is seen outside): the sandbox
    inherits those mounts locked, so its root cannot make them writable again. Without
    `die_with_us`, it outlives this process (a kept sandbox)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    binds = [f"{s}:{t}" for s, t in lock_read_only]
    command = gate_command(
        "create",
        str(ready_w),
        str(go_r),
        str(os.getpid() if die_with_us else 0),
        str(PROCESS_LIMIT),
        *binds,
        "--",
        *argv,
    )
    try:
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(ready_w, go_r),
            start_new_session=True,
            # unshare ignores SIGTERM while it waits: the parent-death signal must be SIGKILL.
            preexec_fn=kill_with_parent if die_with_us else None,
        )
    finally:
        os.close(ready_w)
        os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise PreflightError(_failure(process))
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{process.pid}/{name}").write_text(ids.map_line)
        cgroups.join(process.pid)
        os.write(go_w, b"g")
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        os.close(ready_r)
        os.close(go_w)
    return process


def _failure(process: subprocess.Popen[bytes]) -> str:
    """What the gate said before it gave up (its stderr, when the caller collects it)."""
    process.kill()
    _, err = process.communicate()
    detail = err.decode(errors="replace").strip()[-1500:] if err else ""
    return detail or f"the gate ended with status {process.returncode} before its namespace"
