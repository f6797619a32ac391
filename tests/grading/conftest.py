"""Student-like labs, built the way a student types the workshop (podman API calls that
mirror `podman run`/`podman network connect`/`podman exec`), never with the plugin's layers.

Images: no registry here, so "alpine" is a busybox-only image from Debian's static busybox
(sh, ping, nc, wget, ip, timeout as on alpine; no curl); the router uses the node image, as a
student's router has iptables installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_vlanlb.host.image import ImageRecipe, import_rootfs
from pytest_vlanlb.host.naming import RunNames
from pytest_vlanlb.host.preflight import preflight
from pytest_vlanlb.host.sweep import remove_leftovers, remove_run
from pytest_vlanlb.host.wires import WireKind, create_wires
from pytest_vlanlb.podman.api import podman_api
from pytest_vlanlb.podman.lookup import container_named, network_named
from pytest_vlanlb.podman.settings import ULIMITS

from .workshop import ALL_VARIANTS, VARIANTS, Variant

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = ROOT / ".cache" / "busybox-static" / "bin" / "busybox"


def busybox_rootfs() -> bytes:
    """A root filesystem with a static busybox and its applets linked in /bin."""
    if not BUSYBOX.exists():
        pytest.fail(f"{BUSYBOX} is missing: run scripts/setup")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "usr", "usr/bin"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), "bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


def run_pytest(cwd, *args, timeout=600, env=None):
    """`pytest` in a subprocess, as an instructor would run it. The words the tests look for
    are English: the locale is pinned, so that a Japanese one (the grader's default
    language there) does not change them; the Japanese run says --vlanlb-lang ja."""
    env = {**(os.environ if env is None else env), "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def vlanlb_podman(vlanlb_config):
    """netavark, whatever the session's backend: student-like labs are typed as the workshop,
    with the gateway as the router's static address, which CNI's IPAM refuses."""
    preflight()
    with podman_api(vlanlb_config.url, "netavark", vlanlb_config.identity) as api:
        yield api


@pytest.fixture(scope="session")
def alpine_like_image(vlanlb_podman, tmp_path_factory):
    if not BUSYBOX.exists():
        pytest.fail(f"{BUSYBOX} is missing: run scripts/setup")
    client = vlanlb_podman.client()
    digest = hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()[:12]
    tag = f"localhost/vlanlb-student-busybox:{digest}"
    if not client.images.exists(tag):
        rootfs = tmp_path_factory.mktemp("busybox") / "rootfs.tar"
        rootfs.write_bytes(busybox_rootfs())
        import_rootfs(client, rootfs, tag, ("sleep", "infinity"))
    return tag


@dataclass
class StudentLab:
    prefix: str
    names: RunNames
    client: object
    links: list[str] = field(default_factory=list)

    def container(self, role):
        return container_named(self.client, f"{self.prefix}{role}")

    def type(self, role, command, detach=False):
        """`podman exec ROLE sh -c COMMAND`, as the student typed it."""
        ctr = self.container(role)
        if detach:
            ctr.exec_run(["sh", "-c", command], detach=True)
            return ""
        rc, output = ctr.exec_run(["sh", "-c", command], demux=True)
        assert rc == 0, f"{role}: {command}: {output}"
        return (output[0] or b"").decode()

    def state(self):
        """What grading must not change: rules (no counters) and every container's addresses."""
        return {
            # Policy lines carry counters even without -c: they are not state.
            "rules": self.type(
                "router",
                "command -v iptables-save >/dev/null || exit 0; "
                "iptables-save | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'",
            ),
            **{
                role: self.type(role, "ip addr show")
                for role in ("router", "a", "b")
                if self.container(role).status == "running"
            },
        }


def build_student_lab(
    client, prefix, router_image, client_image, backend_image, variant, names=None
) -> StudentLab:
    names = names or RunNames.new()
    lab = StudentLab(prefix, names, client)
    try:
        _build(client, lab, router_image, client_image, backend_image, variant)
    except BaseException:
        remove_student_lab(client, lab)
        raise
    return lab


def _build(client, lab, router_image, client_image, backend_image, variant):
    prefix, names = lab.prefix, lab.names
    vlans = [("net-vlan10", 10), ("net-vlan20", 20)]
    wires = create_wires(WireKind.VETH, names, vlans)
    lab.links = wires.links
    labels = names.labels()
    for network, vlan in vlans:
        body = {
            "name": f"{prefix}{network}",
            "driver": "macvlan",
            "network_interface": wires.parents[network],
            "subnets": [{"subnet": f"192.168.{vlan}.0/24", "gateway": f"192.168.{vlan}.1"}],
            "labels": labels,
        }
        response = client.api.post(
            "/networks/create", data=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
    common = {"ulimits": ULIMITS, "stop_timeout": 0, "labels": labels, "network_mode": "bridge"}
    router = client.containers.create(
        router_image,
        name=f"{prefix}router",
        cap_add=["NET_ADMIN", "NET_RAW"],
        sysctls={"net.ipv4.ip_forward": "1"},
        networks={"podman": {}},
        **common,
    )
    router.start()
    for network, address in (("net-vlan10", "192.168.10.1"), ("net-vlan20", "192.168.20.1")):
        network_named(client, f"{prefix}{network}").connect(
            router, ipv4_address=address, compatible=True
        )
    for role, image, network, address in (
        ("a", client_image, "net-vlan10", "192.168.10.10"),
        ("b", backend_image, "net-vlan20", "192.168.20.20"),
    ):
        client.containers.create(
            image,
            name=f"{prefix}{role}",
            cap_add=["NET_RAW"],
            networks={f"{prefix}{network}": {"static_ips": [address]}},
            **common,
        ).start()
    typed = variant if isinstance(variant, Variant) else ALL_VARIANTS[variant]
    if typed.server:
        lab.type("b", typed.server, detach=True)
    for command in typed.router:
        lab.type("router", command)
    for role, command in typed.afterwards:
        lab.type(role, command)
    for role in typed.stopped:
        lab.container(role).stop(timeout=0)
    for role in typed.paused:
        lab.container(role).pause()


def remove_student_lab(client, lab: StudentLab) -> None:
    """Everything labelled with the lab's run id: whatever the build got to make."""
    remove_run(client, lab.names.run_id)


@pytest.fixture(scope="session")
def student_labs(vlanlb_podman, alpine_like_image):
    """One student-like lab per variant, side by side (own segments, same addresses)."""
    remove_leftovers(vlanlb_podman.client())
    images = {"busybox": alpine_like_image, "node": ImageRecipe().tag}

    def build(variant):
        return build_student_lab(
            vlanlb_podman.client(),  # a client each: the builds run side by side
            f"st-{variant}-",
            images[ALL_VARIANTS[variant].router_image],
            images[ALL_VARIANTS[variant].client_image],
            alpine_like_image,
            variant,
        )

    # Side by side: a lab's build mostly waits for podman (conmon, netavark), and under TCG
    # fifteen of them one after another took minutes.
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {variant: pool.submit(build, variant) for variant in VARIANTS}
        try:
            wait(futures.values())  # an interrupt here still removes what was built
            labs = {variant: future.result() for variant, future in futures.items()}
            yield labs
        finally:
            for future in futures.values():
                future.cancel()  # those not begun
            wait(futures.values())
            built = [
                f.result() for f in futures.values() if not f.cancelled() and not f.exception()
            ]
            list(pool.map(lambda lab: remove_student_lab(lab.client, lab), built))
