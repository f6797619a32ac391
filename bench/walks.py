"""Benchmark: what a failing claim's walk costs (issue 32: at most 0.5 s).

One pytest run, on the workshop's Step 6 defect (the literal DROP takes the VIP's traffic):
the same failing claim, alternating, N times each way:
  - **walked**: the probe inside `observe(router, …)`; the failure draws its walk (the
    counters read before and after, the walk laid along the hooks, graphviz's SVG written
    beside the junit XML);
  - **plain**: the same probe, the same failure, no observation: nothing is drawn;
  - **traced**: the probe inside `traced(router, …)` (netfilter's trace of its packets, the
    walk read from it; lab/tracing.py), nothing drawn: what the trace itself costs.
Each test's time is its whole protocol (setup, call, the report where the walk is drawn,
teardown), measured by a conftest hook. Usage:

    .venv/bin/python bench/walks.py [--rounds N]

Prints the medians, their ratio and their difference (target: the difference at most 0.5 s).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

TARGET = 0.5  # seconds a walk may add to a failing claim

INNER = """
import pytest
from pytest_vlanlb import HttpOutcome, http_expecting, observe, traced

ROUNDS = {rounds}
LAYERS = ["webserver", "firewall:workshop", "vip", "dnat", "snat"]
MATCH = "ip daddr 192.168.10.100 tcp dport 80"

def probe(client, router):
    return http_expecting(
        client, "http://192.168.10.100", HttpOutcome.TIMEOUT, evidence=[router])

@pytest.mark.parametrize("way", ["walked", "plain", "traced"] * ROUNDS)
@pytest.mark.vlanlb(layers=LAYERS)
def test_step6_as_written_answers(way, vlanlb_layers, vlanlb_client, vlanlb_router):
    if way == "walked":
        result = observe(vlanlb_router, lambda: probe(vlanlb_client, vlanlb_router)).result
    elif way == "traced":
        seen = traced(vlanlb_router, lambda: probe(vlanlb_client, vlanlb_router), MATCH)
        assert seen.walk("router").stop is not None  # the trace saw the drop
        result = seen.result
    else:
        result = probe(vlanlb_client, vlanlb_router)
    assert result.outcome is HttpOutcome.OK  # the workshop's claim, which the defect breaks
"""

#: Each test's whole protocol (setup, call, its report, where the walk is drawn, teardown):
#: junit's times leave the report out.
CONFTEST = """
import json, time
import pytest

TIMES = {{}}

@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        TIMES[item.name] = time.perf_counter() - start

def pytest_sessionfinish(session):
    with open({path!r}, "w") as out:
        json.dump(TIMES, out)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vlanlb-bench-walks-") as tmp:
        folder = Path(tmp)
        (folder / "test_walks.py").write_text(INNER.format(rounds=args.rounds))
        timings = folder / "times.json"
        (folder / "conftest.py").write_text(CONFTEST.format(path=str(timings)))
        junit = folder / "out" / "junit.xml"
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
             "--junitxml", str(junit), str(folder / "test_walks.py")],
            cwd=folder, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if not junit.exists():
            sys.exit(f"bench/walks.py: the run wrote no junit XML:\n{run.stdout[-3000:]}")
        times: dict[str, list[float]] = {"walked": [], "plain": [], "traced": []}
        measured = json.loads(timings.read_text())
        for case in ET.parse(junit).iter("testcase"):
            name = case.get("name") or ""
            # Repeated ids are numbered by pytest: walked0, plain0, walked1 ...
            way = re.sub(r"\d*\]$", "", name.split("[", 1)[1])
            if case.find("failure") is None:
                sys.exit(f"bench/walks.py: {name} did not fail as the defect makes it")
            times[way].append(measured[name])
        drawn = list((junit.parent / "vlanlb-walks").glob("*.svg"))
        if len(drawn) != args.rounds:
            sys.exit(f"bench/walks.py: {len(drawn)} walks drawn, not {args.rounds}")
    walked, plain = statistics.median(times["walked"]), statistics.median(times["plain"])
    traced = statistics.median(times["traced"])
    added = walked - plain
    print(f"failing claim, walked: median {walked:.3f} s ({len(times['walked'])} runs)")
    print(f"failing claim, plain:  median {plain:.3f} s ({len(times['plain'])} runs)")
    print(f"walked / plain: {walked / plain:.2f}; the walk adds {added:.3f} s", end=" ")
    print(f"(target <= {TARGET} s: {'met' if added <= TARGET else 'MISSED'})")
    print(f"failing claim, traced: median {traced:.3f} s; traced / plain: {traced / plain:.2f}; "
          f"the trace adds {traced - plain:.3f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
