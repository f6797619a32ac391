"""pytest items for grading mode: one item per (environment, step), and the report."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ..errors import VlanlbError
from ..model.topology import Topology
from ..podman.api import PodmanService, connect
from .environments import Environment
from .messages import Speaker
from .steps import STEP_IDS, grade, titles
from .student import StudentLab
from .verdict import CANNOT_JUDGE, FAIL, NOT_YET, PASS, Verdict

VERDICT_PROPERTY = "vlanlb_verdict"
ENV_PROPERTY = "vlanlb_environment"
STEP_PROPERTY = "vlanlb_step"
#: The terminal table's mark per status (the JSON has the status itself).
MARKS = {PASS: "PASS", FAIL: "FAIL", CANNOT_JUDGE: "????", NOT_YET: "----"}


class GradeFailure(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.id)
        self.verdict = verdict


class EnvironmentCollector(pytest.Collector):
    """All steps of one student's environment (`grade-NAME::STEP`, junit class grade-NAME)."""

    def __init__(self, *, environment: Environment, topology: Topology, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.topology = topology

    def collect(self) -> Iterable[pytest.Item]:
        # With pytest-xdist, `--dist loadscope` keeps one environment's steps on one worker
        # (its scope is this collector), so their probes never overlap.
        for step in STEP_IDS:
            yield StepItem.from_parent(self, name=step)

    def student_lab(self) -> StudentLab:
        cached = getattr(self, "_student_lab", None)
        if cached is None:
            report = self.config.pluginmanager.get_plugin(GradeReport.PLUGIN_NAME)
            assert isinstance(report, GradeReport)
            service = report.service_for(self.environment.url)
            cached = StudentLab(
                self.environment, self.topology, service.client(timeout=60), report.say
            )
            self._student_lab = cached
        return cached

    def teardown(self) -> None:
        """After the environment's last step (pytest tears a collector down then)."""
        cached = getattr(self, "_student_lab", None)
        if cached is not None:
            cached.close()


class StepItem(pytest.Item):
    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, EnvironmentCollector)
        # First, so that even a grader that fails says whose step it was.
        # Structured values as JSON: junit writes str(value), and CI tools read JSON.
        environment = json.dumps(parent.environment.describe(), ensure_ascii=False)
        self.user_properties.append((ENV_PROPERTY, environment))
        self.user_properties.append((STEP_PROPERTY, self.name))
        if not parent.environment.graded(self.name, STEP_IDS):
            report = self.config.pluginmanager.get_plugin(GradeReport.PLUGIN_NAME)
            assert isinstance(report, GradeReport)
            verdict = Verdict(
                self.name,
                report.titles[self.name],
                NOT_YET,
                [report.say("ev.not_graded_yet", upto=parent.environment.upto)],
            )
            self.user_properties.append((VERDICT_PROPERTY, json.dumps(verdict.as_dict())))
            pytest.skip(f"not yet: graded up to {parent.environment.upto}")
        verdict = grade(parent.student_lab(), self.name)
        self.user_properties.append(
            (VERDICT_PROPERTY, json.dumps(verdict.as_dict(), ensure_ascii=False))
        )
        if not verdict.passed:
            raise GradeFailure(verdict)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GradeFailure):
            v = excinfo.value.verdict
            report = self.config.pluginmanager.get_plugin(GradeReport.PLUGIN_NAME)
            say = report.say if isinstance(report, GradeReport) else Speaker()
            seen, hint = say("label.seen"), say("label.hint")
            lines = [f"{v.id}: {v.title}", *[f"  {seen}: {e}" for e in v.evidence]]
            return "\n".join([*lines, f"  {hint}: {v.hint}"])
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "vlanlb-grade", None, f"{self.parent.name if self.parent else ''}::{self.name}"


def grading_collectors(
    session: pytest.Session, environments: list[Environment], topology: Topology
) -> list[pytest.Item]:
    items: list[pytest.Item] = []
    for environment in environments:
        collector = EnvironmentCollector.from_parent(
            session, name=f"grade-{environment.name}", environment=environment, topology=topology
        )
        items.extend(collector.collect())
    return items


class GradeReport:
    """A plugin object: collects verdicts (also from xdist workers, which send them in
    user_properties) and prints and writes the grade at the end."""

    PLUGIN_NAME = "vlanlb-grade-report"

    def __init__(
        self,
        environments: list[Environment],
        topology: Topology,
        target: str | None,
        several: bool,
        identity: str | None = None,
        language: str = "en",
    ) -> None:
        self.identity = identity
        self.say = Speaker(language)
        self.titles = titles(topology, self.say)
        self.topology_name = topology.name
        self.services: dict[str | None, PodmanService | VlanlbError] = {}
        self.environments = {e.name: e for e in environments}
        self.verdicts: dict[str, dict[str, dict[str, Any]]] = {e.name: {} for e in environments}
        self.target = Path(target) if target else None
        self.several = several
        if self.target is not None:
            check_report_target(self.target, several)

    def service_for(self, url: str | None) -> PodmanService:
        """The podman API for `url`; without one, a running local service or one we start
        (with podman's own backend, so it sees the student's containers as the CLI does)."""
        if url not in self.services:
            try:
                self.services[url] = connect(url, network_backend="default", identity=self.identity)
            except VlanlbError as exc:  # once per URL, not once per step
                self.services[url] = exc
        found = self.services[url]
        if isinstance(found, VlanlbError):
            raise found
        return found

    def pytest_unconfigure(self) -> None:
        for service in self.services.values():
            if isinstance(service, PodmanService):
                service.stop()
        self.services.clear()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.add(report)

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if hasattr(config, "workerinput"):
            return  # the controller reports, with every worker's verdicts
        for service in self.services.values():
            if isinstance(service, PodmanService):
                terminalreporter.write_line(f"vlanlb: graded through {service.describe()}")
        for name in self.environments:
            terminalreporter.write_sep("-", f"vlanlb grade: {name}")
            for line in self.table(name):
                terminalreporter.write_line(line)
        if self.several:
            terminalreporter.write_sep("-", self.say("class.header", labs=len(self.environments)))
            for line in self.matrix():
                terminalreporter.write_line(line)
        if self.target is not None:
            for path in self.write(self.target, self.several):
                terminalreporter.write_line(f"vlanlb: report written to {path}")

    def add(self, report: pytest.TestReport) -> None:
        properties: dict[str, Any] = dict(report.user_properties)
        if VERDICT_PROPERTY in properties:
            name = json.loads(properties[ENV_PROPERTY])["name"]
            verdict = json.loads(properties[VERDICT_PROPERTY])
            self.verdicts[name][verdict["id"]] = verdict
        elif report.when == "call" and report.failed and STEP_PROPERTY in properties:
            # The grader could not grade (no podman API, a crash): still a verdict, with the
            # reason as evidence.
            name, step = json.loads(properties[ENV_PROPERTY])["name"], properties[STEP_PROPERTY]
            reason = str(report.longrepr).strip().removeprefix("pytest-vlanlb: ")
            self.verdicts[name][step] = Verdict(
                step,
                self.titles[step],
                CANNOT_JUDGE,
                [reason[-500:]],
                self.say("hint.could_not_probe"),
            ).as_dict()

    def document(self, name: str) -> dict[str, Any]:
        environment = self.environments[name]
        steps = [
            self.verdicts[name].get(step)
            or Verdict(
                step,
                self.titles[step],
                CANNOT_JUDGE,
                [self.say("ev.not_graded")],
                self.say("hint.not_graded"),
            ).as_dict()
            for step in STEP_IDS
        ]
        graded = [s for s in steps if s["status"] != NOT_YET]
        passed = [s for s in graded if s["status"] == PASS]
        for step in steps:
            step["weight"] = _number(environment.weight(step["id"]))
        return {
            "environment": environment.describe(),
            "steps": steps,
            # Weighted (each step 1 unless the class file says otherwise), over the steps
            # graded in this run: after the checkpoint, "not yet" counts for nothing.
            "score": _number(sum(s["weight"] for s in passed)),
            "max": _number(sum(s["weight"] for s in graded)),
            "steps_passed": len(passed),
            "steps_graded": len(graded),
        }

    def score_text(self, name: str) -> str:
        doc = self.document(name)
        counts = {"passed": doc["steps_passed"], "graded": doc["steps_graded"]}
        if self.environments[name].weights:
            text = self.say("label.steps_points", score=doc["score"], max=doc["max"], **counts)
        else:
            text = self.say("label.steps", **counts)
        if self.environments[name].upto:
            text += self.say("label.up_to", upto=self.environments[name].upto)
        return text

    def table(self, name: str) -> list[str]:
        doc = self.document(name)
        lines = [f"vlanlb grade: {name} ({self.score_text(name)})"]
        for step in doc["steps"]:
            mark = MARKS.get(step["status"], "FAIL")
            lines.append(f"  {mark}  {step['id']:<11} {step['title']}")
            if step["hint"]:
                lines.append(f"        {self.say('label.hint')}: {step['hint']}")
        return lines

    def matrix(self) -> list[str]:
        """The class at a glance: students x steps, each step's pass count, each score."""
        width = max(len(name) for name in self.environments)
        columns = [max(len(step), 4) for step in STEP_IDS]
        head = " ".join(f"{s:<{w}}" for s, w in zip(STEP_IDS, columns, strict=True))
        lines = [f"{'':<{width}}  {head}  {self.say('label.score')}"]
        for name in self.environments:
            doc = self.document(name)
            cells = " ".join(
                f"{MARKS.get(s['status'], 'FAIL'):<{w}}"
                for s, w in zip(doc["steps"], columns, strict=True)
            )
            lines.append(f"{name:<{width}}  {cells}  {self.score_text(name)}")
        counts = []
        for index, column in enumerate(columns):
            steps = [self.document(n)["steps"][index] for n in self.environments]
            graded = [s for s in steps if s["status"] != NOT_YET]
            count = f"{sum(s['status'] == PASS for s in graded)}/{len(graded)}"
            counts.append(f"{count:<{column}}")
        passed = self.say("label.passed")
        lines.append(f"{passed:<{width}}  {' '.join(counts)}")
        return lines

    def write(self, path: Path, several: bool) -> list[Path]:
        written = []
        if several:
            path.mkdir(parents=True, exist_ok=True)
            for name in self.environments:
                target = path / f"{name}.json"
                target.write_text(json.dumps(self.document(name), indent=2) + "\n")
                written.append(target)
            written.append(self.write_csv(path / "class.csv"))
            written.append(self.write_html(path / "index.html"))
        else:
            (name,) = self.environments
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.document(name), indent=2) + "\n")
            written.append(path)
        return written

    def write_html(self, target: Path) -> Path:
        """The class at a glance and each student's page, in one file (see `html`)."""
        from .html import render

        page = render(
            self.say,
            self.say("page.title", labs=len(self.environments), topology=self.topology_name),
            [(step, self.titles[step]) for step in STEP_IDS],
            {name: self.document(name) for name in self.environments},
            {name: self.score_text(name) for name in self.environments},
        )
        target.write_text(page, encoding="utf-8")
        return target

    def write_csv(self, target: Path) -> Path:
        """One row per student, one column per step (its status), the score: for a
        spreadsheet. UTF-8 with a byte-order mark, which spreadsheet programs read as such."""
        with target.open("w", newline="", encoding="utf-8-sig") as out:
            writer = csv.writer(out)
            writer.writerow(["name", *STEP_IDS, "score", "max", "steps_passed", "steps_graded"])
            for name in self.environments:
                doc = self.document(name)
                writer.writerow(
                    [
                        name,
                        *(s["status"] for s in doc["steps"]),
                        f"{doc['score']:g}",
                        f"{doc['max']:g}",
                        doc["steps_passed"],
                        doc["steps_graded"],
                    ]
                )
        return target


def _number(value: float) -> float | int:
    """3.0 -> 3 (JSON and CSV readers see whole scores as whole numbers)."""
    return int(value) if float(value).is_integer() else value


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
