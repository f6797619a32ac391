"""Benchmark: the plugin's basic suite against a plain podman-CLI script of the workshop.

Both run in this one invocation, on this machine, so the ratio compares like with like on a
noisy host. Usage (as root, after scripts/setup):

    .venv/bin/python bench/run.py [--rounds N]

Prints wall times per round, the medians and the ratio suite / script (target: <= 0.7).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_vlanlb.image import ImageRecipe  # noqa: E402

TARGET = 0.7


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
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
    contenders = {
        "suite (serial)": pytest,
        "suite (-n 2)": [*pytest, "-n", "2"],
        "plain script": ["bash", "bench/workshop_plain.sh", ImageRecipe().tag],
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(1, args.rounds + 1):
        for name, command in contenders.items():  # interleaved: drift hits all alike
            times[name].append(timed(command))
            print(f"round {round_}: {name:15} {times[name][-1]:6.1f} s", flush=True)
    baseline = statistics.median(times["plain script"])
    print(f"\nplain podman-CLI script (baseline): {baseline:6.1f} s  (median of {args.rounds})")
    for name in ("suite (serial)", "suite (-n 2)"):
        median = statistics.median(times[name])
        ratio = median / baseline
        verdict = "meets" if ratio <= TARGET else "misses"
        print(f"{name:34}: {median:6.1f} s  ratio {ratio:.2f} ({verdict} the {TARGET} target)")


if __name__ == "__main__":
    main()
