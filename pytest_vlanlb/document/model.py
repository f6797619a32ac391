"""What a document run is made of: each typed command with what the text says of it, what
happened to it, a step's verdict, the rules steps wrote; and the judging of a command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..observation.walk import Walk
from .bash import Command
from .mapping import Action, Plan, RuleWrite
from .markdown import Fence, Section
from .promises import (
    Check,
    Observed,
    Promise,
)
from .tolerance import Allowance


@dataclass
class Typed:
    """One command of a step, with everything the document says about it."""

    document: str
    section: str
    line: int  # in the document
    block: Fence
    command: Command
    promises: list[Promise] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    needs_internet: bool = False
    not_understood: list[str] = field(default_factory=list)
    #: Where the text lets this command fail (nearest words first).
    allowances: list[Allowance] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.command.text


@dataclass
class Outcome:
    """What happened to one typed command."""

    typed: Typed
    plan: Plan
    observed: Observed | None = None
    status_ok: bool = True
    expected_status: str = ""
    checks: list[tuple[Promise, Check]] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    walks: list[Walk] = field(default_factory=list)  # a failed probe's, through each router
    allowed: Allowance | None = None  # the words that let its failure pass

    @property
    def failed(self) -> bool:
        return (
            self.plan.action is Action.REFUSED
            or not self.status_ok
            or any(not check.ok for _, check in self.checks)
        )


@dataclass
class StepVerdict:
    document: str
    section: Section
    outcomes: list[Outcome] = field(default_factory=list)
    prerequisites: list[tuple[str, Check]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(o.failed for o in self.outcomes) and all(c.ok for _, c in self.prerequisites)

    @property
    def all_skipped(self) -> bool:
        return bool(self.outcomes) and all(o.plan.action is Action.SKIP for o in self.outcomes)


@dataclass
class Written:
    """A rule some step wrote, to name it when its counter explains a failure."""

    rule: RuleWrite
    where: str  # "k8s_lb_ja.md::step-2 line 86"
    source: str


def judge(outcome: Outcome, resolve: Callable[[str], str]) -> None:
    """Whether the command did what the text says: its status, and each promise."""
    observed, typed = outcome.observed, outcome.typed
    assert observed is not None
    expects_failure = any(p.expects_failure for p in typed.promises)
    if expects_failure:
        outcome.expected_status = "a failure (the document says so)"
        outcome.status_ok = observed.status != 0
    elif typed.command.may_fail:
        outcome.expected_status = "any (the document discards its errors)"
        outcome.status_ok = not observed.timed_out
    else:
        outcome.expected_status = "exit status 0"
        outcome.status_ok = observed.status == 0
        if observed.status not in (0, None) and not outcome.plan.notes:
            # Not for a command the runner rewrote (apk add -> a tool check): its failure says
            # the image lacks the tool, which nothing here can install; no text allows that.
            output = observed.stdout + observed.stderr
            outcome.allowed = next(
                (a for a in typed.allowances if a.covers(typed.source, output)), None
            )
            outcome.status_ok = outcome.allowed is not None
    outcome.checks = [(p, p.check(observed, resolve)) for p in typed.promises]
