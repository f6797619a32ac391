"""A long-lived `sh` per node: commands go over one podman exec session, not one each.

An API exec costs three REST calls (create, start, inspect), about 80-120 ms here, and leaves
a conmon process behind for podman's `exit_command_delay`. A lab test runs 6-8 of them. Here
a node's commands are written, one at a time, to the stdin of a shell started once with an
exec whose start request is *hijacked* (HTTP Upgrade on the podman socket, as `podman exec -i`
does); podman-py cannot do this (`exec_run(socket=True)` is ignored).

Each command still runs as a process of the node itself (its namespaces, capabilities, tools):
the shell forks it inside the container, as `( COMMAND 2>&3 ) </dev/null` (fd 3: the exec's
stderr; the shell's own fd 2 is /dev/null, so its job messages stay out of the output). Its
end is framed by a random marker printed after it, with its exit status, on stdout and stderr:

    <command's stdout>\n<MARK> <rc>\n        <command's stderr>\n<MARK>\n

and the marker lines are cut off again, so output and exit status are exactly the command's.
A command must not leave a background process writing to its stdout or stderr (ours
redirect theirs): such output would land in the next command's.

A ShellPool keeps one shell per command running at the same time on a node (probes run
together), so a node holds a few shells for the lab's life however many commands it runs.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import select
import shlex
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from podman.domain.containers import Container

from ..errors import VlanlbError

#: Read this much at a time from the socket.
_CHUNK = 65536
_STDOUT, _STDERR = 1, 2


# The descendants of a pid, by their parent pids in /proc/*/stat (comm may hold spaces, so
# the fields are read after its closing parenthesis), then SIGKILL for all of them.
_KILL_TREE = """
all={pid}; new={pid}
while [ -n "$new" ]; do
  next=
  for f in /proc/[0-9]*/stat; do
    read -r l < "$f" 2>/dev/null || continue
    set -- ${{l##*) }}
    for p in $new; do [ "$2" = "$p" ] && next="$next ${{l%% *}}"; done
  done
  all="$all $next"; new=$next
done
kill -9 $all 2>/dev/null; true
"""


class ShellUnavailable(VlanlbError):
    """No long-lived shell here (a URL we cannot hijack, no /bin/sh): use one exec each."""


class ShellTimeout(VlanlbError):
    """A command did not end in time; its shell was dropped (the command may still run)."""


class ShellBroken(VlanlbError):
    """The shell's session ended under a command (container stopped, service gone)."""


def socket_address(client: Any) -> tuple[int, Any] | None:
    """Where podman-py's API client talks to: (family, address) for unix or tcp, else None."""
    url = client.base_url
    if url.scheme == "http+unix":
        return socket.AF_UNIX, urllib.parse.unquote(url.netloc)
    if url.scheme == "http" and url.hostname:
        return socket.AF_INET, (url.hostname, url.port or 80)
    return None


class ExecShell:
    """One `sh` in a container, reading commands from a hijacked exec's stdin."""

    def __init__(self, container: Container, sock: socket.socket, pending: bytes) -> None:
        self.container = container
        self._sock = sock
        self._buffer = bytearray(pending)  # bytes read past the HTTP head or the last frame
        self.pid: int | None = None  # the shell's pid in the container

    @classmethod
    def open(cls, container: Container, shell: str = "/bin/sh") -> ExecShell:
        client: Any = container.client
        address = socket_address(client)
        if address is None:
            raise ShellUnavailable(f"cannot hijack an exec through {client.base_url.geturl()}")
        body = {
            "AttachStdin": True,
            "AttachStdout": True,
            "AttachStderr": True,
            "Cmd": [shell],
            "Tty": False,
        }
        created = client.post(f"/containers/{container.id}/exec", data=json.dumps(body))
        created.raise_for_status()  # podman-py's APIError, as exec_run raises it
        exec_id = created.json()["Id"]
        family, where = address
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(client.timeout or None)
        try:
            sock.connect(where)
            start = json.dumps({"Detach": False, "Tty": False}).encode()
            path = f"{client.path_prefix}exec/{exec_id}/start"
            sock.sendall(
                (
                    f"POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(start)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                ).encode()
                + start
            )
            head, pending = _read_head(sock)
        except OSError as exc:
            sock.close()
            raise ShellUnavailable(f"starting a shell in {container.name}: {exc}") from exc
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status and b" 200 " not in status:
            sock.close()
            raise ShellUnavailable(f"podman refused the exec stream: {status.decode()}")
        shell_ = cls(container, sock, pending)
        try:
            # The shell's own messages ("Terminated" for a command killed by a signal) go
            # nowhere; commands get the exec's stderr back as fd 2 from fd 3.
            sock.sendall(b"exec 3>&2 2>/dev/null\n")
            # It answers (it exists and reads stdin) with its pid, for _kill_tree.
            _, pid, _ = shell_._run_script("echo $$", timeout=10.0)
            shell_.pid = int(pid)
        except (OSError, ShellBroken, ShellTimeout, ValueError) as exc:
            shell_.close()
            raise ShellUnavailable(f"{shell} in {container.name} did not answer: {exc}") from exc
        return shell_

    def run(self, command: Sequence[str], timeout: float | None) -> tuple[int, bytes, bytes]:
        """Run one command; (exit status, stdout, stderr), byte for byte.

        Past `timeout` the command and everything it started are killed, with the shell,
        and ShellTimeout is raised."""
        line = shlex.join(command)
        try:
            return self._run_script(line, timeout)
        except ShellTimeout:
            self._kill_tree()
            raise

    def _run_script(self, script: str, timeout: float | None) -> tuple[int, bytes, bytes]:
        mark = secrets.token_hex(16).encode()
        framed = (
            f"( {script} 2>&3 3>&- ) </dev/null; "
            f"printf '\\n%s %d\\n' {mark.decode()} $?; printf '\\n%s\\n' {mark.decode()} >&3\n"
        )
        try:
            self._sock.sendall(framed.encode())
        except OSError as exc:
            raise ShellBroken(f"writing to the shell in {self.container.name}: {exc}") from exc
        deadline = None if timeout is None else time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        out_end = re.compile(rb"\n" + mark + rb" (\d+)\n\Z")
        err_end = b"\n" + mark + b"\n"
        rc: int | None = None
        err_done = False
        while rc is None or not err_done:
            stream, payload = self._frame(deadline, script)
            if stream == _STDOUT:
                out += payload
                if ended := out_end.search(out, max(0, len(out) - 64)):
                    rc = int(ended[1])
                    del out[ended.start() :]
            elif stream == _STDERR:
                err += payload
                if err.endswith(err_end):
                    err_done = True
                    del err[-len(err_end) :]
        return rc, bytes(out), bytes(err)

    def _frame(self, deadline: float | None, what: str) -> tuple[int, bytes]:
        """The next multiplexed frame: 8-byte header (stream, 0, 0, 0, size) and payload."""
        self._fill(8, deadline, what)
        stream, size = struct.unpack(">BxxxL", self._buffer[:8])
        self._fill(8 + size, deadline, what)
        payload = bytes(self._buffer[8 : 8 + size])
        del self._buffer[: 8 + size]
        return stream, payload

    def _fill(self, size: int, deadline: float | None, what: str) -> None:
        while len(self._buffer) < size:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ShellTimeout(self._late(what))
                self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(_CHUNK)
            except TimeoutError:
                raise ShellTimeout(self._late(what)) from None
            except OSError as exc:
                raise ShellBroken(f"`{what}`: {exc}") from exc
            if not chunk:
                raise ShellBroken(f"the shell in {self.container.name} ended during `{what}`")
            self._buffer += chunk

    def _late(self, what: str) -> str:
        return f"`{what}` in {self.container.name} did not end in time"

    def _kill_tree(self) -> None:
        """Kill the shell and its descendants (not the servers earlier commands left with
        PID 1), through an exec of its own: the shell is busy with the late command."""
        self.close()
        if self.pid is None:
            return
        script = _KILL_TREE.format(pid=self.pid)
        with contextlib.suppress(Exception):  # best effort: the container may be gone
            self.container.exec_run(["/bin/sh", "-c", script])

    def idle_and_alive(self) -> bool:
        """Nothing unread and not closed (a dead session's socket reads as EOF)."""
        if self._buffer:
            return False
        readable, _, _ = select.select([self._sock], [], [], 0)
        return not readable

    def close(self) -> None:
        """Close the stream: the shell reads EOF and exits after its current command."""
        self._sock.close()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError(f"the podman API closed the connection ({data[:200]!r})")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


class ShellPool:
    """A node's shells: one per command running at the same moment, reused afterwards."""

    def __init__(self, container: Container, shell: str = "/bin/sh") -> None:
        self.container = container
        self.shell = shell
        self._idle: list[ExecShell] = []
        self._lock = threading.Lock()
        self.opened = 0  # shells started over the pool's life (a measure of the processes)

    def run(self, command: Sequence[str], timeout: float | None) -> tuple[int, bytes, bytes]:
        shell = self._take()
        try:
            result = shell.run(command, timeout)
        except BaseException:
            shell.close()  # mid-command: its stream cannot be trusted any more
            raise
        with self._lock:
            self._idle.append(shell)
        return result

    def _take(self) -> ExecShell:
        with self._lock:
            while self._idle:
                shell = self._idle.pop()
                if shell.idle_and_alive():
                    return shell
                shell.close()
            self.opened += 1
        return ExecShell.open(self.container, self.shell)

    def open_idle(self, count: int) -> None:
        """Have `count` idle shells, the missing ones opened side by side now (each costs a
        podman exec start, 0.1-0.2 s) rather than by the commands that first need them."""
        with self._lock:
            missing = max(0, count - len(self._idle))
        if missing:
            with ThreadPoolExecutor(max_workers=missing) as pool:
                shells = [
                    pool.submit(ExecShell.open, self.container, self.shell) for _ in range(missing)
                ]
            opened = [f.result() for f in shells if f.exception() is None]
            with self._lock:
                self._idle.extend(opened)
                self.opened += len(opened)
            for failed in shells:
                if (exc := failed.exception()) is not None:
                    raise exc

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for shell in idle:
            shell.close()
