"""A throwaway host for one document run: the document's commands run there, as written.

A workshop's commands are written for a machine of the reader's own ("sudo", "your NIC",
`podman rm -f` in the cleanup). Reading each command to decide whether it is safe always misses
one, so document mode gives the commands a machine instead: a set of Linux namespaces that
is the only thing they can reach, owned by a user namespace whose root is nobody on the host.

- **user**: root inside is an unused uid range on the host (`confinement.id_range`). It owns
  none of the host's files and holds no capability outside the sandbox's own namespaces: the
  kernel refuses it device nodes, file handles that climb out of a mount, the host's
  namespaces, global kernel settings (`kernel.*`, core_pattern), cgroup release agents,
  binfmt_misc, modules, bpf and perf, whatever a document runs.
- **mount**: its root is a tmpfs holding an overlay of the host's `/usr` (the user's own podman,
  iproute2, iptables: the versions under test; the host's files stay the host's: writing one
  fails), a small `/etc` of its own (no host secrets), its own `/run`, `/tmp`, `/root`, `/var`,
  a `/dev` with only null, zero, full, random, urandom, tty and its own pts, a fresh `/sys` and
  `/proc` (the files runc masks, masked). Every tmpfs is `nosuid,nodev`. The host's files are
  not there at all: `-v /:/host`, `cat /etc/shadow`, `> /root/.bashrc` meet the sandbox's.
- **net**: only `lo` and the NICs made for it (veth pairs whose other ends stay in a namespace
  of the sandbox, `vlanlb-wire`): no route out, no DNS. podman's default network, netavark's
  or CNI's rules and every macvlan live and die here; the host's firewall is never touched.
- **pid, uts, ipc, cgroup**: its processes see only each other; `podman rm -af`, `kill -9 -1`
  and `--pid host` reach only the sandbox. Its init ignores every signal sent from inside.
- **podman**: its own storage (tmpfs), own networks, own podman API (socket-activated: the
  runner holds the listening socket on the host, at a path the sandbox cannot see or replace).
  Images come from a read-only store made once on the host (`store`), bound locked
  read-only, so `podman image rm/prune` and `mount -o remount,rw` cannot touch it.
- **gate**: every process enters through `gate` (a fresh session keyring, a seccomp filter for
  vsock, keys, io_uring, file handles, bpf, perf, modules and kexec, a bounded process count),
  and joins the sandbox's cgroups, which bound its memory where the host has cgroups to give.
- **life**: the runner holds the init by a pidfd, enters and kills it through that, never by
  a pid number that could be reused; when the init dies, the kernel ends every process in the
  sandbox and frees its mounts, links and storage. If the runner dies, the kernel kills the
  sandbox too (parent-death signal); its host folder and cgroups are swept by the next run.

What a virtual machine still adds: its own kernel. The sandbox shares the host's, so a kernel
bug reachable from a user namespace is reachable from a document.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import podman

from ..errors import PreflightError
from ..host.setup import missing_tools, sandbox_crun
from ..podman.settings import DEFAULT_ULIMITS, containers_conf
from ..util.owners import claim, dead_owners, process_start_time
from ..util.waiting import wait_until
from .confinement import PROCESS_LIMIT, Cgroups, gate_command, id_range, make_cgroups, spawn_mapped
from .launcher import Launcher, Started

#: Host folders of sandboxes (the API socket, the owner), found and removed after a crash.
SANDBOX_PREFIX = "vlanlb-sandbox-"
#: A namespace inside the sandbox that holds the far ends of its NICs (carrier up).
WIRE_NETNS = "vlanlb-wire"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: What a command inside starts with, as a root login would.
ENVIRONMENT = {"PATH": SANDBOX_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}
#: Tools the sandbox needs from the host (and a crun: `host.setup.sandbox_crun`).
HOST_TOOLS = ("podman", "unshare", "ip")
START_TIMEOUT = 20.0
#: /proc files runc masks in a container (runtime-spec's defaults): the host's timers, keys,
#: memory and devices, none of which a workshop reads.
MASKED_PROC_FILES = (
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "sysrq-trigger",
)
MASKED_PROC_FOLDERS = ("acpi", "asound", "scsi")

# Runs as PID 1 of the new namespaces (root of their user namespace), before pivot_root:
# builds the sandbox's root, prints "ready" and becomes its init. Arguments come through the
# environment (VLANLB_*).
_SETUP = r"""
set -eu
R=$VLANLB_ROOT
T=nosuid,nodev
# Every file system of the sandbox is memory with a ceiling: a document that writes too much
# meets "No space left on device" in the sandbox, not a host short of memory.
mount -t tmpfs -o mode=755,size=1g,$T sandbox "$R"
# The host's files in /usr belong to a uid that does not exist here, so the overlay cannot
# copy them up: what the sandbox adds to /usr lives in folders that are its own from the start.
mkdir -p "$R/.rw/usr/local/sbin" "$R/.rw/usr/local/bin" "$R/.rw/work" "$R/usr"
for d in /usr/local/*; do
    if [ -d "$d" ] && [ ! -L "$d" ]; then mkdir -p "$R/.rw$d"; fi
done
printf '%s' "$VLANLB_SUDO" > "$R/.rw/usr/local/sbin/sudo"
chmod 755 "$R/.rw/usr/local/sbin/sudo"
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$R/.rw/usr,workdir=$R/.rw/work" "$R/usr"
for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$d" ]; then cp -P "/$d" "$R/$d"
    elif [ -d "/$d" ]; then mkdir "$R/$d"; mount --bind -o ro "/$d" "$R/$d"; fi
done
mkdir -p "$R"/etc/containers/networks "$R"/etc/cni/net.d "$R"/run "$R"/tmp "$R"/root \
    "$R"/var/lib/containers "$R"/var/lib/cni "$R"/var/tmp "$R"/var/cache "$R"/var/log \
    "$R"/dev "$R"/proc "$R"/sys "$R"/.oldroot "$R"/var/lib/vlanlb-images
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 700 "$R/root"
ln -s ../run "$R/var/run"
# /etc: only what programs need to run, nothing of the host's secrets or credentials.
for f in nsswitch.conf protocols services ethertypes ld.so.cache ld.so.conf os-release \
         localtime; do
    if [ -e "/etc/$f" ]; then cp -L "/etc/$f" "$R/etc/$f"; fi
done
for d in alternatives ld.so.conf.d; do
    if [ -d "/etc/$d" ]; then cp -a "/etc/$d" "$R/etc/$d"; fi
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
printf '127.0.0.1 localhost %s\n::1 localhost\n' "$VLANLB_HOSTNAME" > "$R/etc/hosts"
echo "$VLANLB_HOSTNAME" > "$R/etc/hostname"
: > "$R/etc/resolv.conf"
ln -s /proc/self/mounts "$R/etc/mtab"
printf '%s' "$VLANLB_CONTAINERS_CONF" > "$R/etc/containers/containers.conf"
printf '%s' "$VLANLB_STORAGE_CONF" > "$R/etc/containers/storage.conf"
printf '%s' "$VLANLB_REGISTRIES_CONF" > "$R/etc/containers/registries.conf"
printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' > "$R/etc/containers/policy.json"
mount -t tmpfs -o mode=755,size=1m,nosuid dev "$R/dev"
for n in null zero full random urandom tty; do
    touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,nosuid,noexec devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,size=64m,$T shm "$R/dev/shm"
mount -t mqueue -o $T,noexec mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
# Kernel settings outside the sandbox's network belong to the host's user namespace: the
# kernel refuses them to this root, so /proc/sys stays as it is (a read-only overmount would
# also keep crun from mounting proc in containers).
mount -t proc -o $T,noexec proc "$R/proc"
for f in $VLANLB_MASKED_FILES; do
    if [ -e "$R/proc/$f" ]; then mount --bind /dev/null "$R/proc/$f"; fi
done
for d in $VLANLB_MASKED_FOLDERS; do
    if [ -d "$R/proc/$d" ]; then mount -t tmpfs -o ro,size=0,$T masked "$R/proc/$d"; fi
done
# sysfs is read-write as on a host: its files are the host's root's (refused to this root)
# but for the sandbox's own network devices. `ip -n NS` and `ip netns exec` swap /sys for
# their namespace's (unmount it, mount a new one, writable); in a user namespace the kernel
# allows a new sysfs only while one not read-only stays in full view, so a second one does,
# where nothing unmounts it.
mount -t sysfs -o $T,noexec sysfs "$R/sys"
mkdir -p "$R/.vlanlb/sys"
mount -t sysfs -o $T,noexec sysfs "$R/.vlanlb/sys"
# crun runs with cgroups disabled; it still wants to see a cgroup2 file system here.
mount -t cgroup2 -o $T,noexec cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=755,size=256m,$T run "$R/run"
mount -t tmpfs -o mode=1777,size=1g,$T tmp "$R/tmp"
mount -t tmpfs -o mode=700,size=4g,$T storage "$R/var/lib/containers"
# Bound read-only before this user namespace existed, so locked: `remount,rw` is refused.
mount --bind "$VLANLB_IMAGES" "$R/var/lib/vlanlb-images"
hostname "$VLANLB_HOSTNAME"
ip link set lo up
cd "$R"
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
ip netns add WIRE_NETNS
for nic in $VLANLB_NICS; do
    ip link add "$nic" type veth peer name "$nic" netns WIRE_NETNS
    ip -n WIRE_NETNS link set "$nic" up
    ip link set "$nic" up
done
echo ready
exec >/dev/null 2>&1 </dev/null
# The init: it reaps orphans and ignores every signal a process of the sandbox can send it
# (a document's `kill 1` or `kill -INT 1`); only the runner ends it, with SIGKILL from outside.
exec bash -c 'trap "" HUP INT QUIT TERM USR1 USR2 ALRM PIPE
    while :; do sleep 86400 & wait $!; done'
""".replace("WIRE_NETNS", WIRE_NETNS)

# `sudo` as a student's VM has it: the sandbox is root already, so it runs the command as is.
_SUDO = r"""#!/bin/sh
# sudo in the document sandbox: every command already runs as root here.
while [ $# -gt 0 ]; do
    case "$1" in
        -u|--user)
            case "$2" in
                root|0|'#0') shift 2 ;;
                *) echo "sudo (sandbox): only root here" >&2; exit 1 ;;
            esac ;;
        -[EHnSkPA]|--preserve-env|--preserve-env=*|--set-home|--non-interactive) shift ;;
        --) shift; break ;;
        -*) echo "sudo (sandbox): option $1 is not supported here" >&2; exit 1 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: sudo COMMAND" >&2; exit 1; }
exec "$@"
"""

_REGISTRIES = 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n'
_STORAGE = (
    '[storage]\ndriver = "overlay"\ngraphroot = "/var/lib/containers/storage"\n'
    'runroot = "/run/containers/storage"\n'
    '[storage.options]\nadditionalimagestores = ["/var/lib/vlanlb-images"]\n'
)


def sandbox_containers_conf(network_backend: str | None) -> str:
    """podman's settings in the sandbox: crun without cgroups (nothing is written to the
    host's cgroup tree), ulimits that need no CAP_SYS_RESOURCE, no wait on `rm -f` for
    `sleep infinity`, never a pull (there is no registry), the network backend asked for.

    They are the sandbox's /etc/containers/containers.conf, which podman reads over the
    distribution's defaults in /usr/share (the host's, through the overlay), as the user's
    podman does: those defaults are what a student's containers get (podman 5's and Debian's
    drop NET_RAW and let root's group ping through ICMP datagram sockets, for example).
    CONTAINERS_CONF would replace them instead."""
    return containers_conf(
        {
            "containers": {"default_ulimits": DEFAULT_ULIMITS, "cgroups": "disabled"},
            "engine": {
                "runtime": "crun",  # a name podman knows runs without cgroups; its path below
                "cgroup_manager": "cgroupfs",
                "events_logger": "file",
                "stop_timeout": 0,
                "pull_policy": "never",
            },
            "engine.runtimes": {"crun": [sandbox_crun() or "crun"]},
            "network": {"network_backend": network_backend} if network_backend else {},
        }
    )


def check_host_tools() -> None:
    if missing := missing_tools(*HOST_TOOLS):
        raise PreflightError(f"document mode's sandbox: {missing}")
    if sandbox_crun() is None:
        raise PreflightError(
            "document mode's sandbox needs crun: run `vlanlb setup` (it unpacks Debian's crun "
            "for the sandbox, leaving the host's default runtime alone), or install crun"
        )


@dataclass
class Sandbox:
    """One running throwaway host: its init (by pidfd), its host folder, its API socket."""

    workdir: Path
    process: subprocess.Popen[bytes]
    init_pid: int
    pidfd: int  # the init's: entering and killing go through it
    nics: tuple[str, ...]
    cgroups: Cgroups = field(default_factory=Cgroups)
    launcher: Launcher | None = None  # started with the sandbox (see `run`)
    api_process: subprocess.Popen[bytes] | None = None  # its podman API
    _listener: socket.socket | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"unix://{self.workdir / 'api.sock'}"

    def enter(self, *argv: str) -> list[str]:
        """A command line that runs `argv` inside, through the gate; run it with
        `popen` (or pass `pass_fds=(sandbox.pidfd,)`)."""
        return enter_command(self.pidfd, self.cgroups, argv)

    def run(self, argv: Sequence[str], **env: str) -> Started:
        """A document's command started inside, its environment `environment(**env)`, its
        stdout and stderr pipes: as `popen` does, without the gate's start each time."""
        assert self.launcher is not None
        return self.launcher.start(argv, self.environment(**env))

    def popen(self, argv: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
        """`argv` run inside (`subprocess.Popen`'s options, pass_fds added to), through a
        gate of its own: for what runs long (podman's API) or once."""
        extra = tuple(options.pop("pass_fds", ()))
        return subprocess.Popen(self.enter(*argv), pass_fds=(self.pidfd, *extra), **options)

    def environment(self, **extra: str) -> dict[str, str]:
        return {**ENVIRONMENT, **extra}

    def client(self, timeout: float = 120.0) -> podman.PodmanClient:
        return podman.PodmanClient(base_url=self.api_url, timeout=timeout)

    def start_api(self) -> None:
        """podman's API inside, on a socket the runner made and holds (socket activation)."""
        path = self.workdir / "api.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(64)
        self._listener = listener
        log = (self.workdir / "api.log").open("wb")
        script = "LISTEN_PID=$$ LISTEN_FDS=1 exec podman system service --time=0"
        with log:
            self.api_process = self.popen(
                ["sh", "-c", script],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The listening socket becomes fd 3 (LISTEN_FDS counts from there); 3 is kept
                # open through the close of the other descriptors, which follows preexec_fn.
                # The pidfd is never 3 (`_hold`).
                pass_fds=(3, listener.fileno()),
                preexec_fn=functools.partial(_as_fd_3, listener.fileno()),
            )

        def answers() -> bool:
            try:
                with self.client(timeout=2) as client:
                    return bool(client.ping())
            except Exception:
                return False

        if not wait_until(
            answers,
            timeout=START_TIMEOUT,
            interval=0.05,
            give_up=lambda: self.api_process is not None and self.api_process.poll() is not None,
        ):
            detail = (self.workdir / "api.log").read_text(errors="replace")[-2000:]
            raise PreflightError(f"podman's API in the document sandbox did not start:\n{detail}")

    def kill_processes(self, argv: Sequence[str]) -> list[int]:
        """Kill the sandbox's processes running `argv` (a probe a stopped `podman exec`
        started in a container: the stand-in's ping is a script, so its program may be an
        interpreter's argument). Only the sandbox's own processes are looked at, each held by
        a pidfd from the moment it is judged to the signal."""
        program, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
        killed = []
        for pid, cmdline in _processes():
            if cmdline[len(cmdline) - len(args) :] != args or not any(
                w.rsplit("/", 1)[-1] == program for w in cmdline[: len(cmdline) - len(args)]
            ):
                continue
            try:
                held = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if _cmdline(pid) == cmdline and _descends_from(pid, self.init_pid):
                    signal.pidfd_send_signal(held, signal.SIGKILL)
                    killed.append(pid)
            except ProcessLookupError:
                pass
            finally:
                os.close(held)
        return killed

    def close(self) -> None:
        """End every process of the sandbox; its mounts, links and storage go with them."""
        if self.launcher is not None:
            self.launcher.close()
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        try:  # unshare reaps the init, then ends: no zombie is left to the host's pid 1
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.api_process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.api_process.wait(timeout=10)
        if self._listener is not None:
            self._listener.close()
        os.close(self.pidfd)
        self.cgroups.remove()
        shutil.rmtree(self.workdir, ignore_errors=True)


def enter_command(pidfd: int, cgroups: Cgroups, argv: Sequence[str]) -> list[str]:
    return gate_command("enter", str(pidfd), str(PROCESS_LIMIT), *cgroups.procs, "--", *argv)


def enter_kept(run_id: str, argv: Sequence[str]) -> None:
    """Replace this process with `argv` (a shell by default) inside a run's sandbox that is
    still running (one kept with --vlanlb-keep): `vlanlb enter RUN`."""
    for workdir in sandbox_base().glob(f"{SANDBOX_PREFIX}{run_id}-*"):
        if (held := held_process(workdir / "init")) is None:
            continue
        paths: tuple[Path, ...] = ()
        with contextlib.suppress(OSError):
            paths = tuple(Path(p) for p in (workdir / "cgroups").read_text().split())
        os.set_inheritable(held, True)
        environment = {**ENVIRONMENT, "TERM": os.environ.get("TERM", "dumb")}
        command = enter_command(held, Cgroups(paths), argv or ["bash", "-l"])
        os.execve(command[0], command, environment)
    raise PreflightError(
        f"no running document sandbox of run {run_id} (`vlanlb cleanup --dry-run` lists them)"
    )


def _as_fd_3(fd: int) -> None:
    if fd != 3:
        os.dup2(fd, 3)
    os.set_inheritable(3, True)


def sandbox_base() -> Path:
    return Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())


def start_sandbox(
    run_id: str,
    image_store: Path,
    nics: tuple[str, ...],
    *,
    network_backend: str | None = None,
    keep: bool = False,
) -> Sandbox:
    """A new throwaway host with its own podman API; killed with the runner unless keep."""
    check_host_tools()
    ids = id_range()
    base = sandbox_base()
    remove_stale_sandboxes(base)
    workdir = Path(tempfile.mkdtemp(prefix=f"{SANDBOX_PREFIX}{run_id}-", dir=base))
    workdir.chmod(0o711)  # the sandbox's root passes through to root/, and sees nothing else
    claim(workdir, keep=keep)
    (workdir / "root").mkdir()
    os.chown(workdir / "root", ids.base, ids.base)
    (workdir / "images").mkdir()
    cgroups = make_cgroups(workdir.name)
    (workdir / "cgroups").write_text("".join(f"{p}\n" for p in cgroups.paths))
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VLANLB_ROOT": str(workdir / "root"),
        "VLANLB_IMAGES": str(workdir / "images"),
        "VLANLB_NICS": " ".join(nics),
        "VLANLB_HOSTNAME": "vlanlb-sandbox",
        "VLANLB_CONTAINERS_CONF": sandbox_containers_conf(network_backend),
        "VLANLB_STORAGE_CONF": _STORAGE,
        "VLANLB_REGISTRIES_CONF": _REGISTRIES,
        "VLANLB_SUDO": _SUDO,
        "VLANLB_MASKED_FILES": " ".join(MASKED_PROC_FILES),
        "VLANLB_MASKED_FOLDERS": " ".join(MASKED_PROC_FOLDERS),
    }
    command = [
        "unshare",
        "--mount",
        "--net",
        "--pid",
        "--uts",
        "--ipc",
        "--cgroup",
        "--fork",
        "--kill-child",  # the init dies with unshare, and every process of the sandbox with it
        "--propagation=private",
        "bash",
        "-c",
        _SETUP,
    ]

    def failed(detail: str) -> PreflightError:
        cgroups.remove(timeout=2)
        shutil.rmtree(workdir, ignore_errors=True)
        return PreflightError(
            "document mode could not make its sandbox (user, mount, network and pid "
            f"namespaces): {detail}"
        )

    try:
        process = spawn_mapped(
            command,
            ids,
            cgroups,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            die_with_us=not keep,
            lock_read_only=((image_store, workdir / "images"),),
        )
    except PreflightError as exc:
        raise failed(str(exc)) from None
    _record(workdir / "pid", process.pid)
    assert process.stdout is not None
    line = process.stdout.readline().decode(errors="replace").strip()
    if line != "ready":
        process.kill()
        _, err = process.communicate()
        raise failed(err.decode(errors="replace").strip()[-1500:] or f"setup said {line!r}")
    process.stdout.close()
    init_pid = _child_of(process.pid)
    pidfd = _hold(init_pid)
    if _child_of(process.pid) != init_pid:  # it was still unshare's only child when held
        os.close(pidfd)
        process.kill()
        process.wait()
        raise failed("its init ended as it started")
    sandbox = Sandbox(workdir, process, init_pid, pidfd, nics, cgroups)
    _record(workdir / "init", init_pid)
    try:
        if not keep:  # a kept sandbox outlives this process: it is entered by `vlanlb enter`
            sandbox.launcher = Launcher(pidfd, cgroups)
        sandbox.start_api()
    except BaseException:
        sandbox.close()
        raise
    return sandbox


def _hold(pid: int) -> int:
    """A pidfd for `pid`, numbered 10 or above (fd 3 is the API socket's, see start_api)."""
    raw = os.pidfd_open(pid)
    try:
        return fcntl.fcntl(raw, fcntl.F_DUPFD_CLOEXEC, 10)
    finally:
        os.close(raw)


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1]


def _processes() -> list[tuple[int, list[str]]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (cmdline := _cmdline(int(entry.name))) is not None:
            found.append((int(entry.name), cmdline))
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(64):  # a process tree is never that deep here
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        pid = int(re.search(r"^PPid:\s*(\d+)", status, re.MULTILINE)[1])  # type: ignore[index]
    return False


def _child_of(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if len(children) != 1:
        raise PreflightError(f"the sandbox's init was not found (unshare {pid}: {children})")
    return int(children[0])


def remove_stale_sandboxes(
    base: Path | None = None,
    *,
    include_kept: bool = False,
    run_id: str | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Sandboxes (still running, or only their folders) of runs whose owner is gone, kept
    ones only when asked for; or one run's, whatever its state. Kills them, removes them
    (with dry_run, only names them)."""
    base = base or sandbox_base()
    chosen = (
        sorted(base.glob(f"{SANDBOX_PREFIX}{run_id}-*"))
        if run_id
        else dead_owners(base, f"{SANDBOX_PREFIX}*", include_kept=include_kept)
    )
    if not dry_run:
        for workdir in chosen:
            kill_sandbox(workdir)
    return [workdir.name for workdir in chosen]


def _record(path: Path, pid: int) -> None:
    """A process as pid and start time: a pid reused by another process is not ours."""
    path.write_text(f"{pid}:{process_start_time(pid)}")


def held_process(record: Path) -> int | None:
    """A pidfd for the process a record names, if it is still that process (the pid is
    held first, then its start time compared: a pid reused since is not ours)."""
    try:
        pid, start = record.read_text().split(":")
        held = os.pidfd_open(int(pid))
    except (OSError, ValueError):
        return None
    if process_start_time(int(pid)) != start:
        os.close(held)
        return None
    return held


def kill_sandbox(workdir: Path) -> None:
    for name in ("init", "pid"):
        if (held := held_process(workdir / name)) is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(held, signal.SIGKILL)
            os.close(held)
    with contextlib.suppress(OSError):
        paths = (workdir / "cgroups").read_text().split()
        Cgroups(tuple(Path(p) for p in paths)).remove(timeout=5)
    shutil.rmtree(workdir, ignore_errors=True)
