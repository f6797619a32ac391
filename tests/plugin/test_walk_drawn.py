"""A failing lab test's walk: where its packets went, drawn beside the junit XML, its path in
the failure text, and read back from Chromium as a person sees it (the workshop's Step 6
defect: DNAT in PREROUTING, then dropped by FORWARD rule 1, b not reached). A passing test
draws nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from grading.browser import read_svg_texts

INNER = """
import pytest
from pytest_vlanlb import HttpOutcome, http_expecting, observe

@pytest.mark.vlanlb(layers=["webserver", "firewall:workshop", "vip", "dnat", "snat"])
def test_step6_as_written_answers(vlanlb_layers, vlanlb_client, vlanlb_router):
    seen = observe(vlanlb_router, lambda: http_expecting(
        vlanlb_client, "http://192.168.10.100", HttpOutcome.TIMEOUT, evidence=[vlanlb_router]))
    assert seen.result.outcome is HttpOutcome.OK, seen.explain()  # the workshop's claim

@pytest.mark.vlanlb(layers=["webserver", "firewall:dnat-aware", "vip", "dnat", "snat"])
def test_corrected_answers(vlanlb_layers, vlanlb_client, vlanlb_router):
    seen = observe(vlanlb_router, lambda: http_expecting(
        vlanlb_client, "http://192.168.10.100", HttpOutcome.OK))
    assert seen.result.outcome is HttpOutcome.OK, seen.explain()
"""


def test_a_failing_claims_walk_is_drawn_and_its_path_given(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--junitxml", str(tmp_path / "out" / "junit.xml"), str(tmp_path / "test_inner.py")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "1 failed, 1 passed" in output, output
    section = output.split("where the packets went", 1)[1]
    drawn = [Path(p) for p in re.findall(r"(/\S+\.svg)", section)]
    assert drawn == [tmp_path / "out" / "vlanlb-walks" / drawn[0].name], output
    assert "test_step6_as_written_answers" in drawn[0].name
    assert sorted(p.name for p in (tmp_path / "out" / "vlanlb-walks").iterdir()) == [
        drawn[0].name
    ]  # the passing test drew nothing
    shown = read_svg_texts(drawn[0], tmp_path)
    text = "\n".join(shown)
    assert "GET http://192.168.10.100: timeout" in text, shown
    order = [next(i for i, t in enumerate(shown) if t.startswith(hook)) for hook in (
        "PREROUTING", "ROUTING", "FORWARD")]  # fmt: skip
    assert order == sorted(order), shown
    assert "destination-NATed by nat PREROUTING rule 1" in text, shown
    assert "✗ DROPPED HERE" in shown, shown
    assert "dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP` after DNAT" in " ".join(
        shown
    ), shown
    assert shown[-1] == "(not reached)", shown
