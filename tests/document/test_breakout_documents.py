"""Documents written to get out of the sandbox (podman-backed, in an inner pytest run): each
attempt that got out of the sandbox before it had a user namespace of its own, and a few more,
as an attacker would write them. Each fails inside with the kernel's own error, and the host
is as it was.

Markers only: an attempt that got out would write a file into a folder of this test's own,
write back a kernel setting's own value, or register a binfmt handler named vlanlb-hostile
(removed again by the test); nothing else.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import struct
import subprocess
from pathlib import Path

from host_state import host_state
from test_workshop_documents import run_documents

from pytest_vlanlb.document.confinement import MEMORY_LIMIT, PROCESS_LIMIT
from pytest_vlanlb.document.store import IMAGE_CACHE, document_image_store

# Each program exits with the error it met (sys.exit(text): status 1, text on stderr).
SHOCKER = r"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def fail(what):
    sys.exit(f"{what}: {os.strerror(ctypes.get_errno())}")
handle = ctypes.create_string_buffer(8 + 128)
struct.pack_into("I", handle, 0, 128)
mount_id = ctypes.c_int()
store = b"/var/lib/vlanlb-images"
if libc.name_to_handle_at(-100, store, handle, ctypes.byref(mount_id), 0):
    fail("name_to_handle_at")
kind = struct.unpack_from("i", handle, 4)[0]
struct.pack_into("IiII", handle, 0, 8, kind, 2, 0)  # inode 2: the root of its file system
fd = libc.open_by_handle_at(os.open(store, os.O_RDONLY), handle, os.O_RDONLY | os.O_DIRECTORY)
if fd < 0:
    fail("open_by_handle_at")
os.fchdir(fd)
open("{relative}/shocker", "w").write(open("etc/hostname").read())
"""

# The host's mount namespace by the handle the host's root gets for it (given by the test).
NSFS = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
handle = ctypes.create_string_buffer(bytes.fromhex("{handle}"))
fd = libc.open_by_handle_at(-10003, handle, os.O_RDONLY)  # FD_NSFS_ROOT
if fd < 0:
    sys.exit(f"open_by_handle_at: {os.strerror(ctypes.get_errno())}")
if libc.setns(fd, 0):
    sys.exit(f"setns: {os.strerror(ctypes.get_errno())}")
open("{markers}/setns", "w").write("out")
"""

BPF = r"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
code = ctypes.create_string_buffer(struct.pack("BBhiBBhi", 0xB7, 0, 0, 0, 0x95, 0, 0, 0))
license = ctypes.create_string_buffer(b"GPL")
attr = struct.pack("IIQQ", 1, 2, ctypes.addressof(code), ctypes.addressof(license))
attr = ctypes.create_string_buffer(attr + bytes(104))
if libc.syscall({bpf}, 5, attr, len(attr.raw)) < 0:  # BPF_PROG_LOAD, a socket filter
    sys.exit(f"bpf: {os.strerror(ctypes.get_errno())}")
"""

PERF = r"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(struct.pack("II", 1, 128) + bytes(120))  # cpu-clock
if libc.syscall({perf}, attr, -1, 0, -1, 0) < 0:  # every process on CPU 0
    sys.exit(f"perf_event_open: {os.strerror(ctypes.get_errno())}")
"""

VSOCK = r"""
import socket, sys
try:
    socket.socket(40, socket.SOCK_STREAM).connect((2, 1234))  # AF_VSOCK, the hypervisor
except OSError as exc:
    sys.exit(f"vsock: {exc.strerror}")
"""

KEYS = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall({keyctl}, 0, -3, 0) < 0:  # KEYCTL_GET_KEYRING_ID of the session keyring
    sys.exit(f"keyctl: {os.strerror(ctypes.get_errno())}")
"""

FORK = r"""
import os, signal, sys, time
kids = []
try:
    for _ in range(5000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        kids.append(pid)
except OSError as exc:
    error = exc.strerror
else:
    error = ""
finally:
    for kid in kids:
        os.kill(kid, signal.SIGKILL)
    for kid in kids:
        os.waitpid(kid, 0)
sys.exit(f"stopped after {len(kids)} processes: {error}" if error else None)
"""

MEMORY = 'x = b"x" * (4 << 30)'  # 4 GiB, written


def program(name: str, text: str) -> str:
    return f"cat > /tmp/{name}.py <<'END'\n{text.strip()}\nEND\npython3 /tmp/{name}.py"


def breakout_document(markers: Path, nsfs_handle: str) -> str:
    syscalls = {"bpf": 321, "perf": 298, "keyctl": 250}  # x86_64, the machines this runs on
    steps = {
        "File handles through the image store's bind mount": program(
            "shocker", SHOCKER.replace("{relative}", str(markers).lstrip("/"))
        ),
        "The host's mount namespace through an nsfs handle": program(
            "nsfs", NSFS.replace("{handle}", nsfs_handle).replace("{markers}", str(markers))
        ),
        "core_pattern through a fresh proc": "mkdir -p /tmp/p\n"
        "mount -t proc proc /tmp/p\n"
        "cat /tmp/p/sys/kernel/core_pattern > /tmp/core_pattern\n"
        "cat /tmp/core_pattern > /tmp/p/sys/kernel/core_pattern",
        "core_pattern as it is": "cat /tmp/core_pattern > /proc/sys/kernel/core_pattern",
        "A cgroup v1 hierarchy and its release agent": "mkdir -p /tmp/cg\n"
        "mount -t cgroup -o memory cgroup /tmp/cg\n"
        "echo 1 > /tmp/cg/notify_on_release\n"
        "ls /tmp/cg/release_agent",
        "binfmt_misc": "mkdir -p /tmp/binfmt\n"
        "mount -t binfmt_misc binfmt_misc /tmp/binfmt\n"
        "echo ':vlanlb-hostile:E::vlanlbhostile::/bin/true:' > /tmp/binfmt/register\n"
        "test -e /tmp/binfmt/vlanlb-hostile\n"
        "test -e /proc/sys/fs/binfmt_misc/vlanlb-hostile",
        "bpf": program("bpf", BPF.replace("{bpf}", str(syscalls["bpf"]))),
        "perf": program("perf", PERF.replace("{perf}", str(syscalls["perf"]))),
        "vsock": program("vsock", VSOCK),
        "The host's keys": "umount /proc/keys\n"
        "cat /proc/keys\n" + program("keys", KEYS.replace("{keyctl}", str(syscalls["keyctl"]))),
        "A device node of the disk": "mknod /tmp/vda b 252 0",
        "A device through podman": "sudo podman run --rm --device /dev/vda alpine true",
        "The image store, written": "mount -o remount,rw /var/lib/vlanlb-images\n"
        "touch /var/lib/vlanlb-images/vlanlb-hostile",
        "Processes without end": program("fork", FORK),
        "Memory without end": f"python3 -c '{MEMORY}'",
        "The init, signalled": "kill -KILL 1; kill -TERM 1; kill -INT 1; kill -HUP 1",
        "Still standing": "kill -0 1\nsudo podman ps -a",
    }
    text = "# A document written to get out\n"
    for number, (title, block) in enumerate(steps.items(), start=1):
        text += f"\n## Step {number}. {title}\n\n```bash\n{block}\n```\n"
    return text


def nsfs_handle() -> str:
    """The file handle of the host's mount namespace (the test's own), as hex."""
    libc = ctypes.CDLL(None, use_errno=True)
    handle = ctypes.create_string_buffer(8 + 128)
    struct.pack_into("I", handle, 0, 128)
    mount_id = ctypes.c_int()
    follow = 0x400  # AT_SYMLINK_FOLLOW: the namespace, not /proc's link to it
    if libc.name_to_handle_at(-100, b"/proc/self/ns/mnt", handle, ctypes.byref(mount_id), follow):
        # Kernels before 6.18 have no nsfs handles: the document tries a made-up one.
        return struct.pack("Ii", 16, 0xF1).hex() + "00" * 16
    size = struct.unpack_from("I", handle, 0)[0]
    return handle.raw[: 8 + size].hex()


def binfmt_entries() -> list[str]:
    """The host's binfmt_misc registrations, read in a mount namespace of the test's own."""
    listing = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t binfmt_misc binfmt_misc /mnt && ls /mnt"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


def store_digest() -> str:
    """Every path, owner and size in the sandboxes' image stores."""
    seen = hashlib.sha256()
    for root, folders, files in os.walk(IMAGE_CACHE):
        for name in sorted(folders + files):
            path = Path(root) / name
            info = path.lstat()
            seen.update(f"{path} {info.st_uid} {info.st_size} {info.st_mtime_ns}\n".encode())
    return seen.hexdigest()


def host_keys() -> set[str]:
    return {line.split()[0] for line in Path("/proc/keys").read_text().splitlines()}


def test_a_document_written_to_get_out_stays_in(pytester):
    document_image_store(None, lambda _: None)  # made before: the run must not change it
    markers = pytester.path / "markers"
    markers.mkdir()
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    binfmt, store, keys = binfmt_entries(), store_digest(), host_keys()
    before = host_state()
    result, outcomes, reports, _ = run_documents(
        pytester, {"breakout.md": breakout_document(markers, nsfs_handle())}, "-rA"
    )
    after = host_state()
    try:
        assert before.differences(after) == {}
        assert list(markers.iterdir()) == []
        assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern
        assert binfmt_entries() == binfmt
        assert store_digest() == store
    finally:
        if "vlanlb-hostile" in binfmt_entries():  # got out: unregister, then fail above
            subprocess.run(
                ["unshare", "--mount", "sh", "-c", "mount -t binfmt_misc x /mnt && "
                 "echo -1 > /mnt/vlanlb-hostile"],
                check=False,
            )  # fmt: skip
    text = "\n".join(result.outlines)
    assert f"at most {PROCESS_LIMIT} processes, {MEMORY_LIMIT >> 30} GiB of memory" in text

    def step(number: int) -> str:
        assert outcomes[f"breakout.md::step-{number}"] == "failed", text[-3000:]
        return reports[f"breakout.md::step-{number}"]

    # What the kernel refuses the sandbox's root, in the kernel's words.
    assert "name_to_handle_at: Operation not permitted" in step(1)
    assert "open_by_handle_at: Operation not permitted" in step(2)
    assert "/tmp/p/sys/kernel/core_pattern: Permission denied" in step(3)
    assert "/proc/sys/kernel/core_pattern: Permission denied" in step(4)
    # A v1 hierarchy mounts, as the sandbox's own cgroup: no release agent, nothing writable.
    assert "/tmp/cg/notify_on_release: Permission denied" in step(5)
    assert "cannot access '/tmp/cg/release_agent': No such file or directory" in step(5)
    # binfmt_misc: a user namespace has an instance of its own (kernel 6.7 and later); the
    # handler is registered there, not in the host's (checked above) nor in /proc's.
    assert "test -e /proc/sys/fs/binfmt_misc/vlanlb-hostile" in step(6)
    assert "bpf: Operation not permitted" in step(7)
    assert "perf_event_open: Operation not permitted" in step(8)
    assert "vsock: Address family not supported by protocol" in step(9)
    # Only the sandbox's own keyrings are in view, even with the mask gone.
    seen = set(re.findall(r"\|\s+([0-9a-f]{8}) ", step(10)))
    assert seen, step(10)
    assert not seen & keys
    assert "keyctl: Function not implemented" in step(10)
    assert "mknod: /tmp/vda: Operation not permitted" in step(11)
    assert "stat /dev/vda: no such file or directory" in step(12)
    assert "/var/lib/vlanlb-images: permission denied" in step(13)
    assert "/var/lib/vlanlb-images/vlanlb-hostile': Read-only file system" in step(13)
    stopped = re.search(r"after (\d+) processes: Resource temporarily unavailable", step(14))
    assert stopped, step(14)
    assert int(stopped[1]) < PROCESS_LIMIT
    assert "killed by signal 9" in step(15) or "exit status 137" in step(15), step(15)
    # The init ignores what the sandbox sends it; the sandbox goes on.
    assert outcomes["breakout.md::step-16"] == outcomes["breakout.md::step-17"] == "passed"
