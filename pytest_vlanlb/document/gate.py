"""The one way into a document sandbox: every process of it starts here.

Run as its own program, with the standard library only (`python -I -S gate.py MODE ...`), by
the runner, which is root on the host. It puts the process under the sandbox's boundary and
then runs the command:

- **create**: a new user namespace. The runner writes its uid and gid maps (root inside is an
  unprivileged uid range on the host, see `sandbox.id_range`) and puts the process into the
  sandbox's cgroups, then says go; the process becomes root of the new namespace and runs
  `unshare` for the sandbox's other namespaces, which that user namespace owns.
- **enter**: the sandbox's namespaces, all at once, through a pidfd of its init (a pid number
  can be reused by another process; a pidfd cannot), after joining its cgroups.

Either way, before the command: the supplementary groups of the host's root are dropped, a
fresh session keyring replaces the runner's (whose keys are the host's), RLIMIT_NPROC holds
(it binds once the uid is not the host's root), the capabilities that no namespace contains
leave the bounding set, and a seccomp filter refuses what a user namespace leaves open and no
workshop needs (`FILTER`).

Standard library only and no package imports: it starts in about 20 ms, once per command.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import signal
import struct
import sys

# os.execvp imports it when first called; by then this process may no longer read the host's
# Python library (it is the sandbox's root, an unprivileged uid on the host): import it now.
import warnings  # noqa: F401

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
#: Every namespace of a sandbox (setns through a pidfd takes them in one call).
ALL_NAMESPACES = (
    CLONE_NEWUSER
    | CLONE_NEWNS
    | CLONE_NEWNET
    | CLONE_NEWPID
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWCGROUP
)

PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
SECCOMP_MODE_FILTER = 2
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
KEYCTL_JOIN_SESSION_KEYRING = 1
AF_VSOCK = 40

#: Capabilities that no namespace contains (numbers from linux/capability.h). Inside a user
#: namespace they grant nothing on the host; dropping them also keeps them out of containers.
DROPPED_CAPABILITIES = {
    "sys_module": 16,
    "sys_rawio": 17,
    "sys_pacct": 20,
    "sys_boot": 22,
    "sys_time": 25,
    "audit_control": 30,
    "mac_override": 32,
    "mac_admin": 33,
    "syslog": 34,
    "wake_alarm": 35,
    "block_suspend": 36,
    "perfmon": 38,
    "bpf": 39,
}

#: What the filter refuses, and with which error. A user namespace already refuses most of
#: these to its root (they check capabilities of the host's namespace); the filter closes what
#: it does not: vsock (not namespaced: the hypervisor's services), keys (the kernel's
#: keyrings are not namespaced; ENOSYS, which runc and crun read as "no keyring here"),
#: io_uring (it can open sockets past the socket() rule), and file handles, bpf, perf,
#: userfaultfd, modules, kexec and acct, which no workshop needs.
FILTER: dict[str, int] = {
    "open_by_handle_at": 1,  # EPERM
    "name_to_handle_at": 1,
    "init_module": 1,
    "finit_module": 1,
    "delete_module": 1,
    "kexec_load": 1,
    "kexec_file_load": 1,
    "bpf": 1,
    "perf_event_open": 1,
    "userfaultfd": 1,
    "acct": 1,
    "io_uring_setup": 1,
    "io_uring_enter": 1,
    "io_uring_register": 1,
    "add_key": 38,  # ENOSYS
    "request_key": 38,
    "keyctl": 38,
}
EAFNOSUPPORT = 97
ENOSYS = 38

#: Per machine: the audit arch seccomp sees, the first number of a foreign ABI sharing the
#: table (x32 on x86_64), and the numbers of the calls the filter looks at.
ARCHES: dict[str, tuple[int, int | None, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        0x40000000,
        {
            "socket": 41,
            "acct": 163,
            "init_module": 175,
            "delete_module": 176,
            "kexec_load": 246,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "perf_event_open": 298,
            "name_to_handle_at": 303,
            "open_by_handle_at": 304,
            "finit_module": 313,
            "kexec_file_load": 320,
            "bpf": 321,
            "userfaultfd": 323,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
        },
    ),
    "aarch64": (
        0xC00000B7,
        None,
        {
            "socket": 198,
            "acct": 89,
            "init_module": 105,
            "delete_module": 106,
            "kexec_load": 104,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "perf_event_open": 241,
            "name_to_handle_at": 264,
            "open_by_handle_at": 265,
            "finit_module": 273,
            "kexec_file_load": 294,
            "bpf": 280,
            "userfaultfd": 282,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
        },
    ),
}

# Classic BPF as seccomp runs it (linux/filter.h, linux/seccomp.h).
_LD_ABS_W = 0x20
_JEQ = 0x15
_JGE = 0x35
_RET = 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg0's low word: little endian)


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program(machine: str) -> bytes:
    """The filter for `machine` (`platform.machine()`), as struct sock_filter[]: another ABI
    (i386 or x32 on x86_64) gets ENOSYS, each call of FILTER its error, socket(AF_VSOCK)
    EAFNOSUPPORT, and the rest is allowed."""
    if machine not in ARCHES:
        raise ValueError(
            f"document mode's sandbox knows the system calls of {', '.join(ARCHES)}, not {machine}"
        )
    arch, foreign, numbers = ARCHES[machine]
    code = [
        _insn(_LD_ABS_W, _ARCH),
        _insn(_JEQ, arch, 1, 0),
        _insn(_RET, _ERRNO | ENOSYS),
        _insn(_LD_ABS_W, _NR),
    ]
    if foreign is not None:
        code += [_insn(_JGE, foreign, 0, 1), _insn(_RET, _ERRNO | ENOSYS)]
    for name, errno in FILTER.items():
        code += [_insn(_JEQ, numbers[name], 0, 1), _insn(_RET, _ERRNO | errno)]
    code += [
        _insn(_JEQ, numbers["socket"], 0, 3),
        _insn(_LD_ABS_W, _ARG0),
        _insn(_JEQ, AF_VSOCK, 0, 1),
        _insn(_RET, _ERRNO | EAFNOSUPPORT),
        _insn(_RET, _ALLOW),
    ]
    return b"".join(code)


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return result


def _prctl(option: int, arg: int | ctypes.c_void_p = 0) -> None:
    _check(_libc.prctl(option, arg, 0, 0, 0), f"prctl({option})")


def confine(nproc: int) -> None:
    """What every process of the sandbox has, set just before its command (it is root of the
    sandbox's user namespace by now, with every capability there)."""
    _, _, numbers = ARCHES[platform.machine()]
    _check(
        _libc.syscall(numbers["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, None),
        "a session keyring of its own",
    )
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    last = int(open("/proc/sys/kernel/cap_last_cap").read())  # noqa: SIM115 (no pathlib: -S)
    for number in DROPPED_CAPABILITIES.values():
        if number <= last:
            _prctl(PR_CAPBSET_DROP, number)
    code = seccomp_program(platform.machine())
    buffer = ctypes.create_string_buffer(code)
    program = _Program(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(
        _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0),
        "the seccomp filter",
    )


def _become_root() -> None:
    """Root of the user namespace just joined: the host's root groups go first (a
    supplementary gid 0 would still open the host's group-root files)."""
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _lock_read_only(binds: list[str]) -> None:
    """Bind each SOURCE:TARGET read-only in a mount namespace of the host's root, before the
    user namespace exists: the sandbox's mount namespace inherits them locked."""
    _check(_libc.unshare(CLONE_NEWNS), "a mount namespace")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
    for bind in binds:
        source, _, target = bind.rpartition(":")
        _check(_libc.mount(source.encode(), target.encode(), None, MS_BIND, None), bind)
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        _check(_libc.mount(None, target.encode(), None, flags, None), bind)


def create(ready: int, go: int, parent: int, nproc: int, binds: list[str], argv: list[str]) -> None:
    if binds:
        _lock_read_only(binds)
    if _libc.unshare(CLONE_NEWUSER) < 0:
        error = ctypes.get_errno()
        hint = (
            " (the kernel allows no more: raise `sysctl user.max_user_namespaces`)"
            if error == 28  # ENOSPC, also when the limit is 0
            else ""
        )
        raise OSError(error, f"a user namespace: {os.strerror(error)}{hint}")
    os.write(ready, b"u")
    os.close(ready)
    answer = os.read(go, 1)
    os.close(go)
    if answer != b"g":
        sys.exit(125)  # the runner gave up (its maps or cgroups failed): it says why
    _become_root()
    if parent:
        # A change of uid clears the parent-death signal: set it again, then make sure the
        # parent did not die in between.
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            sys.exit(125)
    confine(nproc)
    os.execvp(argv[0], argv)


def _join(pidfd: int, cgroups: list[str]) -> None:
    """Into the sandbox's cgroups and every namespace of it, as its root (the pid namespace
    takes in this process's children, not this process)."""
    for procs in cgroups:
        with open(procs, "w") as file:
            file.write(str(os.getpid()))
    if _libc.setns(pidfd, ALL_NAMESPACES) < 0:
        error = ctypes.get_errno()
        raise Ended(ENDED if error == 3 else os.strerror(error))  # ESRCH: the init is gone
    _become_root()
    os.chdir("/")


class Ended(Exception):
    """The sandbox cannot be entered (its init has ended)."""


ENDED = "its init has ended"


def enter(pidfd: int, nproc: int, cgroups: list[str], argv: list[str]) -> None:
    try:
        _join(pidfd, cgroups)
    except Ended as exc:
        print(f"vlanlb: the document sandbox cannot be entered: {exc}", file=sys.stderr)
        sys.exit(125)
    os.close(pidfd)
    confine(nproc)
    # A pid namespace takes in the children of whoever joined it: the command runs in a
    # child, and this process passes its status on.
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"vlanlb: {argv[0]}: {exc.strerror}", file=sys.stderr)
            os._exit(127)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    sys.exit(os.waitstatus_to_exitcode(status))


def serve(pidfd: int, nproc: int, cgroups: list[str], channel: int, parent: int) -> None:
    """Start commands inside for as long as the runner's end of `channel` is open: one
    `enter` without this program's start each time (about 2 ms a command instead of 40).

    The runner sends {"run": argv, "env": {...}} with stdin, stdout and stderr as SCM_RIGHTS,
    and gets {"pid": host pid} back, then {"exit": pid, "status": code} when the command has
    ended; {"kill": pid} ends the command's process group. Each command gets the whole
    confinement (its own session keyring among it) in a fresh session. This process joins
    the sandbox's namespaces but its pid namespace: nothing inside can see, signal or trace
    it."""
    import json
    import select
    import selectors
    import socket

    server = socket.socket(fileno=channel)
    _join(pidfd, cgroups)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the change of uid
    if os.getppid() != parent:
        sys.exit(125)
    waiting = selectors.DefaultSelector()
    waiting.register(server, selectors.EVENT_READ)
    children: dict[int, int] = {}  # pid -> its pidfd, until reaped

    def say(message: dict[str, object]) -> None:
        server.send(json.dumps(message).encode())

    while True:
        for key, _ in waiting.select():
            if key.fileobj is not server:  # a command has ended
                pid = key.data
                waiting.unregister(key.fileobj)
                os.close(children.pop(pid))
                _, status = os.waitpid(pid, 0)
                say({"exit": pid, "status": os.waitstatus_to_exitcode(status)})
                continue
            message, fds, _, _ = socket.recv_fds(server, 1 << 20, 3)
            if not message:  # the runner is done
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                return
            request = json.loads(message)
            if "kill" in request:
                if request["kill"] in children:  # not reaped yet: the pid is still its
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(request["kill"], signal.SIGKILL)
                continue
            if select.select([pidfd], [], [], 0)[0]:  # readable: the init ended
                for fd in fds:
                    os.close(fd)
                say({"error": f"the document sandbox cannot be entered: {ENDED}"})
                continue
            pid = os.fork()
            if pid == 0:
                _command(fds, request["run"], request["env"], nproc)
            for fd in fds:
                os.close(fd)
            children[pid] = os.pidfd_open(pid)
            waiting.register(children[pid], selectors.EVENT_READ, pid)
            say({"pid": pid})


def _command(fds: list[int], argv: list[str], env: dict[str, str], nproc: int) -> None:
    """In the server's child: become the command, or say why not (status 125 or 127)."""
    try:
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, 1 << 16)  # the channel, the pidfds: nothing of the server's
        confine(nproc)
        os.execvpe(argv[0], argv, env)
    except OSError as exc:  # as a shell says it: not found 127, not executable 126
        os.write(2, f"vlanlb: {argv[0]}: {exc.strerror}\n".encode())
        os._exit({2: 127, 13: 126}.get(exc.errno or 0, 125))
    os._exit(125)


def main(args: list[str]) -> None:
    """`create READY GO PARENT NPROC [SOURCE:TARGET...] -- ARGV` (PARENT 0: no death signal),
    `enter PIDFD NPROC [CGROUP_PROCS...] -- ARGV` or
    `serve PIDFD NPROC [CGROUP_PROCS...] -- CHANNEL PARENT`."""
    split = args.index("--")
    head, argv = args[:split], args[split + 1 :]
    try:
        if head[0] == "create":
            create(int(head[1]), int(head[2]), int(head[3]), int(head[4]), head[5:], argv)
        elif head[0] == "enter":
            enter(int(head[1]), int(head[2]), head[3:], argv)
        elif head[0] == "serve":
            serve(int(head[1]), int(head[2]), head[3:], int(argv[0]), int(argv[1]))
        else:
            raise SystemExit(f"gate: unknown mode {head[0]!r}")
    except OSError as exc:  # one line for the report, not a traceback
        print(f"vlanlb gate: {exc.strerror}", file=sys.stderr)
        sys.exit(125)


if __name__ == "__main__":
    main(sys.argv[1:])
