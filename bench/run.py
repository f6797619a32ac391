"""Benchmark: the plugin's basic suite against plain podman-CLI scripts of the workshop.

All run in this one invocation, on this machine, so the ratios compare like with like on a
noisy host. Two baselines, both bench/workshop_plain.sh:
  - "steps": the workshop's steps with the ten checks a careful person would type;
  - "same work": FULL=1, the same 14-row truth table the suite runs (45 checks), with the
    suite's probe timeouts, one podman command at a time.
Usage (as root, after scripts/setup):

    .venv/bin/python bench/run.py [--rounds N]

Prints wall times per round, the medians and the ratios suite / script (target: <= 0.7).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_vlanlb.image import ImageRecipe  # noqa: E402

TARGET = 0.7


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
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
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    pytest = [
        str(ROOT / ".venv/bin/pytest"),
        "--vlanlb-topology=basic",
        "tests/lab",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    script = ["bash", "bench/workshop_plain.sh", ImageRecipe().tag]
    contenders: dict[str, tuple[list[str], dict[str, str]]] = {
        "suite (serial)": (pytest, {}),
        "suite (-n 2)": ([*pytest, "-n", "2"], {}),
        "script: steps": (script, {}),
        "script: same work": (script, {"FULL": "1"}),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(1, args.rounds + 1):
        for name, (command, env) in contenders.items():  # interleaved: drift hits all alike
            times[name].append(timed(command, env))
            print(f"round {round_}: {name:18} {times[name][-1]:6.1f} s", flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmedians of {args.rounds} round(s):")
    for name, value in median.items():
        print(f"  {name:18} {value:6.1f} s")
    for suite in ("suite (serial)", "suite (-n 2)"):
        for baseline in ("script: steps", "script: same work"):
            ratio = median[suite] / median[baseline]
            verdict = "meets" if ratio <= TARGET else "misses"
            print(f"{suite} / {baseline}: {ratio:.2f} ({verdict} the {TARGET} target)")


if __name__ == "__main__":
    main()
