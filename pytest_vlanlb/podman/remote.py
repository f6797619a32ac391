"""A podman reached over ssh:// (a student's VM), through one ssh tunnel of our own.

First one bounded, non-interactive `ssh ... test -S SOCKET`, whose failure becomes one line
that names the fix (podman-py's own ssh transport would wait 300 s for a socket that never
comes after a wrong key or a dead host). Then `ssh -N -L` forwards the remote socket to a
local one, which podman-py uses as any unix:// URL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..errors import PreflightError
from ..util.processes import die_with_parent, stop_process
from ..util.waiting import wait_until

SSH_TIMEOUT = 10.0  # seconds for the whole check, connection included


def is_ssh(url: str) -> bool:
    return urllib.parse.urlparse(url).scheme in ("ssh", "http+ssh")


def default_identity() -> str | None:
    """The key podman's own CLI would use for a remote connection."""
    return os.environ.get("CONTAINER_SSHKEY") or None


def ssh_command(
    url: str, identity: str | None, *remote: str, options: tuple[str, ...] = ()
) -> list[str]:
    parsed = urllib.parse.urlparse(url)
    if not parsed.hostname:
        raise PreflightError(f"{url}: no host in the ssh:// URL (ssh://USER@HOST[:PORT]/SOCKET)")
    command = [
        "ssh",
        "-o", "BatchMode=yes",  # never prompt for a password or a host key
        "-o", f"ConnectTimeout={int(SSH_TIMEOUT / 2)}",
        "-o", "StrictHostKeyChecking=accept-new",  # first contact ok, a changed key is not
        *options,
    ]  # fmt: skip
    if parsed.port:
        command += ["-p", str(parsed.port)]
    if identity:
        command += ["-i", os.path.expanduser(identity)]
    user = f"{parsed.username}@" if parsed.username else ""
    return [*command, f"{user}{parsed.hostname}", *remote]


def check_ssh(url: str, identity: str | None) -> None:
    """Raise PreflightError, naming the fix, unless `url`'s host takes our key and has the
    socket; always within SSH_TIMEOUT seconds."""
    if shutil.which("ssh") is None:
        raise PreflightError("ssh:// needs the ssh client: `apt-get install openssh-client`")
    socket = urllib.parse.urlparse(url).path
    command = ssh_command(url, identity, "test", "-S", socket)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=SSH_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise PreflightError(
            f"{url}: no answer from the host within {SSH_TIMEOUT:.0f}s: check that it is up "
            "and that sshd listens on that port"
        ) from None
    error = " ".join(result.stderr.split())
    if result.returncode == 255:  # ssh's own failure: connection or authentication
        if "Permission denied" in error:
            key = identity or "the default keys, ssh-agent or ~/.ssh/config"
            raise PreflightError(
                f"{url}: the host refused the key ({key}): add its public key to the remote "
                "user's authorized_keys, or name the right one with --vlanlb-identity "
                "(or CONTAINER_SSHKEY)"
            )
        raise PreflightError(f"{url}: ssh could not connect: {error or 'no reason given'}")
    if result.returncode != 0:
        raise PreflightError(
            f"{url}: the host has no podman socket at {socket}: start the service there "
            f"(`podman system service --time=0 unix://{socket}` or `systemctl enable --now "
            "podman.socket`), or fix the path in the URL"
        )


@dataclass
class SshTunnel:
    """`ssh -N -L LOCAL:REMOTE`: the remote podman socket as a local one, for this run.

    podman-py's own ssh:// transport returned empty exec output against podman 4.3 here, and
    spawns ssh per connection; one tunnel of our own is both correct and cheaper.
    """

    process: subprocess.Popen[bytes]
    folder: Path

    @property
    def url(self) -> str:
        return f"unix://{self.folder / 'podman.sock'}"

    def close(self) -> None:
        stop_process(self.process, grace=5)
        shutil.rmtree(self.folder, ignore_errors=True)


def open_tunnel(url: str, identity: str | None) -> SshTunnel:
    check_ssh(url, identity)
    folder = Path(tempfile.mkdtemp(prefix="vlanlb-ssh-"))
    local = folder / "podman.sock"
    remote = urllib.parse.urlparse(url).path
    forward = ("-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:{remote}")
    command = ssh_command(url, identity, options=forward)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    tunnel = SshTunnel(process, folder)
    if not wait_until(
        local.exists, timeout=SSH_TIMEOUT, interval=0.05, give_up=lambda: process.poll() is not None
    ):
        said = ""
        if process.poll() is not None and process.stderr is not None:
            said = process.stderr.read().decode(errors="replace")
        tunnel.close()
        raise PreflightError(f"{url}: the ssh tunnel did not open: {said.strip() or 'timeout'}")
    return tunnel
