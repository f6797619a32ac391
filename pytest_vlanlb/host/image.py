"""The node image: built offline from Debian packages, tagged by a hash of its recipe.

No container registry is reachable on the machines this runs on, so the default image is a
root filesystem made by mmdebstrap from Debian's package archive and imported through the
podman API. Its tag is a hash of the recipe: it is built once and reused until the recipe
changes. Users with a registry can pass any image with the tools in REQUIRED_TOOLS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import podman
import podman.errors

from ..errors import PreflightError
from ..podman.settings import ULIMITS
from .setup import podman_chooses_its_network_backend

REPOSITORY = "localhost/vlanlb-node"

#: What each role runs, as the workshop does (model/commands.py's ALPINE_PACKAGES names the
#: alpine package of each).
REQUIRED_TOOLS: dict[str, tuple[str, ...]] = {
    "router": ("ip", "iptables", "ping"),
    "client": ("ip", "ping", "curl"),
    "pod": ("ip", "ping", "nc", "awk"),
}


@dataclass(frozen=True)
class ImageRecipe:
    suite: str = "bookworm"
    variant: str = "apt"
    packages: tuple[str, ...] = (
        "iproute2",
        "iptables",
        "nftables",
        "curl",
        "iputils-ping",
        "busybox",
    )
    # busybox's nc behaves as alpine's (the workshop's `nc -l -p 80` loop); `sh` stays dash,
    # so the plugin runs busybox sh explicitly where `echo -e` matters.
    hooks: tuple[str, ...] = ('ln -sf /bin/busybox "$1/usr/local/bin/nc"',)
    dpkg_excludes: tuple[str, ...] = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*")
    cmd: tuple[str, ...] = ("sleep", "infinity")

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.digest}"

    def mmdebstrap_command(self, output: Path) -> list[str]:
        command = [
            "mmdebstrap",
            f"--variant={self.variant}",
            f"--include={','.join(self.packages)}",
        ]
        command += [f"--dpkgopt=path-exclude={pattern}" for pattern in self.dpkg_excludes]
        command += [f"--customize-hook={hook}" for hook in self.hooks]
        command += [self.suite, str(output)]
        return command


Progress = Callable[[str], None]


def ensure_image(
    client: podman.PodmanClient, recipe: ImageRecipe, progress: Progress = print
) -> str:
    """The recipe's image tag, building and importing it first if it is not there yet."""
    if client.images.exists(recipe.tag):
        return recipe.tag
    if shutil.which("podman") is not None:
        # The first image in the host's storage would make its podman choose CNI for good.
        progress(podman_chooses_its_network_backend())
    if shutil.which("mmdebstrap") is None:
        raise PreflightError(
            f"the node image {recipe.tag} is not built and mmdebstrap is missing: run "
            "`vlanlb setup` (or `apt-get install mmdebstrap`), or pass --vlanlb-image"
        )
    with tempfile.TemporaryDirectory(prefix="vlanlb-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        progress(f"building node image {recipe.tag} from Debian {recipe.suite} packages")
        command = recipe.mmdebstrap_command(rootfs)
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            tail: list[str] = []
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip()
                tail = [*tail[-30:], line]
                if line.startswith(("I:", "W:", "E:")):
                    progress(f"  {line}")
        if process.returncode != 0:
            raise PreflightError(
                "building the node image failed (mmdebstrap exit "
                f"{process.returncode}); its last lines:\n" + "\n".join(tail)
            )
        progress(f"importing {rootfs.stat().st_size // 2**20} MiB root filesystem into podman")
        import_rootfs(client, rootfs, recipe.tag, recipe.cmd)
    _remove_stale_builds(client, recipe.tag, progress)
    progress(f"node image {recipe.tag} ready")
    return recipe.tag


def _remove_stale_builds(client: podman.PodmanClient, current: str, progress: Progress) -> None:
    """Images of older recipes are never used again: free their space."""
    for image in client.images.list(filters={"reference": REPOSITORY}):
        for tag in image.tags:
            if tag.startswith(f"{REPOSITORY}:") and tag != current:
                with contextlib.suppress(podman.errors.APIError):
                    client.images.remove(tag)
                    progress(f"removed image {tag} of an older recipe")


def import_rootfs(
    client: podman.PodmanClient, rootfs: Path, tag: str, cmd: tuple[str, ...]
) -> None:
    # podman-py has no wrapper for /images/import; the libpod endpoint takes the tar as body.
    with rootfs.open("rb") as body:
        response = client.api.post(
            "/images/import",
            params={"reference": tag, "changes": [f"CMD {json.dumps(list(cmd))}"]},
            data=body,
            headers={"Content-Type": "application/x-tar"},
        )
    if response.status_code != 200:
        raise PreflightError(f"importing the node image failed: {response.text.strip()}")


def require_image(client: podman.PodmanClient, reference: str) -> str:
    if not client.images.exists(reference):
        raise PreflightError(
            f"image {reference!r} is not in podman's store and no registry can be reached "
            f"here: `podman pull {reference}` where a registry answers, or drop --vlanlb-image "
            "to use the built-in node image"
        )
    return reference


STANDIN_REPOSITORY = "localhost/vlanlb-alpine"
#: Where alpine's busybox differs from Debian's tools in what the documents show or need:
#: `sh` (its `echo -e`), `ping` (its output format). Debian's busybox provides both applets.
STANDIN_LINKS: tuple[tuple[str, str], ...] = (("/bin/busybox", "/bin/sh"),)
#: The stand-in's `ping`. Alpine patches busybox's ping to fall back to an ICMP datagram
#: socket when it may not open a raw one; podman 5 no longer grants NET_RAW by default, so on
#: podman 5 (which also sets net.ipv4.ping_group_range to allow root's group) alpine's ping
#: still works and Debian's busybox ping ("permission denied (are you root?)") would not.
#: Where alpine's would fall back, this runs iputils' ping, which falls back the same way (a
#: copy without its file capability, which an exec without NET_RAW refuses), and writes its
#: lines as busybox's. Otherwise it is busybox's own ping. Either way its lines come out as
#: they happen (line-buffered, as on a terminal; busybox's awk, which reads a line at a time),
#: not all at its end: document mode stops a ping once what it has shown settles the
#: document's promise (document/settling.py).
STANDIN_PING = """#!/bin/busybox sh
# alpine's ping, as vlanlb's stand-in for alpine has it (see pytest_vlanlb/image.py)
lines=; if command -v stdbuf >/dev/null; then lines="stdbuf -oL"; fi
effective=$(awk '/^CapEff/ {print $2}' /proc/self/status)
datagrams=$(awk -v g="$(id -g)" '{print (g >= $1 && g <= $2)}' /proc/sys/net/ipv4/ping_group_range)
if [ $(( 0x$effective >> 13 & 1 )) = 1 ] || [ "$datagrams" != 1 ]; then
    exec $lines /bin/busybox ping "$@"  # a raw socket, or none: busybox's own words either way
fi
set -o pipefail
$lines /usr/local/lib/vlanlb/ping "$@" | /bin/busybox awk '
/^$/ { blank++; next }  # iputils ends with one when no reply came; busybox does not
blank { for (; blank > 0; blank--) print "" }
/^PING / {
    size = $4; sub(/\\(.*/, "", size)
    print $1 " " $2 " " $3 ": " size " data bytes"; fflush(); next
}
/ bytes from .* icmp_seq=/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^icmp_seq=/) { split($i, s, "="); $i = "seq=" (s[2] - 1) }
    print; fflush(); next
}
/^From / { next }
/ packets transmitted, / {
    loss = ""; for (i = 1; i <= NF; i++) if ($i ~ /%$/) loss = $i
    print $1 " packets transmitted, " $4 " packets received, " loss " packet loss"; fflush(); next
}
/^rtt / {
    split($4, v, "/"); print "round-trip min/avg/max = " v[1] "/" v[2] "/" v[3] " ms"
    fflush(); next
}
{ print; fflush() }'
[ $? = 0 ] || exit 1
"""


def standin_tag(base: str) -> str:
    recipe = json.dumps([base, STANDIN_LINKS, STANDIN_PING])
    return f"{STANDIN_REPOSITORY}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def standin_script() -> str:
    """What the stand-in's derivation runs in the base image. Where the base has no iputils
    ping to fall back on, `ping` is busybox's alone, as before podman 5."""
    links = [f"ln -sf {target} {link}" for target, link in STANDIN_LINKS]
    ping = (
        "if [ -x /usr/bin/ping ] && ! [ -L /usr/bin/ping ]; then "
        "mkdir -p /usr/local/lib/vlanlb && cp /usr/bin/ping /usr/local/lib/vlanlb/ping && "
        "cat > /usr/local/bin/ping <<'VLANLB_PING' && chmod 755 /usr/local/bin/ping; "
        "else ln -sf /bin/busybox /usr/local/bin/ping; fi\n" + STANDIN_PING + "VLANLB_PING\n"
    )
    return " && ".join(links) + " && " + ping


def ensure_alpine_standin(
    client: podman.PodmanClient, base: str, progress: Progress = print
) -> str:
    """The image that stands in for `alpine` in document mode: the node image whose `sh` and
    `ping` are busybox's, as on alpine. Derived once per base image (a commit, about 1 s)."""
    tag = standin_tag(base)
    if client.images.exists(tag):
        return tag
    progress(f"deriving {tag} (alpine stand-in) from {base}")
    container = client.containers.create(
        base,
        command=["/bin/busybox", "sh", "-c", standin_script()],
        ulimits=ULIMITS,
        network_mode="none",
    )
    try:
        container.start()
        status = container.wait()
        if status != 0:
            raise PreflightError(f"deriving the alpine stand-in image failed (exit {status})")
        repository, _, version = tag.rpartition(":")
        container.commit(repository, version, changes=[f"CMD {json.dumps(['sleep', 'infinity'])}"])
    finally:
        with contextlib.suppress(podman.errors.APIError):
            container.remove(force=True)
    for image in client.images.list(filters={"reference": STANDIN_REPOSITORY}):
        for old in image.tags:
            if old.startswith(f"{STANDIN_REPOSITORY}:") and old != tag:
                with contextlib.suppress(podman.errors.APIError):
                    client.images.remove(old)
    return tag


def node_image(client: podman.PodmanClient, image: str | None, progress: Progress) -> str:
    """The image the nodes run: the user's (`--vlanlb-image`, checked to exist) or the
    built-in one (built once per recipe)."""
    return require_image(client, image) if image else ensure_image(client, ImageRecipe(), progress)
