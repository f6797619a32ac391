"""Finding, or starting, the podman REST API that podman-py talks to.

When no socket answers, we start `podman system service` on a private socket with a
containers.conf of our own (through CONTAINERS_CONF, never by editing /etc): runc as the
runtime where crun cannot run containers (cgroup v1 hybrid hosts), ulimits that work
without CAP_SYS_RESOURCE, and the network backend named explicitly (podman otherwise takes
whatever it once wrote into its storage, often CNI). An API we did not start is taken
with whatever backend it has.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import podman

from ..errors import PreflightError
from ..util.owners import claim, dead_owners
from ..util.processes import die_with_parent, stop_process
from ..util.waiting import wait_until
from .remote import SshTunnel, default_identity, is_ssh, open_tunnel
from .settings import DEFAULT_ULIMITS, Value, containers_conf

DEFAULT_SOCKETS = ("unix:///run/podman/podman.sock",)
#: podman's two network backends; "auto" takes the service's own, else netavark if installed.
NETWORK_BACKENDS = ("netavark", "cni")
#: Where distributions put netavark, and CNI's macvlan plugin (podman's own search paths).
HELPER_DIRS = (
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
    "/usr/libexec/podman",
    "/usr/lib/podman",
)
CNI_DIRS = (
    "/usr/local/libexec/cni",
    "/usr/libexec/cni",
    "/usr/local/lib/cni",
    "/usr/lib/cni",
    "/opt/cni/bin",
)
#: The oldest podman whose REST API and macvlan handling this plugin was checked against.
MIN_PODMAN = (4, 3)


def answers(url: str, timeout: float = 3.0) -> bool:
    """True if a podman API answers at this unix:// or tcp:// URL."""
    try:
        with podman.PodmanClient(base_url=url, timeout=timeout) as client:
            return bool(client.ping())
    except Exception:
        return False


def installed_network_backends() -> list[str]:
    """The network backends this machine's podman can use, preferred first: netavark's
    binary, and CNI's plugins where podman was built with CNI."""
    found = []
    if any(Path(d, "netavark").is_file() for d in HELPER_DIRS):
        found.append("netavark")
    if any(Path(d, "macvlan").is_file() for d in CNI_DIRS) and podman_builds_cni():
        found.append("cni")
    return found


def cli_version() -> str:
    """This machine's podman version, from `podman --version` ("" without podman)."""
    try:
        out = subprocess.run(
            ["podman", "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return match.group(1) if match else ""


@functools.cache
def podman_builds_cni() -> bool:
    """Whether this machine's podman has the CNI backend. podman 5 builds may leave it out
    (Debian 13's, Fedora's: netavark is then the only backend); podman 4 always has it."""
    version = cli_version()
    if not version or int(version.split(".")[0]) < 5:
        return True
    probe = subprocess.run(
        ["podman", "--network-backend", "cni", "info", "--format", "{{.Host.NetworkBackend}}"],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "PATH": sbin_path()},
    )  # fmt: skip
    return probe.returncode == 0 or "cni support is not enabled" not in probe.stderr


def check_cni_built() -> None:
    """A usage error, before anything starts, when CNI is asked of a podman without it."""
    if not podman_builds_cni():
        raise PreflightError(
            f"--vlanlb-network-backend=cni: this podman ({cli_version()}) was built without "
            "CNI, as podman 5 usually is: use --vlanlb-network-backend=netavark (or auto)"
        )


def choose_network_backend(requested: str) -> str | None:
    """The backend an API we start should use: `requested`, or the best installed one.

    "default" leaves it to podman, as its CLI does (grading: the student's own podman).
    """
    if requested == "default":
        return None
    installed = installed_network_backends()
    if requested == "auto":
        if not installed:
            raise PreflightError(
                "podman has no network backend installed: run `vlanlb setup` "
                "(or `apt-get install netavark aardvark-dns`)"
            )
        return installed[0]
    if requested not in NETWORK_BACKENDS:
        raise PreflightError(
            f"unknown network backend {requested!r}: use auto, {' or '.join(NETWORK_BACKENDS)}"
        )
    if requested == "cni":
        check_cni_built()
    if requested not in installed:
        packages = {"netavark": "netavark aardvark-dns", "cni": "containernetworking-plugins"}
        package = packages[requested]
        raise PreflightError(
            f"the {requested} network backend is not installed: `apt-get install {package}` "
            "(`vlanlb setup` installs both), or use --vlanlb-network-backend=auto"
        )
    return requested


#: Seconds an exec session's conmon lingers after its command (podman's default: 300).
EXEC_EXIT_DELAY = 30


def api_conf(network_backend: str | None = None, stop_timeout: int | None = None) -> str:
    """The containers.conf of a podman API the plugin starts."""
    engine: dict[str, Value] = {}
    if shutil.which("runc") is not None:
        # crun refuses cgroup v1 hybrid hosts ("cgroups in hybrid mode not supported");
        # runc runs everywhere podman does, and podman-py cannot choose it per container.
        engine["runtime"] = "runc"
    if stop_timeout is not None:
        engine["stop_timeout"] = stop_timeout
    # Each API exec's conmon waits this long after the command ended before podman cleans
    # the session up (so that a client can still read its exit code): 300 s by default, which
    # leaves one process per command of the last five minutes. Our client reads the code
    # within milliseconds of the command's end; 30 s keeps a wide margin.
    engine["exit_command_delay"] = EXEC_EXIT_DELAY
    network = {"network_backend": network_backend} if network_backend else {}
    return containers_conf(
        {"containers": {"default_ulimits": DEFAULT_ULIMITS}, "engine": engine, "network": network}
    )


def api_version(url: str) -> str:
    """The podman version of the API at `url`, from its ping's Libpod-Api-Version header
    (milliseconds; /info takes 0.3-0.6 s, podman gathers storage and runtime facts for it)."""
    with podman.PodmanClient(base_url=url, timeout=30) as client:
        version = client.api.get("/_ping").headers.get("Libpod-Api-Version")
    return str(version) if version else api_facts(url)[0]


def api_facts(url: str) -> tuple[str, str]:
    """(podman version, network backend) of the API at `url`, from /info."""
    with podman.PodmanClient(base_url=url, timeout=30) as client:
        info: dict[str, Any] = client.info()  # type: ignore[no-untyped-call]
    host = info.get("host", {})
    version = str(info.get("version", {}).get("Version", "?"))
    return version, str(host.get("networkBackend") or "cni")  # podman < 4 knew only CNI


def check_version(version: str, url: str) -> None:
    try:
        numbers = tuple(int(part) for part in version.split("-")[0].split(".")[:2])
    except ValueError:
        return  # a development build: let it try
    if numbers < MIN_PODMAN:
        raise PreflightError(
            f"podman {version} at {url} is too old: pytest-vlanlb needs podman "
            f"{'.'.join(map(str, MIN_PODMAN))} or newer (Debian 12, Ubuntu 24.04, Fedora 37+)"
        )


@dataclass
class PodmanApi:
    """A reachable podman API; `process` is set when we started it (and must stop it)."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    log: Path | None = field(default=None)
    version: str = ""
    _network_backend: str = ""  # netavark or cni: the one we named, or as the API reports it
    started_with: str | None = None  # the backend we asked for, when we started it
    tunnel: SshTunnel | None = None  # for an ssh:// URL: the local end we talk to

    @property
    def network_backend(self) -> str:
        """The service's network backend (asked for once, when first needed: /info is slow)."""
        if not self._network_backend:
            self._network_backend = api_facts(self.api_url)[1]
        return self._network_backend

    @property
    def api_url(self) -> str:
        """Where podman-py connects: the URL itself, or our ssh tunnel's local socket."""
        return self.tunnel.url if self.tunnel is not None else self.url

    def revive(self) -> bool:
        """Start our own API again after it died (same backend); False if not ours."""
        if self.process is None:
            return False
        self.stop()
        fresh = start_api(network_backend=self.started_with)
        self.url, self.process, self.workdir, self.log = (
            fresh.url,
            fresh.process,
            fresh.workdir,
            fresh.log,
        )
        return True

    def describe(self) -> str:
        who = "started for this run" if self.process is not None else "running"
        return f"podman {self.version}, {self.network_backend} backend, {who} at {self.url}"

    def alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return False
        if self.tunnel is not None and self.tunnel.process.poll() is not None:
            return False
        return answers(self.api_url, 3.0)

    def client(self, timeout: float = 120.0) -> podman.PodmanClient:
        return podman.PodmanClient(base_url=self.api_url, timeout=timeout)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.tunnel is not None:
            self.tunnel.close()


def connect(
    url: str | None = None,
    *,
    network_backend: str = "auto",
    identity: str | None = None,
    timeout: float = 20.0,
) -> PodmanApi:
    """The API at `url`, else a running default one, else one we start.

    `backend` other than auto: a running API is used only if it has that backend;
    otherwise we start our own with it (both see the same containers and images). "default":
    any running API, else one of ours with podman's own choice of backend.
    """
    identity = identity or default_identity()
    if url:
        return _checked(_reach(url, identity), network_backend)
    for candidate in (os.environ.get("CONTAINER_HOST"), *DEFAULT_SOCKETS):
        if candidate and (is_ssh(candidate) or answers(candidate)):
            api = _checked(_reach(candidate, identity), "auto")
            if network_backend in ("auto", "default", api.network_backend):
                return api
            api.stop()  # not the backend asked for: close what reaching it opened
    return _checked(
        start_api(network_backend=choose_network_backend(network_backend), timeout=timeout),
        network_backend,
    )


def _reach(url: str, identity: str | None) -> PodmanApi:
    api = PodmanApi(url)
    if is_ssh(url):
        api.tunnel = open_tunnel(url, identity)  # says what is wrong, within seconds
    if not answers(api.api_url, 10.0):
        api.stop()
        raise PreflightError(
            f"no podman API answers at {url}: start it with "
            f"`podman system service --time=0 {url}`, check the address, or drop --vlanlb-url"
        )
    return api


def _checked(api: PodmanApi, network_backend: str) -> PodmanApi:
    try:
        api.version = api_version(api.api_url)
        api._network_backend = api.started_with or ""
        check_version(api.version, api.url)
        if network_backend not in ("auto", "default", api.network_backend):
            raise PreflightError(
                f"the podman API at {api.url} uses the {api.network_backend} "
                f"network backend, not {network_backend}: drop --vlanlb-url to let the plugin "
                "start its own, or drop --vlanlb-network-backend"
            )
    except BaseException:
        api.stop()
        raise
    return api


WORKDIR_PREFIX = "vlanlb-podman-"


def remove_stale_workdirs(base: Path, prefix: str = WORKDIR_PREFIX) -> None:
    """Folders of runs that died (a service's died with it: see below)."""
    for workdir in dead_owners(base, f"{prefix}*"):
        shutil.rmtree(workdir, ignore_errors=True)


def sbin_path() -> str:
    """$PATH with the sbin folders: netavark, CNI and the documents' commands run iptables
    and ip from there, and a restricted PATH (sudo, cron) lacks them."""
    path = os.environ.get("PATH", "").split(":")
    path += [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in path]
    return ":".join(filter(None, path))


def start_api(*, network_backend: str | None = None, timeout: float = 20.0) -> PodmanApi:
    binary = shutil.which("podman")
    if binary is None:
        raise PreflightError(
            "podman is not installed: run `vlanlb setup` (or `apt-get install podman runc`)"
        )
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    remove_stale_workdirs(base)
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base))
    claim(workdir)
    conf = workdir / "containers.conf"
    conf.write_text(api_conf(network_backend))
    socket = workdir / "podman.sock"
    log = workdir / "api.log"
    # netavark and CNI run iptables from the PATH; a restricted PATH (sudo, cron) lacks sbin.
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "PATH": sbin_path()}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "system", "service", "--time=0", f"unix://{socket}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,  # even by SIGKILL
        )
    api = PodmanApi(f"unix://{socket}", process, workdir, log, started_with=network_backend)
    up = wait_until(
        lambda: answers(api.url, 1.0),
        timeout=timeout,
        interval=0.1,
        give_up=lambda: process.poll() is not None,  # it exited: its log says why
    )
    if not up:
        detail = log.read_text(errors="replace")[-2000:]
        api.stop()
        raise PreflightError(
            f"`podman system service` did not come up within {timeout:.0f}s. Its log:\n{detail}"
        )
    return api


@contextlib.contextmanager
def podman_api(
    url: str | None, network_backend: str = "auto", identity: str | None = None
) -> Iterator[PodmanApi]:
    api = connect(url, network_backend=network_backend, identity=identity)
    try:
        yield api
    finally:
        api.stop()
