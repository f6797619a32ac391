"""Exact-name lookups: podman's own match ID prefixes, ours never do."""

from __future__ import annotations

import pytest
from podman.errors import NotFound

from pytest_vlanlb.host.image import ImageRecipe
from pytest_vlanlb.podman.lookup import container_named


@pytest.fixture
def container(vlanlb_podman):
    client = vlanlb_podman.client()
    ctr = client.containers.create(ImageRecipe().tag, network_mode="none")
    yield client, ctr
    ctr.remove(force=True)


def unique_id_prefix(client, ctr):
    """The shortest prefix (3+ characters) of ctr's ID that no other container's ID or name
    starts with or equals: podman's lookup of it by "name" then finds ctr."""
    others = [(c.id, c.name) for c in client.containers.list(all=True) if c.id != ctr.id]
    for length in range(3, len(ctr.id)):
        prefix = ctr.id[:length]
        if not any(i.startswith(prefix) or n == prefix for i, n in others):
            return prefix
    raise AssertionError("no unique prefix")


def test_a_bare_name_never_matches_an_id_prefix(container):
    client, ctr = container
    name = unique_id_prefix(client, ctr)  # like `a` when one container's ID starts with a
    assert client.containers.get(name).id == ctr.id  # podman's trap, shown
    with pytest.raises(NotFound):
        container_named(client, name)


def test_names_are_literal_not_regexes(container):
    client, ctr = container
    with pytest.raises(NotFound):
        container_named(client, ".*")
    assert container_named(client, ctr.name).id == ctr.id
