"""The document sandbox's boundary without a sandbox: the seccomp program (run here by a small
interpreter of classic BPF, as the kernel runs it), the ids and cgroups the sandbox gets, and a
process started under the boundary, read from /proc and tried against the kernel (root)."""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
from pathlib import Path

import pytest

from pytest_vlanlb.document import gate
from pytest_vlanlb.document.confinement import (
    DEFAULT_ID_BASE,
    MEMORY_LIMIT,
    PROCESS_LIMIT,
    Cgroups,
    IdRange,
    id_range,
    make_cgroups,
    spawn_mapped,
)
from pytest_vlanlb.errors import PreflightError

ALLOW = 0x7FFF0000


def run_filter(program: bytes, arch: int, nr: int, arg0: int = 0) -> int:
    """What the filter returns for one system call (the instructions gate emits)."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns = [struct.unpack_from("HBBI", program, i) for i in range(0, len(program), 8)]
    pc, accumulator = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code in (0x15, 0x35):  # jeq, jge
            taken = accumulator == k if code == 0x15 else accumulator >= k
            pc += jt if taken else jf
        elif code == 0x06:  # ret
            return k
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
        pc += 1


def errno_of(result: int) -> int:
    assert result & 0xFFFF0000 == 0x00050000, hex(result)
    return result & 0xFFFF


@pytest.mark.parametrize("machine", sorted(gate.ARCHES))
def test_the_filter_refuses_what_it_lists_and_allows_the_rest(machine):
    arch, foreign, numbers = gate.ARCHES[machine]
    program = gate.seccomp_program(machine)
    for name, error in gate.FILTER.items():
        assert errno_of(run_filter(program, arch, numbers[name])) == error, name
    assert errno_of(run_filter(program, arch, numbers["keyctl"])) == 38  # ENOSYS: no keyring
    assert errno_of(run_filter(program, arch, numbers["open_by_handle_at"])) == 1  # EPERM
    socket = numbers["socket"]
    assert errno_of(run_filter(program, arch, socket, gate.AF_VSOCK)) == 97  # EAFNOSUPPORT
    for family in (1, 2, 10, 16, 17):  # unix, inet, inet6, netlink, packet
        assert run_filter(program, arch, socket, family) == ALLOW
    for nr in (0, 1, 2, 57, 59, 165, 272, 308, 435):  # read, write, ..., clone3
        if nr not in {numbers[n] for n in gate.FILTER}:
            assert run_filter(program, arch, nr) == ALLOW
    # Another ABI's numbers mean other calls: refused whole (i386, and x32 on x86_64).
    assert errno_of(run_filter(program, 0x40000003, numbers["keyctl"])) == 38
    if foreign is not None:
        assert errno_of(run_filter(program, arch, foreign)) == 38  # x32's read


def test_a_machine_without_a_table_is_named():
    with pytest.raises(ValueError, match="x86_64, aarch64, not riscv64"):
        gate.seccomp_program("riscv64")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_ids_are_vlanlbs_own_range_or_a_free_default(tmp_path):
    write(tmp_path / "passwd", "root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/a:/bin/sh\n")
    write(tmp_path / "group", "root:x:0:\n")
    write(tmp_path / "subuid", "alice:100000:65536\n")
    write(tmp_path / "subgid", "alice:100000:65536\n")
    assert id_range(tmp_path) == IdRange(DEFAULT_ID_BASE)
    write(tmp_path / "subuid", "alice:100000:65536\nvlanlb:300000:65536\n")
    assert id_range(tmp_path) == IdRange(DEFAULT_ID_BASE)  # not in subgid too: not given
    write(tmp_path / "subgid", "alice:100000:65536\nvlanlb:300000:65536\n")
    assert id_range(tmp_path) == IdRange(300000)


def test_a_default_range_someone_has_is_refused_with_the_fix(tmp_path):
    write(tmp_path / "subuid", f"carol:{DEFAULT_ID_BASE - 10}:100\n")
    with pytest.raises(PreflightError) as error:
        id_range(tmp_path)
    assert "/etc/subuid gives carol" in str(error.value)
    assert "`vlanlb:START:65536` in both /etc/subuid and /etc/subgid" in str(error.value)
    write(tmp_path / "subuid", "")
    write(tmp_path / "passwd", f"svc:x:{DEFAULT_ID_BASE + 5}:0::/:/bin/false\n")
    with pytest.raises(PreflightError, match=r"/etc/passwd has svc"):
        id_range(tmp_path)


def test_cgroups_v2_at_the_top_with_both_limits(tmp_path):
    write(tmp_path / "cgroup.controllers", "cpu memory pids\n")
    write(tmp_path / "cgroup.subtree_control", "memory pids\n")
    made = make_cgroups("vlanlb-sandbox-x", tmp_path)
    assert made.paths == (tmp_path / "vlanlb-sandbox-x",)
    assert (tmp_path / "vlanlb-sandbox-x/memory.max").read_text() == str(MEMORY_LIMIT)
    assert (tmp_path / "vlanlb-sandbox-x/pids.max").read_text() == str(PROCESS_LIMIT)
    assert made.procs == [str(tmp_path / "vlanlb-sandbox-x/cgroup.procs")]


def test_cgroups_v2_without_delegated_controllers_say_why(tmp_path):
    write(tmp_path / "cgroup.controllers", "cpu memory pids\n")
    write(tmp_path / "cgroup.subtree_control", "cpu\n")
    made = make_cgroups("vlanlb-sandbox-x", tmp_path)
    assert made.paths == ()
    assert "does not delegate the memory and pids controllers" in made.missing
    assert "no memory limit" in made.describe()


def test_cgroups_v1_under_this_processs_own(tmp_path, monkeypatch):
    from pytest_vlanlb.document import confinement

    monkeypatch.setattr(confinement, "_own_cgroups", lambda: [("memory", "/ci/job"), ("pids", "/")])
    (tmp_path / "memory/ci/job").mkdir(parents=True)
    (tmp_path / "pids").mkdir()
    made = make_cgroups("vlanlb-sandbox-x", tmp_path)
    assert made.paths == (
        tmp_path / "memory/ci/job/vlanlb-sandbox-x",
        tmp_path / "pids/vlanlb-sandbox-x",
    )
    assert (made.paths[0] / "memory.limit_in_bytes").read_text() == str(MEMORY_LIMIT)
    # A hierarchy missing: none at all (a half-made set is removed), with the reason.
    monkeypatch.setattr(confinement, "_own_cgroups", lambda: [("memory", "/")])
    made = make_cgroups("vlanlb-sandbox-y", tmp_path)
    assert (made.paths, "no cgroup v1 pids hierarchy") == ((), made.missing)


def status_of(argv: list[str]) -> tuple[int, str]:
    process = spawn_mapped(
        argv,
        id_range(),
        Cgroups(),
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = process.communicate(timeout=30)
    return process.returncode, out.decode()


def test_a_process_under_the_boundary_is_nobody_on_the_host():
    ids = id_range()
    status, out = status_of(["cat", "/proc/self/uid_map", "/proc/self/status", "/proc/keys"])
    assert status == 0, out
    assert out.split()[:3] == ["0", str(ids.base), str(ids.count)]
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert fields["Uid"].split() == fields["Gid"].split() == ["0"] * 4  # root inside
    assert fields["Groups"].strip() == ""  # none of the host root's groups
    assert fields["Seccomp"].strip() == "2"
    assert fields["NoNewPrivs"].strip() == "0"  # podman's setuid-free world needs none
    bounding = int(fields["CapBnd"], 16)
    assert not bounding & (1 << gate.DROPPED_CAPABILITIES["sys_module"])
    assert bounding & (1 << 21)  # CAP_SYS_ADMIN in its own namespaces: mounts, podman
    # Its keys: a fresh session keyring, empty; none of the host's. (A sandbox running beside
    # it, another suite's or document run's, has ids of the same range: its session keyring
    # is in view too, as fresh and empty.)
    keys = [line for line in out.splitlines() if " keyring " in line]
    assert keys, out
    assert all("_ses: empty" in key for key in keys), keys
    host = {line.split()[0] for line in Path("/proc/keys").read_text().splitlines()}
    assert not {key.split()[0] for key in keys} & host


def test_what_a_user_namespace_leaves_open_the_filter_closes():
    numbers = gate.ARCHES[os.uname().machine][2]
    probe = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)\n"
        f"print(libc.syscall({numbers['io_uring_setup']}, 4, params), "
        "os.strerror(ctypes.get_errno()))\n"
        f"print(libc.syscall({numbers['userfaultfd']}, 0), os.strerror(ctypes.get_errno()))\n"
        f"print(libc.syscall({numbers['keyctl']}, 0, -3, 0), os.strerror(ctypes.get_errno()))\n"
    )
    status, out = status_of(["python3", "-c", probe])
    assert status == 0, out
    assert out.splitlines() == [
        "-1 Operation not permitted",
        "-1 Operation not permitted",
        "-1 Function not implemented",
    ]


def test_a_gate_that_cannot_start_says_why_in_one_line(tmp_path):
    with pytest.raises(PreflightError) as error:
        spawn_mapped(
            ["true"],
            id_range(),
            Cgroups(),
            env={},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            lock_read_only=((tmp_path / "missing", tmp_path),),
        )
    assert str(error.value).startswith("vlanlb gate: ")
    assert "missing" in str(error.value)
    assert "No such file or directory" in str(error.value)
    assert "Traceback" not in str(error.value)


def test_ctypes_structure_is_the_kernels_sock_fprog():
    assert ctypes.sizeof(gate._Program) == 2 * ctypes.sizeof(ctypes.c_void_p)
