"""Starting a document's commands inside its sandbox, quickly: one gate that stays (`gate
serve`) starts each command under the whole confinement, and this side holds its pipes, its
exit status and the means to end it, as `subprocess.Popen` would."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any

from ..errors import PreflightError
from .confinement import PROCESS_LIMIT, Cgroups, gate_command


class SandboxEnded(PreflightError):
    """The sandbox cannot take commands any more (its init has ended)."""


class Launcher:
    """The gate that stays: started once per sandbox, ended with it (or with this process)."""

    def __init__(self, pidfd: int, cgroups: Cgroups) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._channel = ours
        self._ended: dict[int, int] = {}  # pid -> exit status, read before it was asked for
        command = gate_command(
            "serve",
            str(pidfd),
            str(PROCESS_LIMIT),
            *cgroups.procs,
            "--",
            str(theirs.fileno()),
            str(os.getpid()),
        )
        self._gate = subprocess.Popen(
            command,
            pass_fds=(pidfd, theirs.fileno()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        theirs.close()

    def start(self, argv: Sequence[str], env: Mapping[str, str]) -> Started:
        """`argv` run inside, its stdin empty, its stdout and stderr pipes to read."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        with open(os.devnull, "rb") as stdin:
            message = json.dumps({"run": list(argv), "env": dict(env)}).encode()
            try:
                socket.send_fds(self._channel, [message], [stdin.fileno(), out_w, err_w])
            except OSError as exc:
                for fd in (out_r, out_w, err_r, err_w):
                    os.close(fd)
                raise SandboxEnded(f"the document sandbox's gate is gone ({exc})") from None
        os.close(out_w)
        os.close(err_w)
        reply = self._receive(lambda m: "pid" in m or "error" in m)
        if "error" in reply:
            os.close(out_r)
            os.close(err_r)
            raise SandboxEnded(reply["error"])
        return Started(self, reply["pid"], os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))

    def wait(self, pid: int) -> int:
        if pid not in self._ended:
            self._receive(lambda m: m.get("exit") == pid)
        return self._ended.pop(pid)

    def kill(self, pid: int) -> None:
        """End the command's process group (the gate knows whether it still is that)."""
        with contextlib.suppress(OSError):
            self._channel.send(json.dumps({"kill": pid}).encode())

    def _receive(self, wanted: Any) -> dict[str, Any]:
        while True:
            raw = self._channel.recv(1 << 16)
            if not raw:
                assert self._gate.stderr is not None
                detail = self._gate.stderr.read().decode(errors="replace").strip()
                raise SandboxEnded(f"the document sandbox's gate ended: {detail}")
            message = json.loads(raw)
            if "exit" in message:
                self._ended[message["exit"]] = message["status"]
            if wanted(message):
                return dict(message)

    def close(self) -> None:
        self._channel.close()  # the gate ends its commands and itself
        try:
            self._gate.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._gate.kill()
            self._gate.wait()
        if self._gate.stderr is not None:
            self._gate.stderr.close()


class Started:
    """A command started by the launcher: what `subprocess.Popen` offers that the runner uses."""

    def __init__(self, launcher: Launcher, pid: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self._launcher = launcher
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self._launcher.wait(self.pid)
        return self.returncode

    def kill(self) -> None:
        """End it and every process of its group (it is a session of its own)."""
        if self.returncode is None:
            self._launcher.kill(self.pid)

    def communicate(self) -> tuple[bytes, bytes]:
        """The rest of its output (both pipes at once: neither may fill), then its status."""
        read = {self.stdout.fileno(): bytearray(), self.stderr.fileno(): bytearray()}
        with selectors.DefaultSelector() as selector:
            for fd in read:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                for key, _ in selector.select():
                    if chunk := os.read(key.fd, 65536):
                        read[key.fd] += chunk
                    else:
                        selector.unregister(key.fd)
        self.wait()
        return bytes(read[self.stdout.fileno()]), bytes(read[self.stderr.fileno()])

    def __enter__(self) -> Started:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stdout.close()
        self.stderr.close()
        if self.returncode is None:  # left early (an error): it must not outlive its step
            self.kill()
        self.wait()
