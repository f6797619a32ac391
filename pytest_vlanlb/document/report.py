"""A step's verdict as text (the failure report, `-rA`) and as data (junit properties)."""

from __future__ import annotations

from typing import Any

from ..observation.drawing import said_walk
from ..observation.words import default_language
from .diagnosis import one_line
from .mapping import Action
from .model import Outcome, StepVerdict

OUTPUT_LINES = 12  # of each command's output, in the report


def _tail(text: str, lines: int = OUTPUT_LINES) -> list[str]:
    # A progress meter (curl's) redraws its line with carriage returns: keep what stayed.
    kept = [line.rsplit("\r", 1)[-1] for line in text.rstrip("\n").split("\n")]
    if len(kept) > lines:
        return [f"... ({len(kept) - lines} lines above)", *kept[-lines:]]
    return kept


def describe(verdict: StepVerdict, limit: float) -> str:
    section = verdict.section
    mark = "passed" if verdict.passed else "FAILED"
    lines = [f"{verdict.document}::{section.id} — {section.title} — {mark}"]
    for name, check in verdict.prerequisites:
        lines.append(
            f"  {'✓' if check.ok else '✗'} prerequisite: container {name} running: {check.seen}"
        )
    for outcome in verdict.outcomes:
        lines += _outcome(outcome, limit)
    return "\n".join(lines)


def _outcome(outcome: Outcome, limit: float) -> list[str]:
    typed, plan = outcome.typed, outcome.plan
    mark = "✗" if outcome.failed else ("-" if plan.action is Action.SKIP else "✓")
    lines = [f"  {mark} line {typed.line}: {one_line(typed.source)}"]
    pad = "      "
    for note in plan.notes:
        lines.append(f"{pad}rewritten: {note}")
    if plan.action is Action.SKIP:
        return [*lines, f"{pad}skipped: {plan.reason}"]
    if plan.action is Action.REFUSED:
        return [*lines, f"{pad}NOT RUN: {plan.reason}"]
    if plan.action is Action.RUN and plan.script != typed.source:
        lines.append(f"{pad}ran: {one_line(plan.script)}")
    observed = outcome.observed
    if observed is None:
        return lines
    status = observed.describe_status(limit)
    expect = "" if outcome.status_ok else f" — expected {outcome.expected_status}"
    took = "" if observed.stopped else f" after {observed.seconds:.1f} s"
    lines.append(f"{pad}{status}{took}{expect}")
    if outcome.allowed is not None:
        allowed = outcome.allowed
        lines.append(
            f"{pad}its failure is allowed ({allowed.kind}): the document says {allowed.words!r}"
        )
    for stream, text in (("stdout", observed.stdout), ("stderr", observed.stderr)):
        if text.strip() and (outcome.failed or stream == "stdout"):
            lines.append(f"{pad}{stream}:")
            lines += [f"{pad}  | {line}" for line in _tail(text)]
    for promise, check in outcome.checks:
        mark = "✓" if check.ok else "✗"
        lines.append(f"{pad}{mark} the document says: {promise.words!r} — seen: {check.seen}")
    for example in typed.examples:
        lines.append(f"{pad}· sample output in the document, not checked: {example!r}")
    for words in typed.not_understood:
        lines.append(f"{pad}? the document says, not understood here (not checked): {words!r}")
    for line in outcome.diagnosis:
        lines.append(f"{pad}diagnosis: {line}")
    return lines


def as_data(verdict: StepVerdict, language: str | None = None) -> dict[str, Any]:
    """The verdict as plain data (junit's property, the report page); walks said in
    `language` (default: the locale's)."""
    language = language or default_language()
    return {
        "document": verdict.document,
        "step": verdict.section.id,
        "title": verdict.section.title,
        "passed": verdict.passed,
        "commands": [
            {
                "line": o.typed.line,
                "command": one_line(o.typed.source),
                "action": o.plan.action.value,
                "rewritten": o.plan.notes,
                "reason": o.plan.reason,
                "exit_status": o.observed.status if o.observed else None,
                "timed_out": bool(o.observed and o.observed.timed_out and not o.observed.stopped),
                "stopped": o.observed.stopped if o.observed else "",
                "seconds": round(o.observed.seconds, 2) if o.observed else None,
                "promises": [{"says": p.words, "held": c.ok, "seen": c.seen} for p, c in o.checks],
                "allowed_by": o.allowed.words if o.allowed else None,
                "not_understood": o.typed.not_understood,
                "diagnosis": o.diagnosis,
                "walks": [said_walk(walk, language) for walk in o.walks],
                "failed": o.failed,
            }
            for o in verdict.outcomes
        ],
    }


def _cell(text: str) -> str:
    """A document's text (a stranger's, on a pull request) for one Markdown table cell or
    list item: one line, its pipes, backticks and HTML made plain characters."""
    return one_line(text).replace("|", "\\|").replace("`", "'").replace("<", "&lt;")


def markdown_summary(verdicts: dict[str, StepVerdict], limit: float) -> str:
    """Every step's verdict as Markdown (a CI job's summary page: GitHub's
    $GITHUB_STEP_SUMMARY), and for each failed step what failed: the command, what the text
    promised and what was seen, and the diagnosis."""
    passed = sum(v.passed for v in verdicts.values())
    lines = [
        f"## vlanlb documents: {passed} of {len(verdicts)} steps did what their text says",
        "",
        "| step | title | verdict |",
        "|---|---|---|",
    ]
    for nodeid, verdict in verdicts.items():
        mark = "skipped" if verdict.all_skipped else "passed" if verdict.passed else "**FAILED**"
        lines.append(f"| `{nodeid}` | {_cell(verdict.section.title)} | {mark} |")
    for nodeid, verdict in verdicts.items():
        if verdict.passed:
            continue
        lines += ["", f"### `{nodeid}`: {_cell(verdict.section.title)}", ""]
        for name, check in verdict.prerequisites:
            if not check.ok:
                lines.append(f"- prerequisite: container {name} running: {_cell(check.seen)}")
        for outcome in verdict.outcomes:
            if not outcome.failed:
                continue
            source = _cell(outcome.typed.source)
            if outcome.plan.action is Action.REFUSED:
                lines.append(
                    f"- line {outcome.typed.line}, `{source}`: not run: {outcome.plan.reason}"
                )
                continue
            status = outcome.observed.describe_status(limit) if outcome.observed else ""
            lines.append(f"- line {outcome.typed.line}, `{source}`: {_cell(status)}")
            for promise, check in outcome.checks:
                if not check.ok:
                    lines.append(
                        f"  - the document says {_cell(promise.words)!r}: seen {_cell(check.seen)}"
                    )
            lines += [f"  - diagnosis: {_cell(line)}" for line in outcome.diagnosis]
    return "\n".join(lines) + "\n"
