"""Exact-name lookups: podman's own match ID prefixes, ours never do."""

from __future__ import annotations

import contextlib

import pytest
from podman.errors import NotFound

from pytest_vlanlb.image import ImageRecipe
from pytest_vlanlb.lookup import container_named


@pytest.fixture
def container_with_id_starting_a(vlanlb_podman):
    """Create (not start) containers until one's ID starts with `a`; remove them all after."""
    client = vlanlb_podman.client()
    made = []
    try:
        for _ in range(96):  # P(no ID starting with `a` in 96) = (15/16)**96 < 0.2%
            ctr = client.containers.create(ImageRecipe().tag, network_mode="none")
            made.append(ctr)
            if ctr.id.startswith("a"):
                yield client, ctr
                return
        pytest.fail("no container ID started with `a` in 96 tries")
    finally:
        for ctr in made:
            with contextlib.suppress(NotFound):
                ctr.remove(force=True)


def test_a_bare_name_never_matches_an_id_prefix(container_with_id_starting_a):
    client, ctr = container_with_id_starting_a
    try:
        real = container_named(client, "a")  # the user has a container called `a`
    except NotFound:
        # podman's trap, shown: some container whose ID starts with `a` (ours, or another
        # of the session's) is returned for the name `a`.
        trapped = client.containers.get("a")
        assert trapped.id.startswith("a")
        assert trapped.name != "a"
    else:
        assert real.name == "a"
        assert real.id != ctr.id


def test_names_are_literal_not_regexes(container_with_id_starting_a):
    client, ctr = container_with_id_starting_a
    with pytest.raises(NotFound):
        container_named(client, ".*")
    assert container_named(client, ctr.name).id == ctr.id
