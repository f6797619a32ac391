"""A run's life, one place for every kind of run: preflight, the podman service, the sweep
of dead runs, the image, building (a lab, or document mode's image store), the keep message
and teardown.

Shared by the pytest fixtures, document mode, the `vlanlb` command and the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import podman

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
    url: str | None, network_backend: str = "auto", identity: str | None = None
) -> Iterator[PodmanService]:
    service = connect(url, network_backend=network_backend, identity=identity)
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
    image = node_image(client, config.image, progress)
    names = RunNames.new(keep=config.keep)
    wire = choose_wire_kind(config.wire)
    lab = build_lab(
        client, config.topology, image, wire, names, network_backend=service.network_backend
    )
    progress(
        f"lab {names.run_id}: topology {config.topology.name}, {wire.value} wires "
        f"(--vlanlb-wire={config.wire})"
    )
    try:
        yield lab
    finally:
        if config.keep:
            progress(kept_message("lab", names.run_id, lab.describe()))
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


def node_image(client: podman.PodmanClient, image: str | None, progress: Progress) -> str:
    """The image the nodes run: the user's (`--vlanlb-image`, checked to exist) or the
    built-in one (built once per recipe)."""
    return require_image(client, image) if image else ensure_image(client, ImageRecipe(), progress)


def kept_message(what: str, run_id: str, details: str) -> str:
    """What --vlanlb-keep leaves, how to use it, and how to remove it."""
    return (
        f"kept {what} {run_id} (--vlanlb-keep):\n{details}\n"
        f"remove it with: vlanlb cleanup --run {run_id}"
    )


def document_image_store(image: str | None, progress: Progress) -> Path:
    """Document mode's read-only image store for its sandboxes. The host's podman is asked
    only when the store is not made yet, or for an image of the user's (`--vlanlb-image`)."""
    from .document.store import ensure_image_store, image_store, ready_store
    from .image import ensure_alpine_standin, standin_tag

    if image is None and (ready := ready_store(image_store(standin_tag(ImageRecipe().tag)))):
        return ready
    service = connect(None)
    try:
        client = service.client()
        standin = ensure_alpine_standin(client, node_image(client, image, progress), progress)
        image_id = str(client.images.get(standin).id) if image else ""
        return ensure_image_store(client, standin, image_store(standin, image_id))
    finally:
        service.stop()
