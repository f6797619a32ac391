"""Benchmark: grading a class of student labs with pytest-xdist.

Builds N student-like labs side by side (the way tests/grading builds them: typed as the
workshop, busybox-only `alpine` for a and b; the usual mistakes and the complete lab, in
turn), writes the class file, and times `pytest -n 2 --vlanlb-class` over them (and serial,
for the speed-up), as an instructor would run it. The labs are built once, before timing,
and removed at the end; before each timed run, the exec sessions of what ran before are let
finish (bench/sessions.py). Usage (as root, after scripts/setup):

    .venv/bin/python bench/grading.py [--students 40] [--rounds 3]

Prints wall times per round, the medians, seconds per environment, the -n 2 speed-up, and
the seconds headless Chromium takes to render the class page (index.html) of that class.
Targets: 40 environments within 20 s with -n 2; the page of 40 rendered within 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from grading.browser import read_matrix  # noqa: E402
from grading.conftest import (  # noqa: E402  (the student-like labs of the grading tests)
    BUSYBOX,
    StudentLab,
    build_student_lab,
    busybox_rootfs,
    remove_student_lab,
)
from grading.workshop import ALL_VARIANTS, USUAL  # noqa: E402
from sessions import drain, sessions_since  # noqa: E402  (bench/sessions.py)

from pytest_vlanlb.host.image import ImageRecipe, import_rootfs  # noqa: E402
from pytest_vlanlb.host.sweep import remove_leftovers  # noqa: E402
from pytest_vlanlb.podman.api import PodmanApi, start_api  # noqa: E402

TARGET_SECONDS = 20.0
PAGE_TARGET = 2.0
SESSIONS: list[int] = []  # exec sessions (conmon processes) each grading run opened


def student_image(api: PodmanApi) -> str:
    client = api.client()
    tag = "localhost/vlanlb-bench-student-busybox:latest"
    if not client.images.exists(tag):
        if not BUSYBOX.exists():
            sys.exit(f"{BUSYBOX} is missing: run scripts/setup")
        with tempfile.TemporaryDirectory() as folder:
            rootfs = Path(folder) / "rootfs.tar"
            rootfs.write_bytes(busybox_rootfs())
            import_rootfs(client, rootfs, tag, ("sleep", "infinity"))
    return tag


@contextlib.contextmanager
def student_labs(api: PodmanApi, students: int) -> Iterator[dict[str, StudentLab]]:
    client = api.client()
    remove_leftovers(client)
    busybox = student_image(api)
    node = ImageRecipe().tag
    labs: dict[str, StudentLab] = {}
    try:
        for number in range(1, students + 1):
            variant = USUAL[(number - 1) % len(USUAL)]
            router = busybox if ALL_VARIANTS[variant].router_image == "busybox" else node
            name = f"s{number:02d}"
            labs[name] = build_student_lab(
                client, f"bench-{name}-", router, busybox, busybox, variant
            )
        yield labs
    finally:
        for lab in labs.values():
            remove_student_lab(client, lab)


def grade(work: Path, api: PodmanApi, *xdist: str) -> float:
    command = [
        str(ROOT / ".venv/bin/pytest"),
        "-p",
        "no:cacheprovider",
        "-q",
        *xdist,
        "--vlanlb-class",
        "class.yaml",
        f"--vlanlb-url={api.url}",
        "--vlanlb-report",
        "reports",
    ]
    drain()  # the labs' build, or the run before, ends its exec sessions on its own time
    epoch, start = time.time(), time.perf_counter()
    run = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    SESSIONS.append(sessions_since(epoch))
    # Students' mistakes fail their steps (exit 1); anything else is the grader's failure.
    if run.returncode not in (0, 1) or "vlanlb grade:" not in run.stdout:
        sys.exit(f"grading failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    api = start_api(network_backend="netavark")
    try:
        print(f"building {args.students} student-like labs ...", flush=True)
        with student_labs(api, args.students) as labs, tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            lines = ["environments:"]
            for name, lab in labs.items():
                lines += [f"  - name: {name}", f"    prefix: {lab.prefix}"]
            (work / "class.yaml").write_text("\n".join(lines) + "\n")
            contenders = {"-n 2": ("-n", "2", "--dist", "loadscope"), "serial": ()}
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for round_ in range(1, args.rounds + 1):
                for name, xdist in contenders.items():
                    times[name].append(grade(work, api, *xdist))
                    print(f"round {round_}: {name:6} {times[name][-1]:6.1f} s", flush=True)
            page = work / "reports" / "index.html"
            page_kib = page.stat().st_size // 1024
            renders = []
            for _ in range(args.rounds):
                shown, seconds = read_matrix(page, work)
                assert len(shown["rows"]) == args.students, shown["rows"].keys()
                renders.append(seconds)
    finally:
        api.stop()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmedians of {args.rounds} round(s), {args.students} environments:")
    for name, value in median.items():
        print(f"  {name:6} {value:6.1f} s  ({value / args.students:.2f} s per environment)")
    verdict = "meets" if median["-n 2"] <= TARGET_SECONDS else "misses"
    print(f"-n 2: {median['-n 2']:.1f} s ({verdict} the {TARGET_SECONDS:g} s target)")
    print(f"-n 2 speed-up over serial: {median['serial'] / median['-n 2']:.2f}x")
    print(f"exec sessions (conmon processes) opened per grading run: {SESSIONS}")
    render = statistics.median(renders)
    verdict = "meets" if render <= PAGE_TARGET else "misses"
    print(
        f"class page of {args.students} ({page_kib} KiB) in headless "
        f"Chromium, start to DOM read: median {render:.2f} s ({verdict} the {PAGE_TARGET:g} s "
        "target)"
    )


if __name__ == "__main__":
    main()
