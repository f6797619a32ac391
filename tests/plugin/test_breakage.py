"""A lab that breaks mid-run (a node killed, the podman API killed) is reported once, in
one line per remaining test, and still torn down."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .test_isolation import objects_of_run

INNER = """
import os, pathlib

def test_1_break_it(vlanlb_lab, vlanlb_podman):
    pathlib.Path(os.environ["VLANLB_RUN_ID_FILE"]).write_text(vlanlb_lab.names.run_id)
    if os.environ["BREAK"] == "router":
        vlanlb_lab.router.container.kill()
    else:
        vlanlb_podman.process.kill()
        vlanlb_podman.process.wait()
    vlanlb_lab.router.exec("true")

def test_2(vlanlb_client):
    vlanlb_client.exec("true")

def test_3(vlanlb_layers):
    vlanlb_layers.apply("vip")

def test_4_needs_no_lab():
    pass
"""


@pytest.mark.parametrize("what", ["router", "service"])
def test_a_broken_lab_is_named_once_and_torn_down(what, tmp_path, vlanlb_podman):
    (tmp_path / "test_inner.py").write_text(INNER)
    run_id_file = tmp_path / "run_id"
    args = [] if what == "service" else [f"--vlanlb-url={vlanlb_podman.url}"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, str(tmp_path)],
        cwd=tmp_path,
        env={"VLANLB_RUN_ID_FILE": str(run_id_file), "BREAK": what, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    run_id = run_id_file.read_text()
    assert run.returncode == 1, output
    assert "1 failed, 1 passed, 2 errors" in output, output  # later tests: at setup
    if what == "router":
        # podman's word for a killed container: "stopped" until its cleanup ran, then "exited"
        reason = rf"node router \(container vlb-{run_id}-router\) is (exited|stopped)"
    else:
        reason = "the podman API at unix:///"
    assert len(re.findall(f"pytest-vlanlb: the lab broke: {reason}", output)) == 3, output
    assert "Traceback" not in output, output
    assert "APIError" not in output, output
    assert len(output.splitlines()) < 60, output
    # Torn down all the same (through a new service when the old one died).
    assert objects_of_run(vlanlb_podman.client(), run_id) == {
        "containers": [],
        "networks": [],
        "links": [],
    }
