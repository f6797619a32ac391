"""The suite's own hygiene: every process a test starts dies with the run, and a run begins
on a host a killed run may have left things on (the next run must not be disturbed).

- Each child the suite's process starts (subprocess, pytester's inner runs) gets SIGKILL as
  its parent-death signal: if this run is killed, even by SIGKILL, the kernel ends them at
  once, instead of an inner pytest running on and building labs beside the next run. Their
  own children (the plugin's podman API, a sandbox's unshare) die with them the same way.
- The tests that compare the host before and after a run sweep what killed runs left first
  (tests/document/conftest.py); what tests keep on purpose (a kept lab, a kept sandbox) is
  registered by run id while they hold it, and a killed run's is removed here, first
  (tests/kept.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from kept import sweep_kept_by_killed_runs

from pytest_vlanlb.util.processes import kill_with_parent

_popen_init = subprocess.Popen.__init__


def _dies_with_this_run(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
    if kwargs.get("preexec_fn") is None:
        kwargs["preexec_fn"] = kill_with_parent
    elif kwargs["preexec_fn"] is not kill_with_parent:
        kwargs["preexec_fn"] = _both(kwargs["preexec_fn"])
    _popen_init(self, *args, **kwargs)


def _both(theirs: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        kill_with_parent()
        theirs()  # the caller's own (the plugin's die_with_parent sets SIGTERM: theirs wins)

    return both


def pytest_configure(config: pytest.Config) -> None:
    subprocess.Popen.__init__ = _dies_with_this_run  # type: ignore[method-assign]


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # once, not per xdist worker
        sweep_kept_by_killed_runs()


def pytest_unconfigure(config: pytest.Config) -> None:
    subprocess.Popen.__init__ = _popen_init  # type: ignore[method-assign]
