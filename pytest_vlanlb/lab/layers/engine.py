"""Running steps: one exec per node with all of that node's commands, nodes at the same
time, then waiting (tenacity) until each step has taken effect."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ...errors import LayerError
from ...model.topology import Role
from ...observation.probes import run_together
from ...podman.container import ExecResult
from ...util.waiting import wait_until
from ..build import Lab
from ..node import Node
from .changes import Change, lab_facts
from .state import STATE_SCRIPT

#: Separates the commands' output from the state dump appended to a router's exec.
STATE_MARK = "@@vlanlb-state@@"


def nodes_for(lab: Lab, step: Change) -> list[Node]:
    """The nodes a step acts on: every router (or the leader only), the client, or every
    backend pod of the Service."""
    if step.node is Role.ROUTER:
        return [lab.router] if step.leader_only else lab.routers
    if step.node is Role.CLIENT:
        return [lab.client_node]
    return lab.backends


def run_steps(
    lab: Lab, steps: Sequence[Change], undo: bool, *, report_state: bool = False
) -> dict[str, str]:
    """Apply (or undo, in reverse) steps with one exec per node, nodes at the same time.

    With report_state, each router's exec also prints its state after the change (saves an
    exec per test for the base-state check). Returns that state per router name, or {}.
    """
    ordered_steps = list(reversed(steps)) if undo else list(steps)
    nodes: dict[str, Node] = {}
    scripts: dict[str, list[str]] = {}
    facts = {name: lab_facts(lab, node) for name, node in lab.nodes.items()}
    for step in ordered_steps:
        for node in nodes_for(lab, step):
            nodes[node.name] = node
            commands = step.commands(facts[node.name], undo)
            scripts.setdefault(node.name, []).extend(shlex.join(c) for c in commands)
    if report_state:
        for router in lab.routers:
            nodes[router.name] = router
            scripts.setdefault(router.name, []).append(f"echo {STATE_MARK}; {STATE_SCRIPT}")

    def run(name: str) -> ExecResult:
        script = "set -e; " + "; ".join(scripts[name])
        return nodes[name].exec("/bin/sh", "-c", script)

    results = dict(zip(scripts, run_together(*[lambda n=n: run(n) for n in scripts]), strict=True))
    failed = [
        f"{name}: {r.stderr.strip() or r.stdout.strip()}" for name, r in results.items() if not r.ok
    ]
    if failed:
        raise LayerError(
            f"{'reverting' if undo else 'applying'} layers failed on " + "; ".join(failed)
        )
    for step in ordered_steps:
        for node in nodes_for(lab, step):

            def settled(step: Change = step, node: Node = node) -> bool:
                return step.settled(node, facts[node.name], undo)

            # Checks cost a millisecond or two through the node's shell: poll often.
            if not wait_until(settled, timeout=5.0, interval=0.01):
                raise LayerError(
                    f"{step.describe(facts[node.name])} on {node.name} did not take effect "
                    "within 5s"
                )
    if not report_state:
        return {}
    return {
        router.name: results[router.name].stdout.split(STATE_MARK, 1)[-1] for router in lab.routers
    }


def best_effort_undo(lab: Lab, steps: Sequence[Change]) -> None:
    """Undo what a failed apply may have done, one command at a time, ignoring failures."""
    for step in reversed(steps):
        for node in nodes_for(lab, step):
            for command in step.commands(lab_facts(lab, node), undo=True):
                node.exec(*command)
