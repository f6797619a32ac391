"""Benchmark: what the installed plugin costs a pytest run that does not use it.

A project with pytest-vlanlb installed runs its own tests, which use no vlanlb fixture,
option or mode. Measured in one invocation, alternating, on a throwaway project of a few
plain tests:
  - the import of `pytest_vlanlb.plugin` (`python -X importtime`, cumulative, microseconds);
  - a whole `pytest --co -q` with the plugin, against the same with `-p no:vlanlb`.
Usage:

    .venv/bin/python bench/startup.py [--rounds N]

Prints the import time, and each run's minimum and median with the difference (target: at
most 20 ms).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = "".join(f"def test_plain_{i}():\n    assert {i} == {i}\n\n" for i in range(20))


def import_micros() -> int:
    """Cumulative import time of the plugin module, after pytest (which it imports anyway)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest, pytest_vlanlb.plugin"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| pytest_vlanlb\.plugin$", line)
        if match:
            return int(match[1])
    raise SystemExit("pytest_vlanlb.plugin was not imported: is the plugin installed?")


def collect_seconds(project: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra],
        cwd=project,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    imports: list[int] = []
    with_plugin: list[float] = []
    without: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vlanlb-bench-startup-") as tmp:
        project = Path(tmp)
        (project / "test_plain.py").write_text(TESTS)
        collect_seconds(project)  # warm the file cache and the bytecode
        for _ in range(args.rounds):
            imports.append(import_micros())
            with_plugin.append(collect_seconds(project))
            without.append(collect_seconds(project, "-p", "no:vlanlb"))
    importing = statistics.median(imports) / 1000
    print(f"rounds: {args.rounds}")
    print(f"import pytest_vlanlb.plugin: {importing:.1f} ms (median, cumulative)")
    # The minimum is what the work costs; the median adds what the machine was doing.
    for label, pick in (("minimum", min), ("median", statistics.median)):
        plugged, bare = pick(with_plugin), pick(without)
        print(
            f"pytest --co ({label}): {plugged * 1000:.1f} ms with the plugin, "
            f"{bare * 1000:.1f} ms with -p no:vlanlb: {(plugged - bare) * 1000:+.1f} ms "
            "(target: at most 20 ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
