"""Which leftovers a cleanup removes; a dry run lists exactly the same selection."""

from __future__ import annotations

import pytest
from podman.errors import APIError, NotFound

from pytest_vlanlb.host import sweep
from pytest_vlanlb.host.sweep import Leftover, select_leftovers

DEAD = Leftover("container", "vlb-111111-a", "111111", kept=False)
KEPT = Leftover("container", "vlb-222222-a", "222222", kept=True)
LINK = Leftover("link", "vlb111111v10", "111111", kept=False)


def test_a_plain_cleanup_leaves_kept_labs_alone():
    assert select_leftovers([DEAD, KEPT, LINK]) == [DEAD, LINK]


def test_kept_labs_go_with_kept_or_by_run_id():
    assert select_leftovers([DEAD, KEPT], include_kept=True) == [DEAD, KEPT]
    assert select_leftovers([DEAD, KEPT, LINK], run_id="222222") == [KEPT]
    assert select_leftovers([DEAD, KEPT, LINK], run_id="111111") == [DEAD, LINK]


class FlakyContainer:
    """A container whose first removals fail as podman 5's do after a student renamed its
    interface (netavark: "Netlink error: No such device")."""

    def __init__(self, failures: int) -> None:
        self.failures, self.removals = failures, 0

    def remove(self, **_kwargs) -> None:
        self.removals += 1
        if self.removals <= self.failures:
            raise APIError("removing container network: netavark: Netlink error: No such device")


def test_a_container_is_asked_again_when_its_network_teardown_fails(monkeypatch):
    container = FlakyContainer(failures=1)
    monkeypatch.setattr(sweep, "container_named", lambda _client, _name: container)
    sweep.remove_container(None, "st-hostile-names-router")
    assert container.removals == 2


def test_a_container_that_keeps_failing_is_an_error_and_a_missing_one_is_not(monkeypatch):
    container = FlakyContainer(failures=5)
    monkeypatch.setattr(sweep, "container_named", lambda _client, _name: container)
    with pytest.raises(APIError, match="No such device"):
        sweep.remove_container(None, "x")
    assert container.removals == 3

    def missing(_client, name):
        raise NotFound(f"no container named {name!r}")

    monkeypatch.setattr(sweep, "container_named", missing)
    sweep.remove_container(None, "gone")  # already removed: nothing to do


def test_a_container_that_vanishes_during_the_sweep_counts_as_removed(monkeypatch):
    """Listed by the sweep, gone (another run's cleanup) before its removal: podman answers
    500 "does not exist in database"; asked again, it is not found, and that is success."""
    calls = []

    class Vanishing:
        def remove(self, **_kwargs):
            raise APIError("container abc does not exist in database: no such container")

    def lookup(_client, name):
        calls.append(name)
        if len(calls) > 1:
            raise NotFound(f"no container named {name!r}")
        return Vanishing()

    monkeypatch.setattr(sweep, "container_named", lookup)
    sweep.remove_container(None, "vlb-333333-a")
    assert calls == ["vlb-333333-a", "vlb-333333-a"]
