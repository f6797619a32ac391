"""The class's results written out: the terminal's tables (a student's steps, the class
matrix), each student's JSON, class.csv and the class page (`html`)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..errors import VlanlbError
from .results import Results
from .steps import STEP_IDS
from .verdict import Status

#: The terminal table's mark per status (the JSON has the status itself).
MARKS: dict[str, str] = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.CANNOT_JUDGE: "????",
    Status.NOT_YET: "----",
}


def _mark(status: str) -> str:
    return MARKS.get(status, "FAIL")


def table(results: Results, name: str) -> list[str]:
    """One student's steps, each with its mark and, where it failed, the hint."""
    lines = [f"vlanlb grade: {name} ({results.score_text(name)})"]
    for step in results.record(name).steps:
        lines.append(f"  {_mark(step['status'])}  {step['id']:<11} {step['title']}")
        if step["hint"]:
            lines.append(f"        {results.say('label.hint')}: {step['hint']}")
    return lines


def matrix(results: Results) -> list[str]:
    """The class at a glance: students x steps, each step's pass count, each score."""
    say, names = results.say, list(results.environments)
    width = max(len(name) for name in names)
    columns = [max(len(step), 4) for step in STEP_IDS]
    head = " ".join(f"{s:<{w}}" for s, w in zip(STEP_IDS, columns, strict=True))
    lines = [f"{'':<{width}}  {head}  {say('label.score')}"]
    for name in names:
        cells = " ".join(
            f"{_mark(s['status']):<{w}}"
            for s, w in zip(results.record(name).steps, columns, strict=True)
        )
        lines.append(f"{name:<{width}}  {cells}  {results.score_text(name)}")
    counts = []
    for index, column in enumerate(columns):
        steps = [results.record(n).steps[index] for n in names]
        graded = [s for s in steps if s["status"] != Status.NOT_YET]
        count = f"{sum(s['status'] == Status.PASS for s in graded)}/{len(graded)}"
        counts.append(f"{count:<{column}}")
    lines.append(f"{say('label.passed'):<{width}}  {' '.join(counts)}")
    return lines


def write(results: Results, path: Path, several: bool, topology: str) -> list[Path]:
    """One student: a JSON file at `path`; a class: a folder of them, class.csv and the
    class page."""
    if not several:
        (name,) = results.environments
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results.record(name).as_dict(), indent=2) + "\n")
        return [path]
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for name in results.environments:
        target = path / f"{name}.json"
        target.write_text(json.dumps(results.record(name).as_dict(), indent=2) + "\n")
        written.append(target)
    written.append(write_csv(results, path / "class.csv"))
    written.append(write_html(results, path / "index.html", topology))
    return written


def write_html(results: Results, target: Path, topology: str) -> Path:
    """The class at a glance and each student's page, in one file (see `html`)."""
    from .html import render

    say, names = results.say, list(results.environments)
    page = render(
        say,
        say("page.title", labs=len(names), topology=topology),
        [(step, results.titles[step]) for step in STEP_IDS],
        {name: results.record(name).as_dict() for name in names},
        {name: results.score_text(name) for name in names},
    )
    target.write_text(page, encoding="utf-8")
    return target


def write_csv(results: Results, target: Path) -> Path:
    """One row per student, one column per step (its status), the score: for a
    spreadsheet. UTF-8 with a byte-order mark, which spreadsheet programs read as such."""
    with target.open("w", newline="", encoding="utf-8-sig") as out:
        writer = csv.writer(out)
        writer.writerow(["name", *STEP_IDS, "score", "max", "steps_passed", "steps_graded"])
        for name in results.environments:
            record = results.record(name).as_dict()
            writer.writerow(
                [
                    name,
                    *(s["status"] for s in record["steps"]),
                    f"{record['score']:g}",
                    f"{record['max']:g}",
                    record["steps_passed"],
                    record["steps_graded"],
                ]
            )
    return target


def check_report_target(target: Path, several: bool) -> None:
    """Refuse, before anything is graded, a report path that cannot be written."""
    folder = target if several else target.parent
    what = "--vlanlb-report"
    if several and target.exists() and not target.is_dir():
        raise VlanlbError(f"{what} {target}: is a file; with --vlanlb-class it names a folder")
    if not several and target.is_dir():
        raise VlanlbError(f"{what} {target}: is a folder; name a file such as grade.json")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise VlanlbError(f"{what} {target}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise VlanlbError(f"{what} {target}: {existing} is not writable; choose another path")
