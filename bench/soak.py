"""Soak: run a pytest command many times in a row and report every failure (flakes).

Optionally under load: K busy CPU loops beside it (`--hog K`), or two copies of the command
side by side each round (`--pair`). At the end it checks that nothing was left behind: no
container, network or host link of any run (found by label and ifalias), and no host
iptables rule beyond podman's own base chains.

    .venv/bin/python bench/soak.py --runs 20                     # the full suite, 20 times
    .venv/bin/python bench/soak.py --runs 5 --hog 3 -- tests/lab # the main job beside 3 hogs
    .venv/bin/python bench/soak.py --runs 3 --pair -- tests/lab  # two main jobs at once

Exit status 1 if any run failed or anything was left behind. Every loop here is bounded.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import multiprocessing.pool
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = [str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"]
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
#: Chains podman's backends create once and keep (not per run, not ours to remove).
PODMAN_BASE_CHAINS = ("CNI-FORWARD", "CNI-ADMIN", "NETAVARK_FORWARD", "NETAVARK-HOSTPORT")
SUMMARY = re.compile(r"^(?:=+ )?(\d+ (?:passed|failed|error).*) in [\d.]+s", re.MULTILINE)


def hog(deadline: float) -> None:
    """Burn one CPU until the deadline (never unbounded)."""
    while time.monotonic() < deadline:
        pass


def run_once(args: list[str], log: Path) -> tuple[int, float, list[str], str]:
    start = time.monotonic()
    with log.open("w") as out:
        rc = subprocess.run(
            [*PYTEST, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode
    elapsed = time.monotonic() - start
    text = log.read_text(errors="replace")
    summary = SUMMARY.findall(text)
    return rc, elapsed, FAILED.findall(text), summary[-1] if summary else "no summary"


def leftovers() -> list[str]:
    """Containers, networks, host links and host iptables rules (beyond podman's own base
    chains) that exist now: compared before and after the soak."""
    found = []
    for kind in ("ps -a", "network ls"):
        listing = subprocess.run(
            ["podman", *kind.split(), "--filter", "label=io.vlanlb.run", "--format", "{{.Names}}"]
            if kind == "ps -a"
            else ["podman", "network", "ls", "--filter", "label=io.vlanlb.run", "-q"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        found += [f"{kind.split()[0]}: {name}" for name in listing]
    links = json.loads(
        subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    )
    found += [f"link: {link['ifname']}" for link in links if "vlanlb" in link.get("ifalias", "")]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    found += [
        f"iptables: {line}"
        for line in rules.splitlines()
        if line.startswith("-A ") and not any(base in line for base in PODMAN_BASE_CHAINS)
    ]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, choices=range(1, 1001), metavar="N")
    parser.add_argument("--hog", type=int, default=0, help="busy CPU loops beside each run")
    parser.add_argument("--pair", action="store_true", help="two copies side by side")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/vlanlb-soak"))
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    options = parser.parse_args()
    options.logs.mkdir(parents=True, exist_ok=True)
    before = set(leftovers())
    failures: collections.Counter[str] = collections.Counter()
    times, failed_runs = [], 0
    copies = 2 if options.pair else 1
    for number in range(1, options.runs + 1):
        deadline = time.monotonic() + 3600
        hogs = [
            multiprocessing.Process(target=hog, args=(deadline,), daemon=True)
            for _ in range(options.hog)
        ]
        for process in hogs:
            process.start()
        try:
            with multiprocessing.pool.ThreadPool(copies) as pool:
                results = pool.starmap(
                    run_once,
                    [
                        (options.pytest_args, options.logs / f"run{number}-{copy}.log")
                        for copy in range(copies)
                    ],
                )
        finally:
            for process in hogs:
                process.terminate()
                process.join()
        for copy, (rc, elapsed, failed, summary) in enumerate(results):
            times.append(elapsed)
            failed_runs += rc != 0
            failures.update(failed)
            mark = "ok  " if rc == 0 else "FAIL"
            print(f"run {number:>2}.{copy} {mark} {elapsed:6.1f}s  {summary}", flush=True)
            for test in failed:
                print(f"           {test}", flush=True)
    left = sorted(set(leftovers()) - before)
    total = options.runs * copies
    print(
        f"\n{total} runs ({options.hog} hogs, {copies} side by side): {total - failed_runs} "
        f"passed, {failed_runs} failed; median {statistics.median(times):.1f}s, "
        f"max {max(times):.1f}s; logs in {options.logs}"
    )
    for test, count in failures.most_common():
        print(f"  flaky/failing: {test} ({count}x)")
    print("left behind: " + (", ".join(left) if left else "nothing"))
    return 1 if failed_runs or left else 0


if __name__ == "__main__":
    sys.exit(main())
