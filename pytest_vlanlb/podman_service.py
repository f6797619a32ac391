"""Finding, or starting, the podman REST API service that podman-py talks to.

When no socket answers, we start `podman system service` on a private socket with a
containers.conf of our own (through CONTAINERS_CONF, never by editing /etc): runc as the
runtime where crun cannot run containers (cgroup v1 hybrid hosts), and ulimits that work
without CAP_SYS_RESOURCE.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import podman

from .errors import PreflightError
from .naming import owner_is_alive, owner_token
from .waiting import wait_until

DEFAULT_SOCKETS = ("unix:///run/podman/podman.sock",)
#: Rootful podman raises these limits by default; without CAP_SYS_RESOURCE that fails.
ULIMITS = [
    {"Name": "nofile", "Soft": 1024, "Hard": 1024},
    {"Name": "nproc", "Soft": 1024, "Hard": 1024},
]


def answers(url: str, timeout: float = 3.0) -> bool:
    try:
        with podman.PodmanClient(base_url=url, timeout=timeout) as client:
            return bool(client.ping())
    except Exception:
        return False


def containers_conf() -> str:
    lines = ["[containers]", 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]']
    if shutil.which("runc") is not None:
        # crun refuses cgroup v1 hybrid hosts ("cgroups in hybrid mode not supported");
        # runc runs everywhere podman does, and podman-py cannot choose it per container.
        lines += ["[engine]", 'runtime = "runc"']
    return "\n".join(lines) + "\n"


@dataclass
class PodmanService:
    """A reachable podman API; `process` is set when we started it (and must stop it)."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    log: Path | None = field(default=None)

    def client(self, timeout: float = 120.0) -> podman.PodmanClient:
        return podman.PodmanClient(base_url=self.url, timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def connect(url: str | None = None, *, timeout: float = 20.0) -> PodmanService:
    """The service at `url`, else a running default one, else one we start."""
    if url:
        if not answers(url):
            raise PreflightError(
                f"no podman API answers at {url}: start it with "
                f"`podman system service --time=0 {url}` or drop --vlanlb-url"
            )
        return PodmanService(url)
    for candidate in (os.environ.get("CONTAINER_HOST"), *DEFAULT_SOCKETS):
        if candidate and answers(candidate):
            return PodmanService(candidate)
    return start_service(timeout=timeout)


WORKDIR_PREFIX = "vlanlb-podman-"


def remove_stale_workdirs(base: Path) -> None:
    """Service folders of runs that died (their service died with them: see below)."""
    for workdir in base.glob(f"{WORKDIR_PREFIX}*"):
        try:
            owner = (workdir / "owner").read_text()
        except OSError:
            continue
        if not owner_is_alive(owner):
            shutil.rmtree(workdir, ignore_errors=True)


def _die_with_parent() -> None:
    """Let the kernel stop our service when the pytest process dies, even by SIGKILL."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_service(*, timeout: float = 20.0) -> PodmanService:
    binary = shutil.which("podman")
    if binary is None:
        raise PreflightError(
            "podman is not installed: run scripts/setup (or `apt-get install podman runc`)"
        )
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    remove_stale_workdirs(base)
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base))
    (workdir / "owner").write_text(owner_token())
    conf = workdir / "containers.conf"
    conf.write_text(containers_conf())
    socket = workdir / "podman.sock"
    log = workdir / "service.log"
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "system", "service", "--time=0", f"unix://{socket}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    service = PodmanService(f"unix://{socket}", process, workdir, log)
    up = wait_until(
        lambda: answers(service.url, 1.0),
        timeout=timeout,
        interval=0.1,
        give_up=lambda: process.poll() is not None,  # it exited: its log says why
    )
    if not up:
        detail = log.read_text(errors="replace")[-2000:]
        service.stop()
        raise PreflightError(
            f"`podman system service` did not come up within {timeout:.0f}s. Its log:\n{detail}"
        )
    return service
