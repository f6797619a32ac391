"""Removing what runs made, and sweeping what dead runs left: containers, networks, links.

Every object of a run carries its run id and its owner (the pytest process) as labels, and a
host link as its ifalias; a run whose owner is gone is dead, and the next run (or `vlanlb
cleanup`) removes its objects, containers first, then networks, then links. A thing already
gone counts as removed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import podman
from podman.errors import APIError, NotFound
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)

from ..podman.lookup import container_named, network_named
from ..util.owners import owner_is_alive
from .naming import LABEL_KEEP, LABEL_OWNER, LABEL_RUN
from .wires import delete_links, vlanlb_links


def remove_container(client: podman.PodmanClient, name: str) -> None:
    """Remove a container, asking twice if need be: podman 5's netavark fails the first
    removal of a container whose interface was renamed or deleted inside it ("Netlink error:
    No such device"; a student's lab can be so), and a second one succeeds."""
    with contextlib.suppress(NotFound):
        for attempt in Retrying(
            stop=stop_after_attempt(3),
            retry=retry_if_exception(
                lambda e: isinstance(e, APIError) and not isinstance(e, NotFound)
            ),
            reraise=True,
        ):
            with attempt:
                container_named(client, name).remove(force=True, v=True)


def remove_network(client: podman.PodmanClient, name: str) -> None:
    with contextlib.suppress(NotFound):
        # A network can linger busy for a moment after its last container is removed.
        for attempt in Retrying(
            stop=stop_after_delay(5),
            wait=wait_fixed(0.1),
            retry=retry_if_exception_type(APIError),
            reraise=True,
        ):
            with attempt:
                network_named(client, name).remove(force=True)


# --- leftovers of runs that died --------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    kind: str  # container, network or link
    name: str
    run_id: str
    kept: bool


def _labelled(client: podman.PodmanClient, run_id: str | None = None) -> list[tuple[Leftover, str]]:
    """Every object any run of ours made (or one run's), with its owner token."""
    # One run's objects are listed by their label: a listing of every run's would race with
    # other runs removing theirs at the same moment (podman fails such a list).
    label = LABEL_RUN if run_id is None else f"{LABEL_RUN}={run_id}"
    found = []
    for container in client.containers.list(all=True, filters={"label": label}):
        labels = container.labels or {}
        item = Leftover(
            "container", str(container.name), labels[LABEL_RUN], labels.get(LABEL_KEEP) == "1"
        )
        found.append((item, labels.get(LABEL_OWNER, "")))
    for network in client.networks.list(filters={"label": label}):
        labels = network.attrs.get("labels") or {}
        item = Leftover(
            "network", str(network.name), labels[LABEL_RUN], labels.get(LABEL_KEEP) == "1"
        )
        found.append((item, labels.get(LABEL_OWNER, "")))
    for link, alias in vlanlb_links():
        found.append((Leftover("link", link, alias.run_id, alias.keep), alias.owner))
    return found


def find_leftovers(client: podman.PodmanClient) -> list[Leftover]:
    """Objects of runs whose process is gone (kept labs included, marked as such)."""
    return [item for item, owner in _labelled(client) if not owner_is_alive(owner)]


def remove_leftovers(
    client: podman.PodmanClient,
    *,
    include_kept: bool = False,
    run_id: str | None = None,
    dry_run: bool = False,
) -> list[Leftover]:
    """Remove dead runs' objects: containers first, then networks, then host links.

    With dry_run, only return what would be removed."""
    chosen = select_leftovers(find_leftovers(client), include_kept=include_kept, run_id=run_id)
    if not dry_run:
        _remove(client, chosen)
    return chosen


def select_leftovers(
    items: list[Leftover], *, include_kept: bool = False, run_id: str | None = None
) -> list[Leftover]:
    """What a cleanup removes: one run's objects (kept or not), or every dead run's except
    kept labs unless include_kept. A dry run lists the same selection."""
    return [
        item
        for item in items
        if (run_id is None or item.run_id == run_id)
        and (include_kept or not item.kept or run_id is not None)
    ]


def remove_run(client: podman.PodmanClient, run_id: str) -> list[Leftover]:
    """Remove everything labelled with one run id, whoever owns it (a run cleaning up after
    itself when its own bookkeeping is incomplete, e.g. a build that failed half way)."""
    chosen = [item for item, _owner in _labelled(client, run_id) if item.run_id == run_id]
    _remove(client, chosen)
    return chosen


def _remove(client: podman.PodmanClient, chosen: list[Leftover]) -> None:
    for item in chosen:
        if item.kind == "container":
            remove_container(client, item.name)
    for item in chosen:
        if item.kind == "network":
            remove_network(client, item.name)
    delete_links([item.name for item in chosen if item.kind == "link"])
