"""Running steps: one exec per node with all of that node's commands, nodes at the same
time, then waiting (tenacity) until each step has taken effect."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..errors import LabBuildError
from ..lab import Lab
from ..node import ExecResult, Node
from ..probes import run_together
from ..topology import Role
from ..waiting import wait_until
from .state import STATE_SCRIPT
from .steps import Step, lab_facts

#: Separates the commands' output from the state dump appended to the router's exec.
STATE_MARK = "@@vlanlb-state@@"


def node_for(lab: Lab, role: Role) -> Node:
    """The node a step acts on: the router, the client, or the Service's pod."""
    return {Role.ROUTER: lab.router, Role.CLIENT: lab.client_node, Role.POD: lab.backend}[role]


def run_steps(lab: Lab, steps: Sequence[Step], undo: bool, *, report_state: bool = False) -> str:
    """Apply (or undo, in reverse) steps with one exec per node, nodes at the same time.

    With report_state, the router's exec also prints its state after the change (saves an
    exec per test for the base-state check). Returns that state, or "".
    """
    facts = lab_facts(lab)
    ordered_steps = list(reversed(steps)) if undo else list(steps)
    scripts: dict[Role, list[str]] = {}
    for step in ordered_steps:
        scripts.setdefault(step.node, []).extend(shlex.join(c) for c in step.commands(facts, undo))
    if report_state:
        scripts.setdefault(Role.ROUTER, []).append(f"echo {STATE_MARK}; {STATE_SCRIPT}")

    def run(target: Role) -> ExecResult:
        script = "set -e; " + "; ".join(scripts[target])
        return node_for(lab, target).exec("/bin/sh", "-c", script)

    results = dict(zip(scripts, run_together(*[lambda t=t: run(t) for t in scripts]), strict=True))
    failed = [
        f"{target.value}: {r.stderr.strip() or r.stdout.strip()}"
        for target, r in results.items()
        if not r.ok
    ]
    if failed:
        raise LabBuildError(
            f"{'reverting' if undo else 'applying'} layers failed on " + "; ".join(failed)
        )
    for step in ordered_steps:
        node = node_for(lab, step.node)

        def settled(step: Step = step, node: Node = node) -> bool:
            return step.settled(node, facts, undo)

        if not wait_until(settled, timeout=5.0):
            raise LabBuildError(
                f"{step.describe(facts)} on {node.name} did not take effect within 5s"
            )
    state = results[Role.ROUTER].stdout if report_state else ""
    return state.split(STATE_MARK, 1)[1] if STATE_MARK in state else ""


def best_effort_undo(lab: Lab, steps: Sequence[Step]) -> None:
    """Undo what a failed apply may have done, one command at a time, ignoring failures."""
    facts = lab_facts(lab)
    for step in reversed(steps):
        for command in step.commands(facts, undo=True):
            node_for(lab, step.node).exec(*command)
