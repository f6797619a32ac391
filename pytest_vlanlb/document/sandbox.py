"""A throwaway host for one document run: the document's commands run there, as written.

A workshop's commands are written for a machine of the reader's own ("sudo", "your NIC",
`podman rm -f` in the cleanup). Reading each command to decide whether it is safe always misses
one, so document mode gives the commands a machine instead: a set of Linux namespaces that
is the only thing they can reach.

- **mount**: its root is a tmpfs holding an overlay of the host's `/usr` (the user's own podman,
  iproute2, iptables: the versions under test; writes land in the tmpfs), a small `/etc` of its
  own (no host secrets: no shadow, keys, sudoers, credentials), its own `/run`, `/tmp`, `/root`,
  `/var`, a `/dev` with only null, zero, full, random, urandom, tty and its own pts; `/sys` and
  `/proc/sys` read-only, except `/proc/sys/net`, which is the sandbox's own network's. The
  host's files are not there at all: `-v /:/host`, `cat /etc/shadow`, `> /root/.bashrc` meet
  the sandbox's.
- **net**: only `lo` and the NICs made for it (veth pairs whose other ends stay in a namespace
  of the sandbox, `vlanlb-wire`): no route out, no DNS. podman's default network, netavark's
  or CNI's rules and every macvlan live and die here; the host's firewall is never touched.
- **pid, uts, ipc, cgroup**: its processes see only each other; `podman rm -af`, `kill -9 -1`
  and `--pid host` reach only the sandbox.
- **podman**: its own storage (tmpfs), own networks, own API service (socket-activated: the
  runner holds the listening socket on the host, at a path the sandbox cannot see or replace).
  Images come from a read-only store prepared once on the host (`alpine` there is the offline
  stand-in), so `podman image rm/prune` cannot touch the host's images.
- **capabilities**: what no namespace contains is dropped from every sandbox process's bounding
  set (loading kernel modules, raw I/O, the clock, reboot, BPF, ...).
- **life**: the runner kills the sandbox's init when it ends; the kernel ends every process in
  it and frees its mounts, links and storage. If the runner dies, the kernel kills the
  sandbox too (parent-death signal); its host folder is swept by the next run.

What a sandbox holding root in the host's user namespace can still do (mknod a device node,
mount a new proc), a careless document does not do; a document written to attack the machine
it runs on belongs in a virtual machine.
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

import podman

from ..errors import PreflightError
from ..naming import owner_is_alive, owner_token, process_start_time
from ..processes import kill_with_parent
from ..waiting import wait_until

#: Host folders of sandboxes (the API socket, the owner), found and removed after a crash.
SANDBOX_PREFIX = "vlanlb-sandbox-"
#: Where the sandboxes' read-only image stores live on the host (one per stand-in recipe).
IMAGE_CACHE = Path("/var/cache/vlanlb/sandbox-images")
#: The name the documents use; the stand-in is stored under it.
ALPINE = "docker.io/library/alpine:latest"
#: A namespace inside the sandbox that holds the far ends of its NICs (carrier up).
WIRE_NETNS = "vlanlb-wire"
#: Capabilities that no namespace contains: no process of the sandbox has them.
DROPPED_CAPABILITIES = (
    "sys_module",
    "sys_rawio",
    "sys_boot",
    "sys_time",
    "syslog",
    "mac_admin",
    "mac_override",
    "wake_alarm",
    "block_suspend",
    "audit_control",
    "sys_pacct",
    "perfmon",
    "bpf",
)
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Tools the sandbox needs from the host (apt package), besides podman.
HOST_TOOLS = {
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "setpriv": "util-linux",
    "crun": "crun",
    "ip": "iproute2",
}
START_TIMEOUT = 20.0

# Runs as PID 1 of the new namespaces, before pivot_root: builds the sandbox's root, prints
# "ready" and becomes its init. Arguments come through the environment (VLANLB_*).
_SETUP = r"""
set -eu
R=$VLANLB_ROOT
# Every file system of the sandbox is memory with a ceiling: a document that writes too much
# meets "No space left on device" in the sandbox, not a host short of memory.
mount -t tmpfs -o mode=755,size=1g sandbox "$R"
mkdir -p "$R/.rw/usr" "$R/.rw/work" "$R/usr"
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
mkdir -p "$R/usr/local/sbin"
printf '%s' "$VLANLB_SUDO" > "$R/usr/local/sbin/sudo"
chmod 755 "$R/usr/local/sbin/sudo"
mount -t tmpfs -o mode=755,size=1m dev "$R/dev"
for n in null zero full random urandom tty; do
    touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,size=64m shm "$R/dev/shm"
mount -t mqueue mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t proc proc "$R/proc"
# Kernel settings are global, but the network's are the sandbox's own.
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount --bind "$R/proc/sys/net" "$R/proc/sys/net"
mount -o remount,bind,rw "$R/proc/sys/net"
mount -t sysfs -o ro sysfs "$R/sys"
# crun runs with cgroups disabled; it still wants to see a cgroup2 file system here.
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=755,size=256m run "$R/run"
mount -t tmpfs -o mode=1777,size=1g tmp "$R/tmp"
mount -t tmpfs -o mode=700,size=4g storage "$R/var/lib/containers"
mount --bind -o ro "$VLANLB_IMAGES" "$R/var/lib/vlanlb-images"
mount -o remount,bind,ro "$R/var/lib/vlanlb-images"
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
exec bash -c 'trap "exit 0" TERM; while :; do sleep 86400 & wait $!; done'
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
    lines = [
        "[containers]",
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        'cgroups = "disabled"',
        "[engine]",
        'runtime = "crun"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        "stop_timeout = 0",
        'pull_policy = "never"',
    ]
    if network_backend is not None:
        lines += ["[network]", f'network_backend = "{network_backend}"']
    return "\n".join(lines) + "\n"


@functools.cache
def bounding_set() -> str:
    """setpriv's --bounding-set argument: the dropped capabilities this kernel knows (read
    once: every command entering the sandbox uses it)."""
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = 37
    numbers = {"perfmon": 38, "bpf": 39}
    return ",".join(f"-{c}" for c in DROPPED_CAPABILITIES if numbers.get(c, 0) <= last)


def check_host_tools() -> None:
    missing = [(t, p) for t, p in HOST_TOOLS.items() if shutil.which(t) is None]
    if shutil.which("podman") is None:
        missing.append(("podman", "podman"))
    if missing:
        packages = " ".join(sorted({p for _, p in missing}))
        raise PreflightError(
            f"document mode's sandbox needs {', '.join(t for t, _ in missing)}: "
            f"`apt-get install {packages}` (`vlanlb setup` installs them)"
        )


@dataclass
class Sandbox:
    """One running throwaway host: its init's pid, its host folder and its API socket."""

    workdir: Path
    process: subprocess.Popen[bytes]
    init_pid: int
    nics: tuple[str, ...]
    service: subprocess.Popen[bytes] | None = None
    _listener: socket.socket | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"unix://{self.workdir / 'api.sock'}"

    def enter(self, *argv: str) -> list[str]:
        """A command line that runs `argv` inside, with the sandbox's capabilities only."""
        return [
            "setpriv",
            f"--bounding-set={bounding_set()}",
            "nsenter",
            f"--target={self.init_pid}",
            "--all",
            "--root",
            "--wd",
            *argv,
        ]

    def environment(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": SANDBOX_PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "USER": "root",
            **extra,
        }

    def client(self, timeout: float = 120.0) -> podman.PodmanClient:
        return podman.PodmanClient(base_url=self.api_url, timeout=timeout)

    def start_service(self) -> None:
        """podman's API inside, on a socket the runner made and holds (socket activation)."""
        path = self.workdir / "api.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(64)
        self._listener = listener
        log = (self.workdir / "service.log").open("wb")
        script = "LISTEN_PID=$$ LISTEN_FDS=1 exec podman system service --time=0"
        with log:
            self.service = subprocess.Popen(
                self.enter("sh", "-c", script),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The listening socket becomes fd 3 (LISTEN_FDS counts from there); 3 is kept
                # open through the close of the other descriptors, which follows preexec_fn.
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
            give_up=lambda: self.service is not None and self.service.poll() is not None,
        ):
            detail = (self.workdir / "service.log").read_text(errors="replace")[-2000:]
            raise PreflightError(
                f"podman's service in the document sandbox did not start:\n{detail}"
            )

    def kill_processes(self, argv: Sequence[str]) -> list[int]:
        """Kill the sandbox's processes running `argv` (a probe a stopped `podman exec`
        started in a container: the stand-in's ping is a script, so its program may be an
        interpreter's argument). Only the sandbox's own processes are looked at."""
        program, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
        killed = []
        for pid, cmdline in _processes():
            if (
                cmdline[len(cmdline) - len(args) :] == args
                and any(
                    w.rsplit("/", 1)[-1] == program for w in cmdline[: len(cmdline) - len(args)]
                )
                and _descends_from(pid, self.init_pid)
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        return killed

    def close(self) -> None:
        """End every process of the sandbox; its mounts, links and storage go with them."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.init_pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        if self.service is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.service.wait(timeout=10)
        if self._listener is not None:
            self._listener.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


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
    """A new throwaway host with its own podman service; killed with the runner unless keep."""
    check_host_tools()
    base = sandbox_base()
    remove_stale_sandboxes(base)
    workdir = Path(tempfile.mkdtemp(prefix=f"{SANDBOX_PREFIX}{run_id}-", dir=base))
    (workdir / "owner").write_text(owner_token())
    if keep:
        (workdir / "keep").write_text("1")
    (workdir / "root").mkdir()
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VLANLB_ROOT": str(workdir / "root"),
        "VLANLB_IMAGES": str(image_store),
        "VLANLB_NICS": " ".join(nics),
        "VLANLB_HOSTNAME": "vlanlb-sandbox",
        "VLANLB_CONTAINERS_CONF": sandbox_containers_conf(network_backend),
        "VLANLB_STORAGE_CONF": _STORAGE,
        "VLANLB_REGISTRIES_CONF": _REGISTRIES,
        "VLANLB_SUDO": _SUDO,
    }
    command = [
        "setpriv",
        f"--bounding-set={bounding_set()}",
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
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # unshare ignores SIGTERM while it waits: the parent-death signal must be SIGKILL.
        preexec_fn=None if keep else kill_with_parent,
    )
    _record(workdir / "pid", process.pid)
    assert process.stdout is not None
    line = process.stdout.readline().decode(errors="replace").strip()
    if line != "ready":
        process.kill()
        _, err = process.communicate()
        shutil.rmtree(workdir, ignore_errors=True)
        raise PreflightError(
            "document mode could not make its sandbox (mount, network and pid namespaces): "
            + (err.decode(errors="replace").strip()[-1500:] or f"setup said {line!r}")
        )
    process.stdout.close()
    init_pid = _child_of(process.pid)
    sandbox = Sandbox(workdir, process, init_pid, nics)
    _record(workdir / "init", init_pid)
    try:
        sandbox.start_service()
    except BaseException:
        sandbox.close()
        raise
    return sandbox


def _processes() -> list[tuple[int, list[str]]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (entry / "cmdline").read_bytes()
                found.append((int(entry.name), raw.decode(errors="replace").split("\0")[:-1]))
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
    removed = []
    pattern = f"{SANDBOX_PREFIX}{run_id}-*" if run_id else f"{SANDBOX_PREFIX}*"
    for workdir in (base or sandbox_base()).glob(pattern):
        try:
            owner = (workdir / "owner").read_text()
        except OSError:
            continue
        kept = (workdir / "keep").exists() and not include_kept
        if run_id is None and (owner_is_alive(owner) or kept):
            continue
        if not dry_run:
            kill_sandbox(workdir)
        removed.append(workdir.name)
    return removed


def _record(path: Path, pid: int) -> None:
    """A process as pid and start time: a pid reused by another process is not ours."""
    path.write_text(f"{pid}:{process_start_time(pid)}")


def kill_sandbox(workdir: Path) -> None:
    for name in ("init", "pid"):
        with contextlib.suppress(OSError, ValueError):
            pid, start = (workdir / name).read_text().split(":")
            if process_start_time(int(pid)) == start:
                os.kill(int(pid), signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)


# --- the images the sandbox starts with ------------------------------------------------------


def image_store(standin: str, image_id: str = "") -> Path:
    """Where the sandboxes' store for this stand-in lives: by its tag (a hash of its recipe),
    and by its image id too when it derives from an image of the user's (which may change
    under the same name)."""
    return IMAGE_CACHE / (standin.rpartition(":")[2] + (f"-{image_id[:12]}" if image_id else ""))


def ready_store(store: Path) -> Path | None:
    """The store's storage folder, if it was made completely."""
    return store / "storage" if (store / "ready").exists() else None


def ensure_image_store(client: podman.PodmanClient, standin: str, store: Path) -> Path:
    """A read-only image store for sandboxes, holding the stand-in as `alpine` (made once,
    about 5 s: a `podman save` and a load into a store of its own)."""
    if ready := ready_store(store):
        return ready
    image = client.images.get(standin)
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with (IMAGE_CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once: the second waits, then reuses
        if ready := ready_store(store):
            return ready
        shutil.rmtree(store, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="vlanlb-store-") as tmp:
            archive = Path(tmp) / "image.tar"
            with archive.open("wb") as out:
                for chunk in image.save(named=True):
                    out.write(chunk)
            runroot = Path(tmp) / "run"
            base = ["podman", "--root", str(store / "storage"), "--runroot", str(runroot)]
            base += ["--storage-driver", "overlay"]
            # A store of our own is made with the CLI: the API serves only its own store.
            for args in (["load", "-q", "-i", str(archive)], ["tag", standin, ALPINE]):
                result = subprocess.run([*base, *args], capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    shutil.rmtree(store, ignore_errors=True)
                    raise PreflightError(
                        f"preparing the sandbox's images failed: {result.stderr.strip()}"
                    )
        (store / "ready").write_text(standin)
        for old in IMAGE_CACHE.iterdir():
            if old.is_dir() and old != store:
                _remove_store(old)
    return store / "storage"


def _remove_store(store: Path) -> None:
    # Overlay layers may still be mounted by a sandbox that is running: leave those.
    with contextlib.suppress(OSError):
        shutil.rmtree(store)
