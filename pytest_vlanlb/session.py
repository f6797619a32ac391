"""One lab's life: preflight, podman service, leftovers, image, build, teardown.

Shared by the pytest fixtures, the `vlanlb` command and the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import LabBuildError, PreflightError
from .image import ImageRecipe, ensure_image, require_image
from .lab import Lab, build_lab
from .naming import RunNames
from .podman_service import PodmanService, connect
from .remote import is_ssh
from .sweep import remove_leftovers
from .topology import Topology
from .wires import choose_wire_kind

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LabConfig:
    topology: Topology
    image: str | None = None  # None: the built-in node image
    url: str | None = None  # None: a running local service, else one we start
    wire: str = "auto"  # auto, 8021q or veth
    keep: bool = False
    network_backend: str = "auto"  # auto, netavark or cni
    identity: str | None = None  # ssh key for an ssh:// url


def preflight() -> None:
    if os.geteuid() != 0:
        raise PreflightError(
            "the lab needs root (rootful podman, host veth links): run pytest as root, "
            f"e.g. `sudo {sys.executable} -m pytest`"  # this very interpreter: its venv
        )
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux")):
        if shutil.which(tool) is None:
            raise PreflightError(f"`{tool}` is missing: run `vlanlb setup` (apt package {package})")


@contextlib.contextmanager
def podman_service(
    url: str | None, backend: str = "auto", identity: str | None = None
) -> Iterator[PodmanService]:
    service = connect(url, backend=backend, identity=identity)
    try:
        yield service
    finally:
        service.stop()


@contextlib.contextmanager
def running_lab(
    config: LabConfig, service: PodmanService, progress: Progress = print
) -> Iterator[Lab]:
    if is_ssh(service.url):
        raise PreflightError(
            f"the lab cannot be built through {service.url}: its VLAN wires are links on this "
            "machine, so the lab needs this machine's podman (drop --vlanlb-url); ssh:// is "
            "for grading a remote lab (--vlanlb-attach)"
        )
    client = service.client()
    progress(service.describe())
    for item in remove_leftovers(client):
        progress(f"removed leftover {item.kind} {item.name} of crashed run {item.run_id}")
    if config.image:
        image = require_image(client, config.image)
    else:
        image = ensure_image(client, ImageRecipe(), progress)
    names = RunNames.new(keep=config.keep)
    wire = choose_wire_kind(config.wire)
    lab = build_lab(client, config.topology, image, wire, names, backend=service.backend)
    progress(
        f"lab {names.run_id}: topology {config.topology.name}, {wire.value} wires "
        f"(--vlanlb-wire={config.wire})"
    )
    try:
        yield lab
    finally:
        if config.keep:
            progress(
                f"kept lab {names.run_id} (--vlanlb-keep):\n{lab.describe()}\n"
                f"remove it with: vlanlb cleanup --run {names.run_id}"
            )
        else:
            if not service.alive() and service.revive():
                progress(f"the podman service had died; tearing down through {service.url}")
                lab.podman = service.client()
            errors = lab.teardown()
            if errors:
                raise LabBuildError(
                    f"tearing down lab {names.run_id} failed ({errors[0]}"
                    + (f", and {len(errors) - 1} more" if len(errors) > 1 else "")
                    + f"); remove what is left with: vlanlb cleanup --run {names.run_id}"
                )
