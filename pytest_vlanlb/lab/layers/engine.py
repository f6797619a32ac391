"""Running steps: one exec per node with all of that node's commands, nodes at the same
time, then waiting (tenacity) until each step has taken effect."""

from __future__ import annotations

import re
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
    commands: dict[str, list[list[str]]] = {}
    for step in ordered_steps:
        for node in nodes_for(lab, step):
            nodes[node.name] = node
            commands.setdefault(node.name, []).extend(step.commands(facts[node.name], undo))
    for name, argvs in commands.items():
        scripts[name] = batch_deletions(argvs)
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


#: A word iptables-restore reads as the shell would (it knows no single quotes).
_PLAIN_WORD = re.compile(r"""[^\s"'\\]+""")


def batch_deletions(argvs: Sequence[Sequence[str]]) -> list[str]:
    """The commands as shell lines, every `iptables [-t T] -D ...` of plain words in one
    `iptables-restore --noflush` where the first of them stood: iptables-nft waits out a
    kernel grace period for each commit that deletes rules (about 15 ms here), so a revert's
    four deletions cost one wait, not four. Only rules are deleted earlier than typed, which
    nothing after them depends on (a chain's `-X` follows its rules' `-D`). The same rules
    go; the base-state check after a revert still proves it."""
    lines: list[str] = []
    batch: dict[str, list[str]] = {}  # table -> restore lines, in the order typed
    at: int | None = None
    for argv in argvs:
        deletion = _deletion(argv)
        if deletion is None:
            lines.append(shlex.join(argv))
            continue
        if at is None:
            at = len(lines)
            lines.append("")  # the batch's place
        table, rule = deletion
        batch.setdefault(table, []).append(rule)
    if at is not None:
        body = [line for t, rules in batch.items() for line in (f"*{t}", *rules, "COMMIT")]
        lines[at] = f"printf '%s\\n' {shlex.join(body)} | iptables-restore --noflush"
    return lines


def _deletion(argv: Sequence[str]) -> tuple[str, str] | None:
    """(table, restore line) for `iptables [-t TABLE] -D CHAIN WORDS...` of plain words."""
    words = list(argv)
    if not words or words[0] != "iptables" or "-D" not in words:
        return None
    table = "filter"
    if words[1:2] == ["-t"] and len(words) > 2:
        table, words = words[2], [words[0], *words[3:]]
    if words[1:2] != ["-D"] or not all(_PLAIN_WORD.fullmatch(w) for w in words[2:]):
        return None
    return table, " ".join(["-D", *words[2:]])


def best_effort_undo(lab: Lab, steps: Sequence[Change]) -> None:
    """Undo what a failed apply may have done, one command at a time, ignoring failures."""
    for step in reversed(steps):
        for node in nodes_for(lab, step):
            for command in step.commands(lab_facts(lab, node), undo=True):
                node.exec(*command)
