"""Benchmark: the plugin's basic suite against plain podman-CLI scripts of the workshop.

All run in this one invocation, on this machine, so the ratios compare like with like on a
noisy host. Two baselines, both bench/workshop_plain.sh:
  - "steps": the workshop's steps with the ten checks a careful person would type;
  - "same work": FULL=1, the same 14-row truth table the suite runs (45 checks), with the
    suite's probe timeouts, one podman command at a time.
Also measured: the lab's build + teardown for `pytest` on one test (its setup and teardown,
read from --durations), the speed-up of `-n 2`, and how many exec sessions (conmon
processes) the serial suite opened. Before each timed run, the exec sessions of the one
before are let finish (bench/sessions.py). Usage (as root, after scripts/setup):

    .venv/bin/python bench/run.py [--rounds N]

Prints wall times per round, the medians, and the verdicts against the targets:
suite (serial) / script: steps <= 0.35; build + teardown < 2 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from sessions import drain, sessions_since  # noqa: E402  (bench/sessions.py)

from pytest_vlanlb.host.image import ImageRecipe  # noqa: E402

RATIO_TARGET = 0.35  # issue 31: the main job within 0.35x the plain script
BUILD_TARGET = 2.0
PYTEST = [str(ROOT / ".venv/bin/pytest"), "-q", "-p", "no:cacheprovider"]
MAIN_JOB = [*PYTEST, "--vlanlb-topology=basic", "tests/lab"]
ONE_TEST = "tests/lab/test_base_lab.py::test_router_interfaces_follow_the_workshop_order"


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    return elapsed, result.stdout


def lab_build_and_teardown() -> float:
    """`pytest` on one test: its setup (service, image check, lab build) + its teardown."""
    _, out = run([*PYTEST, "-vv", "--durations=0", ONE_TEST])
    phases = re.findall(r"^([0-9.]+)s (setup|teardown) +" + re.escape(ONE_TEST), out, re.M)
    if {phase for _, phase in phases} != {"setup", "teardown"}:
        sys.exit(f"no setup/teardown durations for {ONE_TEST} in:\n{out[-2000:]}")
    return sum(float(seconds) for seconds, _ in phases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    script = ["bash", "bench/workshop_plain.sh", ImageRecipe().tag]
    # The script runs on the backend the plugin's own runs use (netavark): a host podman that
    # chose CNI refuses the workshop's Step 3 (the router taking the gateway's address).
    conf = Path(tempfile.mkdtemp(prefix="vlanlb-bench-")) / "containers.conf"
    conf.write_text('[network]\nnetwork_backend = "netavark"\n')
    netavark = {"CONTAINERS_CONF": str(conf)}
    conmons: list[int] = []

    def serial() -> float:
        start = time.time()
        elapsed, _ = run(MAIN_JOB)
        conmons.append(sessions_since(start))
        return elapsed

    contenders: dict[str, Callable[[], float]] = {
        "suite (serial)": serial,
        "suite (-n 2)": lambda: run([*MAIN_JOB, "-n", "2"])[0],
        "script: steps": lambda: run(script, netavark)[0],
        "script: same work": lambda: run(script, {**netavark, "FULL": "1"})[0],
        "one test: build+teardown": lab_build_and_teardown,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for round_ in range(1, args.rounds + 1):
            for name, measure in contenders.items():  # interleaved: drift hits all alike
                drain()  # the previous run's exec sessions end on their own time
                times[name].append(measure())
                print(f"round {round_}: {name:25} {times[name][-1]:6.2f} s", flush=True)
    finally:
        shutil.rmtree(conf.parent)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmedians of {args.rounds} round(s):")
    for name, value in median.items():
        print(f"  {name:25} {value:6.2f} s")
    serial_median, steps = median["suite (serial)"], median["script: steps"]
    ratio = serial_median / steps
    print(
        f"suite (serial) / script: steps: {ratio:.2f} ({_verdict(ratio <= RATIO_TARGET)} "
        f"the {RATIO_TARGET} target)"
    )
    print(f"suite (serial) / script: same work: {serial_median / median['script: same work']:.2f}")
    print(f"suite (-n 2) / script: steps: {median['suite (-n 2)'] / steps:.2f}")
    print(f"-n 2 speed-up over serial: {serial_median / median['suite (-n 2)']:.2f}x")
    build = median["one test: build+teardown"]
    print(
        f"lab build + teardown for one test: {build:.2f} s ({_verdict(build < BUILD_TARGET)} "
        f"the < {BUILD_TARGET:g} s target)"
    )
    print(f"exec sessions (conmon processes) opened by the serial suite: {conmons}")


def _verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


if __name__ == "__main__":
    main()
