"""A lab run's life: the sweep of dead runs, the node image, building the lab, the keep
message and teardown (the pytest fixtures and the benchmarks use it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import PreflightError, TeardownError
from ..host.image import node_image
from ..host.naming import RunNames, kept_message
from ..host.sweep import remove_leftovers
from ..host.wires import choose_wire_kind
from ..model.topology import Topology
from ..podman.api import PodmanApi
from ..podman.remote import is_ssh
from .build import Lab, build_lab

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LabConfig:
    topology: Topology
    image: str | None = None  # None: the built-in node image
    url: str | None = None  # None: a running local podman API, else one we start
    wire: str = "auto"  # auto, 8021q or veth
    keep: bool = False
    network_backend: str = "auto"  # auto, netavark or cni
    identity: str | None = None  # ssh key for an ssh:// url


@contextlib.contextmanager
def running_lab(config: LabConfig, api: PodmanApi, progress: Progress = print) -> Iterator[Lab]:
    if is_ssh(api.url):
        raise PreflightError(
            f"the lab cannot be built through {api.url}: its VLAN wires are links on this "
            "machine, so the lab needs this machine's podman (drop --vlanlb-url); ssh:// is "
            "for grading a remote lab (--vlanlb-attach)"
        )
    client = api.client()
    progress(api.describe())
    for item in remove_leftovers(client):
        progress(f"removed leftover {item.kind} {item.name} of crashed run {item.run_id}")
    image = node_image(client, config.image, progress)
    names = RunNames.new(keep=config.keep)
    wire = choose_wire_kind(config.wire)
    lab = build_lab(
        client, config.topology, image, wire, names, network_backend=api.network_backend
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
            if not api.alive() and api.revive():
                progress(f"the podman API had died; tearing down through {api.url}")
                lab.podman = api.client()
            errors = lab.teardown()
            if errors:
                raise TeardownError(
                    f"tearing down lab {names.run_id} failed ({errors[0]}"
                    + (f", and {len(errors) - 1} more" if len(errors) > 1 else "")
                    + f"); remove what is left with: vlanlb cleanup --run {names.run_id}"
                )
