"""pytest items for grading mode: one item per (environment, step), and the report's plugin
object (the results are `results`', the files and tables `writers`')."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ..errors import VlanlbError
from ..model.topology import Topology
from ..podman.api import PodmanApi, connect
from . import writers
from .environments import Environment
from .messages import Speaker
from .results import ENV_PROPERTY, STEP_PROPERTY, VERDICT_PROPERTY, Results
from .steps import STEP_IDS, grade, titles
from .student import StudentLab
from .verdict import NOT_YET, Verdict
from .writers import check_report_target


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
            api = report.api_for(self.environment.url)
            cached = StudentLab(self.environment, self.topology, api.client(timeout=60), report.say)
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
    """A plugin object: the podman APIs the students' labs are reached through, the results
    (verdicts arrive from xdist workers too, in user_properties), and the grade printed and
    written at the end."""

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
        self.apis: dict[str | None, PodmanApi | VlanlbError] = {}
        self.results = Results(environments, self.titles, self.say)
        self.environments = self.results.environments
        self.target = Path(target) if target else None
        self.several = several
        if self.target is not None:
            check_report_target(self.target, several)

    def api_for(self, url: str | None) -> PodmanApi:
        """The podman API for `url`; without one, a running local API or one we start (with
        podman's own backend, so it sees the student's containers as the CLI does)."""
        if url not in self.apis:
            try:
                self.apis[url] = connect(url, network_backend="default", identity=self.identity)
            except VlanlbError as exc:  # once per URL, not once per step
                self.apis[url] = exc
        found = self.apis[url]
        if isinstance(found, VlanlbError):
            raise found
        return found

    def pytest_unconfigure(self) -> None:
        for api in self.apis.values():
            if isinstance(api, PodmanApi):
                api.stop()
        self.apis.clear()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.results.add(report)

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if hasattr(config, "workerinput"):
            return  # the controller reports, with every worker's verdicts
        for api in self.apis.values():
            if isinstance(api, PodmanApi):
                terminalreporter.write_line(f"vlanlb: graded through {api.describe()}")
        for name in self.environments:
            terminalreporter.write_sep("-", f"vlanlb grade: {name}")
            for line in writers.table(self.results, name):
                terminalreporter.write_line(line)
        if self.several:
            terminalreporter.write_sep("-", self.say("class.header", labs=len(self.environments)))
            for line in writers.matrix(self.results):
                terminalreporter.write_line(line)
        if self.target is not None:
            for path in writers.write(self.results, self.target, self.several, self.topology_name):
                terminalreporter.write_line(f"vlanlb: report written to {path}")
