"""Labs and document sandboxes the tests keep on purpose (`--vlanlb-keep`, `keep=True`),
registered by run id while the test holds them: a run killed in between leaves them behind,
kept, where no sweep of dead runs looks; the next run removes them by that id
(`tests/conftest.py`). A kept lab or sandbox of the user's own is never touched."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: One file per kept run id, holding the pid of the test run that keeps it.
REGISTRY = Path(tempfile.gettempdir()) / "vlanlb-tests-kept"


@contextlib.contextmanager
def kept_by_this_run(run_id: str) -> Iterator[None]:
    REGISTRY.mkdir(exist_ok=True)
    entry = REGISTRY / run_id
    entry.write_text(str(os.getpid()))
    try:
        yield
    finally:
        entry.unlink(missing_ok=True)


def sweep_kept_by_killed_runs() -> list[str]:
    """Remove what test runs that died kept (`vlanlb cleanup --run ID`); the ids removed."""
    removed = []
    for entry in sorted(REGISTRY.glob("*")) if REGISTRY.is_dir() else []:
        owner = entry.read_text().strip()
        if owner.isdigit() and Path(f"/proc/{owner}").exists():
            continue  # a run still going (two suites side by side): its own to remove
        subprocess.run(
            [sys.executable, "-m", "pytest_vlanlb", "cleanup", "--run", entry.name],
            capture_output=True,
            check=False,
            timeout=300,
        )
        entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed
