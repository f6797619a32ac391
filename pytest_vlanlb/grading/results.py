"""A class's results: each student's verdicts as they arrive (from xdist workers too), and
each student's record (the steps, their weights, the score) computed once from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from .environments import Environment
from .messages import Speaker
from .steps import STEP_IDS
from .verdict import Status, Verdict

VERDICT_PROPERTY = "vlanlb_verdict"
ENV_PROPERTY = "vlanlb_environment"
STEP_PROPERTY = "vlanlb_step"


@dataclass(frozen=True)
class Record:
    """One student's graded steps (each verdict as a dict, with its weight) and score."""

    environment: Environment
    steps: list[dict[str, Any]]
    score: float  # weighted (each step 1 unless the class file says otherwise)
    max: float  # over the steps graded in this run: after the checkpoint, "not yet" is 0
    steps_passed: int
    steps_graded: int

    def as_dict(self) -> dict[str, Any]:
        """The student's JSON report."""
        return {
            "environment": self.environment.describe(),
            "steps": self.steps,
            "score": _number(self.score),
            "max": _number(self.max),
            "steps_passed": self.steps_passed,
            "steps_graded": self.steps_graded,
        }


class Results:
    """Verdicts by student and step; records computed once each, anew only when a verdict
    arrives after."""

    def __init__(
        self, environments: list[Environment], titles: dict[str, str], say: Speaker
    ) -> None:
        self.environments = {e.name: e for e in environments}
        self.titles = titles
        self.say = say
        self.verdicts: dict[str, dict[str, dict[str, Any]]] = {e.name: {} for e in environments}
        self._records: dict[str, Record] = {}

    def set(self, name: str, verdict: dict[str, Any]) -> None:
        self.verdicts[name][verdict["id"]] = verdict
        self._records.pop(name, None)

    def add(self, report: pytest.TestReport) -> None:
        """A step's verdict from its report's properties; a step the grader could not grade
        (no podman API, a crash) is still a verdict, with the reason as evidence."""
        properties: dict[str, Any] = dict(report.user_properties)
        if VERDICT_PROPERTY in properties:
            name = json.loads(properties[ENV_PROPERTY])["name"]
            self.set(name, json.loads(properties[VERDICT_PROPERTY]))
        elif report.when == "call" and report.failed and STEP_PROPERTY in properties:
            name, step = json.loads(properties[ENV_PROPERTY])["name"], properties[STEP_PROPERTY]
            reason = str(report.longrepr).strip().removeprefix("pytest-vlanlb: ")
            self.set(name, self._cannot_judge(step, [reason[-500:]], "hint.could_not_probe"))

    def _cannot_judge(self, step: str, evidence: list[str], hint: str) -> dict[str, Any]:
        return Verdict(
            step, self.titles[step], Status.CANNOT_JUDGE, evidence, self.say(hint)
        ).as_dict()

    def record(self, name: str) -> Record:
        if name not in self._records:
            environment = self.environments[name]
            steps = [
                dict(
                    self.verdicts[name].get(step)
                    or self._cannot_judge(step, [self.say("ev.not_graded")], "hint.not_graded")
                )
                for step in STEP_IDS
            ]
            for step in steps:
                step["weight"] = _number(environment.weight(step["id"]))
            graded = [s for s in steps if s["status"] != Status.NOT_YET]
            passed = [s for s in graded if s["status"] == Status.PASS]
            self._records[name] = Record(
                environment,
                steps,
                sum(s["weight"] for s in passed),
                sum(s["weight"] for s in graded),
                len(passed),
                len(graded),
            )
        return self._records[name]

    def score_text(self, name: str) -> str:
        record = self.record(name)
        counts = {"passed": record.steps_passed, "graded": record.steps_graded}
        if self.environments[name].weights:
            text = self.say(
                "label.steps_points", score=_number(record.score), max=_number(record.max), **counts
            )
        else:
            text = self.say("label.steps", **counts)
        if self.environments[name].upto:
            text += self.say("label.up_to", upto=self.environments[name].upto)
        return text


def _number(value: float) -> float | int:
    """3.0 -> 3 (JSON and CSV readers see whole scores as whole numbers)."""
    return int(value) if float(value).is_integer() else value
