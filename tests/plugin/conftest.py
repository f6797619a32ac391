from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: An inner test run that builds its own lab and records its run id.
INNER_TEST = """
import os, pathlib, time

def test_inner(vlanlb_lab):
    pathlib.Path(os.environ["VLANLB_RUN_ID_FILE"]).write_text(vlanlb_lab.names.run_id)
    if os.environ.get("VLANLB_INNER_HANG"):
        time.sleep(120)
"""


@pytest.fixture
def inner_run(tmp_path, vlanlb_podman):
    """Start `pytest` in a subprocess against the session's podman API."""
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    run_id_file = tmp_path / "run_id"

    def start(*args: str, hang: bool = False) -> subprocess.Popen[str]:
        env = {"VLANLB_RUN_ID_FILE": str(run_id_file), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        if hang:
            env["VLANLB_INNER_HANG"] = "1"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--vlanlb-url={vlanlb_podman.url}",
            *args,
            str(tmp_path),
        ]
        return subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    start.run_id_file = run_id_file  # type: ignore[attr-defined]
    return start


def run_id_of(path: Path) -> str:
    return path.read_text().strip()
