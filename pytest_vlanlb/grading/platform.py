"""`vlanlb check STEP`: one step of one lab, as a lab platform asks "is this step done?".

Killercoda's and Katacoda's `verify.sh` pass on exit 0; a hint written to the file named by
`$VERIFICATION_FAILURE_REASON` is shown to the learner. Instruqt's `check` scripts fail with
`fail-message "..."` and exit 1. So: one line on stdout (`PASS <step>: <title>` or
`FAIL: <hint>`), exit 0 or 1, and the hint in that file where the variable is set
(docs/lab-platforms.md has both scripts).
"""

from __future__ import annotations

import os
from pathlib import Path

import podman

from ..model.topology import Topology
from .environments import Environment
from .messages import Speaker
from .steps import grade
from .student import StudentLab
from .verdict import Verdict

#: Where Killercoda/Katacoda read a failed verification's reason (a file path).
FAILURE_REASON = "VERIFICATION_FAILURE_REASON"


def check_line(verdict: Verdict) -> str:
    """The one line a check prints: a pass with its title, else the hint (a step that cannot
    be judged is not done either: its hint says what to do first)."""
    if verdict.passed:
        return f"PASS {verdict.id}: {verdict.title}"
    return f"FAIL: {verdict.hint or '; '.join(verdict.evidence)}"


def check_step(
    environment: Environment,
    topology: Topology,
    client: podman.PodmanClient,
    step: str,
    speaker: Speaker,
) -> int:
    lab = StudentLab(environment, topology, client, speaker)
    try:
        verdict = grade(lab, step)
    finally:
        lab.close()
    line = check_line(verdict)
    print(line)
    if not verdict.passed and (reason := os.environ.get(FAILURE_REASON)):
        Path(reason).write_text(line.removeprefix("FAIL: ") + "\n", encoding="utf-8")
    return 0 if verdict.passed else 1
