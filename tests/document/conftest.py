"""Before the first document test: what runs that died left (labs, document sandboxes) is
removed by label (`vlanlb cleanup`), so that the tests comparing the host before and after a
run (host_state.py) count neither a killed run's leftovers nor their sweep by the run they
start. Once per session, here only: the other tests do not read the whole host."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="session", autouse=True)
def _no_dead_runs_leftovers() -> None:
    swept = subprocess.run(
        [sys.executable, "-m", "pytest_vlanlb", "cleanup"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert swept.returncode == 0, swept.stderr
