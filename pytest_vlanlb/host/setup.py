"""`vlanlb setup`: make a host ready for the plugin, as an installed user runs it, changing
only what it says.

The system packages the plugin runs with (through apt, where the host has it), document mode's
own crun (unpacked from Debian's package, not installed: an installed crun would become the
host's default OCI runtime, and on cgroup-v1 hybrid hosts podman's `run` would then fail), and
podman's own choice of network backend made before any image is stored (podman chooses CNI
for good when it first looks at a storage that holds images). The images follow (`cli`).
Idempotent: a second run checks and does (almost) nothing. `--no-packages` is for hosts whose
administrator installs packages: it only checks that the tools are there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import PreflightError

#: Debian package -> why the plugin needs it.
PACKAGES: dict[str, str] = {
    "podman": "the lab's engine (rootful)",
    "runc": "the OCI runtime the plugin's own podman API selects (crun fails on cgroup v1 "
    "hybrid hosts)",
    "libyajl2": "the library of the crun that document mode unpacks for its sandbox",
    "netavark": "podman's default network backend",
    "aardvark-dns": "netavark's DNS",
    "nftables": "netavark 1.12 and newer write their rules with nft",
    "containernetworking-plugins": "podman's CNI backend, which many users' podman is on",
    "mmdebstrap": "builds the node image from Debian packages (no registry needed)",
    "iproute2": "the lab's host wires (ip)",
    "iptables": "podman's NAT for the uplink",
    "util-linux": "nsenter and unshare (nodes, document mode's sandbox)",
    "ca-certificates": "mmdebstrap reaches Debian's package archive",
    "openssh-client": "grading over ssh:// (podman-py's ssh transport)",
    "graphviz": "draws the lab (`vlanlb graph`)",
}
#: Tool -> the Debian package that provides it: what `--no-packages` checks, and the one
#: table every "install X" message of the plugin reads.
TOOLS: dict[str, str] = {
    "podman": "podman",
    "runc": "runc",
    "ip": "iproute2",
    "iptables": "iptables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "mmdebstrap": "mmdebstrap",
}
#: Tools only some commands need: named in their messages, not required by `check_tools`.
OPTIONAL_TOOLS: dict[str, str] = {"dot": "graphviz"}


def missing_tools(*tools: str) -> str:
    """The message for the tools of `tools` that are not on PATH ("" when none is)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return ""
    packages = " ".join(sorted({{**TOOLS, **OPTIONAL_TOOLS}[t] for t in missing}))
    return (
        f"missing: {', '.join(missing)}: install {packages} (`vlanlb setup` does it on a host "
        "with apt)"
    )


Progress = Callable[[str], None]


def missing_packages() -> list[str]:
    """The packages dpkg does not list as installed (all of them where there is no dpkg)."""
    missing = []
    for package in PACKAGES:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if "ok installed" not in status:
            missing.append(package)
    return missing


def install_packages(progress: Progress) -> str:
    """The missing packages installed with apt; what was done, in one line."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        raise PreflightError(
            "this host has no apt: install these packages (or their counterparts) with its "
            f"package manager, then run `vlanlb setup --no-packages`: {' '.join(PACKAGES)}"
        )
    missing = missing_packages()
    if not missing:
        return "system packages: all present"
    progress(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
    ):
        if subprocess.run(command, env=env, check=False).returncode != 0:
            raise PreflightError(f"`{' '.join(command[:2])}` failed (see above)")
    return f"installed with apt: {' '.join(missing)}"


def check_tools() -> None:
    """Every tool the plugin runs, or one error naming the packages that provide the missing."""
    if missing := missing_tools(*TOOLS):
        raise PreflightError(missing)


#: Where document mode's own crun lives: under /usr, which its sandbox sees (read-only).
PRIVATE_CRUN = Path("/usr/local/lib/vlanlb/crun/crun")


def sandbox_crun() -> str | None:
    """The crun document mode's sandbox runs: its own (`vlanlb setup` unpacks it), else the
    host's where the administrator installed one; None where there is neither."""
    if os.access(PRIVATE_CRUN, os.X_OK):
        return str(PRIVATE_CRUN)
    return shutil.which("crun")


def unpack_crun(progress: Progress) -> str:
    """Debian's crun, unpacked into PRIVATE_CRUN (once; its version written beside it)."""
    if os.access(PRIVATE_CRUN, os.X_OK):
        return f"document mode's crun: {PRIVATE_CRUN} (present)"
    with tempfile.TemporaryDirectory(prefix="vlanlb-crun-") as tmp:
        download = ["apt-get", "download", "-q", "crun"]
        fetched = subprocess.run(download, cwd=tmp, capture_output=True, text=True)
        if fetched.returncode != 0:  # package lists never fetched, or stale: once more after
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            fetched = subprocess.run(download, cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("crun_*.deb"))
        if fetched.returncode != 0 or not debs:
            raise PreflightError(
                f"`apt-get download crun` failed: {fetched.stderr.strip()[-500:]} (install "
                "crun yourself, or run `apt-get update` first)"
            )
        unpacked = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True)
        PRIVATE_CRUN.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(unpacked / "usr" / "bin" / "crun", PRIVATE_CRUN)
        (PRIVATE_CRUN.parent / "VERSION").write_text(debs[0].name + "\n")
    progress(f"unpacked {debs[0].name} into {PRIVATE_CRUN.parent} for document mode's sandbox")
    return f"document mode's crun: {PRIVATE_CRUN} ({debs[0].name}, unpacked, not installed)"


def podman_chooses_its_network_backend() -> str:
    """Let the host's own podman choose its network backend now, as on a fresh install, if it
    has not chosen yet: podman chooses once, when it first looks, and chooses CNI where its
    storage already holds an image. Said in one line."""
    chosen = graph_root() / "defaultNetworkBackend"
    if chosen.exists():
        return f"podman's network backend: {chosen.read_text().strip()} (chosen before, unchanged)"
    subprocess.run(["podman", "network", "ls", "-q"], capture_output=True, check=False)
    seen = chosen.read_text().strip() if chosen.exists() else "podman's own default"
    return f"podman's network backend: {seen} (podman chose it now, before any image was stored)"


_GRAPHROOT = re.compile(r'^\s*graphroot\s*=\s*"([^"]+)"', re.MULTILINE)


def graph_root() -> Path:
    """Where the host's rootful podman keeps its storage, read from storage.conf as podman
    reads it (asking podman would make it choose its network backend first)."""
    for conf in (
        os.environ.get("CONTAINERS_STORAGE_CONF", ""),
        "/etc/containers/storage.conf",
        "/usr/share/containers/storage.conf",
    ):
        if conf and Path(conf).is_file():
            found = _GRAPHROOT.search(Path(conf).read_text(errors="replace"))
            if found:
                return Path(found[1])
    return Path("/var/lib/containers/storage")
