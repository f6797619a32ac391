"""Soak: run a pytest command many times in a row and report every failure (flakes).

Optionally under load: K busy CPU loops beside it (`--hog K`), or two copies of the command
side by side each round (`--pair`). At the end it checks that nothing was left behind: no
container, network or host link of any run (found by label and ifalias), and no host
iptables rule beyond podman's own base chains.

    .venv/bin/python bench/soak.py --runs 20                     # the full suite, 20 times
    .venv/bin/python bench/soak.py --runs 5 --hog 3 -- tests/lab # the main job beside 3 hogs
    .venv/bin/python bench/soak.py --runs 3 --pair -- tests/lab  # two main jobs at once
    # issue 31's series: 10 full runs, the first right after a run SIGKILLed 120 s in, the
    # fifth with the other core kept busy
    .venv/bin/python bench/soak.py --runs 10 --kill-first 120 --hog 1 --hog-runs 5

With `--kill-first S`, a run is SIGKILLed S seconds in before the series (pytest alone, as
a crash would: its children must die with it), and at the end no process of that run may be
left. Exit status 1 if any run failed or anything was left behind. Every loop here is
bounded.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import multiprocessing.pool
import re
import signal
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


def killed_run(args: list[str], seconds: float, log: Path) -> int:
    """A run SIGKILLed `seconds` in (pytest only); its session id, to find what outlived it."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [*PYTEST, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
    return process.pid


def survivors(session: int) -> list[str]:
    """Processes still in a session (a killed run's children that did not die with it); an
    exited one waiting to be reaped (a zombie) runs nothing and is not one."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] not in ("Z", "X"):  # state ppid pgrp session
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            found.append(f"process {stat.parent.name} of the killed run: {cmdline[:120]}")
    return found


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
    parser.add_argument(
        "--hog-runs", type=int, nargs="*", help="only these runs get the hogs (default: every run)"
    )
    parser.add_argument(
        "--kill-first", type=float, metavar="S", help="first, a run SIGKILLed S seconds in"
    )
    parser.add_argument("--logs", type=Path, default=Path("/tmp/vlanlb-soak"))
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    options = parser.parse_args()
    options.logs.mkdir(parents=True, exist_ok=True)
    before = set(leftovers())
    failures: collections.Counter[str] = collections.Counter()
    times, failed_runs = [], 0
    copies = 2 if options.pair else 1
    killed = None
    if options.kill_first is not None:
        killed = killed_run(options.pytest_args, options.kill_first, options.logs / "killed.log")
        print(f"run  0   killed (SIGKILL) {options.kill_first:g}s in", flush=True)
    for number in range(1, options.runs + 1):
        deadline = time.monotonic() + 3600
        hogged = options.hog_runs is None or number in options.hog_runs
        hogs = [
            multiprocessing.Process(target=hog, args=(deadline,), daemon=True)
            for _ in range(options.hog if hogged else 0)
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
            load = f" ({len(hogs)} hogs)" if hogs else ""
            print(f"run {number:>2}.{copy} {mark} {elapsed:6.1f}s  {summary}{load}", flush=True)
            for test in failed:
                print(f"           {test}", flush=True)
    left = sorted(set(leftovers()) - before) + (survivors(killed) if killed else [])
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
