"""`vlanlb setup`: make a host ready for the plugin, as an installed user runs it.

The system packages the plugin runs with (through apt, where the host has it), then the images
it builds once: the node image, document mode's alpine stand-in and its sandboxes' read-only
image store. Idempotent: a second run checks and does (almost) nothing. `--no-packages` is
for hosts whose administrator installs packages: it only checks that the tools are there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from ..errors import PreflightError

#: Debian package -> why the plugin needs it.
PACKAGES: dict[str, str] = {
    "podman": "the lab's engine (rootful)",
    "runc": "the OCI runtime the plugin's own podman API selects (crun fails on cgroup v1 "
    "hybrid hosts)",
    "crun": "document mode's sandbox runs containers without cgroups, which needs crun",
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
}
#: Tool -> the Debian package that provides it: what `--no-packages` checks, and the one
#: table every "install X" message of the plugin reads.
TOOLS: dict[str, str] = {
    "podman": "podman",
    "runc": "runc",
    "crun": "crun",
    "ip": "iproute2",
    "iptables": "iptables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "mmdebstrap": "mmdebstrap",
}


def missing_tools(*tools: str) -> str:
    """The message for the tools of `tools` that are not on PATH ("" when none is)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return ""
    packages = " ".join(sorted({TOOLS[t] for t in missing}))
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


def install_packages(progress: Progress) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        raise PreflightError(
            "this host has no apt: install these packages (or their counterparts) with its "
            f"package manager, then run `vlanlb setup --no-packages`: {' '.join(PACKAGES)}"
        )
    missing = missing_packages()
    if not missing:
        progress("system packages present")
        return
    progress(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
    ):
        if subprocess.run(command, env=env, check=False).returncode != 0:
            raise PreflightError(f"`{' '.join(command[:2])}` failed (see above)")


def check_tools() -> None:
    """Every tool the plugin runs, or one error naming the packages that provide the missing."""
    if missing := missing_tools(*TOOLS):
        raise PreflightError(missing)
