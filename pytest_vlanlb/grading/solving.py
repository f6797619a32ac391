"""Bringing a student's lab to the workshop's state after a step (`vlanlb solve --upto STEP`),
so a student who fell behind can go on with the class, and the grader can be proved on
solved states (tests/grading/test_solve.py).

The plan is read from the lab (read-only, the grader's own probes), then each command is
printed as the student would type it and run through the podman API; the steps up to STEP are
graded again at the end, and what is still wrong is said. The commands are the catalogue's
(model/commands.py), the ones the grader's hints give. The state after a step is the workshop
as written: Step 2's literal DROP until Step 6, where it is replaced by the rule that spares
DNAT'ed traffic (a lab that already has that one keeps it). Containers and networks are never
created or removed: a missing or stopped container is said, not fixed.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import podman

from ..errors import VlanlbError
from ..model.commands import (
    ALPINE_PACKAGES,
    DNAT_VIP,
    DROP_DIRECT,
    DROP_DIRECT_NOT_DNAT,
    MASQUERADE_BACKEND,
    VIP_ADDRESS,
    WORKSHOP_SERVER,
    Rule,
)
from ..model.topology import Role, Topology
from ..observation.probes import HttpOutcome, ping_portable
from ..util.waiting import wait_until
from .environments import Environment
from .hints import Hints
from .judges import dnat_target, snat_rule_covers
from .lab_lock import LabLock
from .messages import Speaker
from .probing import get
from .steps import STEP_IDS, grade, unpause
from .student import StudentLab
from .verdict import Verdict

#: A command may install a package (`apk add`): longer than a probe's bound.
FIX_SECONDS = 60.0


@dataclass(frozen=True)
class Fix:
    """One command in one of the student's containers, for one step."""

    step: str
    role: Role
    words: tuple[str, ...]
    detach: bool = False  # Step 1's server keeps running


@dataclass
class Plan:
    fixes: list[Fix] = field(default_factory=list)
    #: (step, why) for what a command cannot fix: the student or instructor must.
    unfixable: list[tuple[str, str]] = field(default_factory=list)

    def add(self, step: str, role: Role, words: list[str], detach: bool = False) -> None:
        self.fixes.append(Fix(step, role, tuple(words), detach))


def through(upto: str) -> tuple[str, ...]:
    return STEP_IDS[: STEP_IDS.index(upto) + 1]


def plan(lab: StudentLab, upto: str) -> Plan:
    """What the lab needs to be the workshop's state after `upto`, read from it."""
    steps, result = through(upto), Plan()
    found, problems = lab.nodes()
    if len(found) < len(lab.specs):
        paused = lab.paused()
        hint = unpause(lab.say, paused) if paused else lab.say("hint.missing_containers")
        result.unfixable.append(("env", f"{'; '.join(problems)}: {hint}"))
        return result
    verdict = grade(lab, "env")
    if not verdict.passed:  # addresses, routes, forwarding: made with the containers
        result.unfixable.append(("env", _why(verdict)))
        return result
    hints = Hints(lab)
    if "web-server" in steps:
        _web_server(lab, hints, result)
    if "firewall" not in steps:
        return result
    if "iptables" not in lab.tools(Role.ROUTER):
        result.add(
            "firewall", Role.ROUTER, ["apk", "add", "--no-cache", ALPINE_PACKAGES["iptables"]]
        )
    literal = Rule("filter", "FORWARD", DROP_DIRECT)
    corrected = Rule("filter", "FORWARD", DROP_DIRECT_NOT_DNAT)
    if "vip-curl" in steps:
        # Step 6: the DROP as written (or its REJECT twin) goes, the corrected one stays.
        for line in _rules(lab, "filter", "FORWARD"):
            if _drops_everything(line, hints):
                result.add(
                    "vip-curl", Role.ROUTER, ["iptables", "-D", "FORWARD", *shlex.split(line)]
                )
        if not _present(lab, corrected, hints):
            result.add("vip-curl", Role.ROUTER, corrected.command("-I", hints.facts))
    elif not (
        _present(lab, literal, hints)
        or _present(lab, corrected, hints)
        or grade(lab, "firewall").passed  # the student's own rule that works stays
    ):
        result.add("firewall", Role.ROUTER, literal.command("-I", hints.facts))
    if "vip" in steps:
        holder = lab.router_if(lab.vip)
        if holder not in (None, hints.public_if):
            facts = {**hints.facts, "public_if": holder}
            result.add("vip", Role.ROUTER, VIP_ADDRESS.command("del", facts))
        if holder != hints.public_if:
            result.add("vip", Role.ROUTER, VIP_ADDRESS.command("add", hints.facts))
    if "dnat" in steps:
        target = f"{lab.backend}:{lab.port}"
        for line in _rules(lab, "nat", "PREROUTING"):
            if _catches_vip(line, lab) and dnat_target(line) != target:
                words = ["iptables", "-t", "nat", "-D", "PREROUTING", *shlex.split(line)]
                result.add("dnat", Role.ROUTER, words)
        dnat = Rule("nat", "PREROUTING", DNAT_VIP)
        if not _present(lab, dnat, hints):
            result.add("dnat", Role.ROUTER, dnat.command("-A", hints.facts))
    if "snat" in steps:
        postrouting = _rules(lab, "nat", "POSTROUTING")
        if not any(snat_rule_covers(r, lab.backend, lab.port, hints.pod_if) for r in postrouting):
            masquerade = Rule("nat", "POSTROUTING", MASQUERADE_BACKEND)
            result.add("snat", Role.ROUTER, masquerade.command("-A", hints.facts))
    return result


def _serves(lab: StudentLab) -> bool:
    """Whether b answers the router with the greeting (Step 1, as the grader asks it)."""
    router = lab.node(Role.ROUTER)
    got = get(router, lab.backend_url, lab.say, curl="curl" in lab.tools(Role.ROUTER))
    return got.outcome is HttpOutcome.OK and got.body.strip() == lab.greeting


def _reaches_vip(lab: StudentLab) -> bool:
    return ping_portable(lab.node(Role.CLIENT), lab.vip).received > 0


def _web_server(lab: StudentLab, hints: Hints, result: Plan) -> None:
    router = lab.node(Role.ROUTER)
    got = get(router, lab.backend_url, lab.say, curl="curl" in lab.tools(Role.ROUTER))
    if got.outcome is HttpOutcome.OK and got.body.strip() == lab.greeting:
        return
    if got.outcome is not HttpOutcome.REFUSED:
        # Something answers wrongly (its process is the student's to stop), or b is silent.
        result.unfixable.append(("web-server", _why(grade(lab, "web-server"))))
        return
    if "nc" not in lab.tools(Role.POD):  # the grader's hint: install it, then the loop
        result.add("web-server", Role.POD, ["apk", "add", "--no-cache", ALPINE_PACKAGES["nc"]])
    loop = WORKSHOP_SERVER.format_map(hints.facts)
    result.add("web-server", Role.POD, ["sh", "-c", loop], detach=True)


def _why(verdict: Verdict) -> str:
    return verdict.hint or "; ".join(verdict.evidence)


def _rules(lab: StudentLab, table: str, chain: str) -> list[str]:
    """A chain's rules as `iptables -S` prints them, without `-A CHAIN` (none without
    iptables)."""
    if "iptables" not in lab.tools(Role.ROUTER):
        return []
    listing = lab.node(Role.ROUTER).exec("iptables", "-t", table, "-S", chain).stdout
    prefix = f"-A {chain} "
    return [line[len(prefix) :] for line in listing.splitlines() if line.startswith(prefix)]


def _present(lab: StudentLab, rule: Rule, hints: Hints) -> bool:
    """Whether the chain holds the rule (`iptables -C`: iptables compares, not we)."""
    if "iptables" not in lab.tools(Role.ROUTER):
        return False
    return lab.node(Role.ROUTER).exec(*rule.command("-C", hints.facts)).ok


def _drops_everything(line: str, hints: Hints) -> bool:
    """Step 2 as written: every packet from the public leg to the pods' dropped or rejected,
    DNAT'ed ones included."""
    words = shlex.split(line)
    return words[:4] == ["-i", hints.public_if, "-o", hints.pod_if] and words[4:6] in (
        ["-j", "DROP"],
        ["-j", "REJECT"],
    )


def _catches_vip(line: str, lab: StudentLab) -> bool:
    """A DNAT rule that a's request to VIP:port matches (by destination and port)."""
    words = shlex.split(line)

    def value(flag: str) -> str | None:
        return words[words.index(flag) + 1] if flag in words[:-1] else None

    return (
        "DNAT" in words
        and value("-d") in (None, lab.vip, f"{lab.vip}/32")
        and value("--dport") in (None, str(lab.topology.service.port))
    )


@dataclass
class Outcome:
    """What a solve did: the commands run, the one that failed, what it could not fix, and
    the grade after (None on a dry run)."""

    ran: list[str] = field(default_factory=list)
    failed: str | None = None
    unfixable: list[tuple[str, str]] = field(default_factory=list)
    verdicts: list[Verdict] | None = None

    @property
    def solved(self) -> bool:
        return self.verdicts is not None and all(v.passed for v in self.verdicts)


def solve(
    environment: Environment,
    topology: Topology,
    client: podman.PodmanClient,
    upto: str,
    *,
    dry_run: bool = False,
    speaker: Speaker | None = None,
    out: Callable[[str], None] = print,
) -> Outcome:
    """Plan, run each command (printed first), then grade the steps up to `upto` again.
    Refused while a grading run on this machine holds the lab; a dry run only reads."""
    say = speaker or Speaker()
    lock = LabLock(environment)
    if not dry_run and not lock.take(exclusive=True):
        raise VlanlbError(
            f"{environment.name}: a grading run is judging these containers now "
            f"({', '.join(environment.names.values())}); solve after it ends, so that the "
            "grade sees the student's own work"
        )
    try:
        lab = StudentLab(environment, topology, client, say, locking=dry_run)
        try:
            planned = plan(lab, upto)
            outcome = Outcome(unfixable=planned.unfixable)
            hints = Hints(lab) if planned.fixes else None
            for fix in planned.fixes:
                assert hints is not None
                line = hints.on(fix.role, fix.words, detach=fix.detach)
                if dry_run:
                    out(say("solve.would", command=line))
                    continue
                out(f"$ {line}")
                outcome.ran.append(line)
                if error := _run(lab, fix):
                    outcome.failed = line
                    out(say("solve.failed", error=error))
                    break
                if fix.detach:  # Step 1's server: listening before anything is judged
                    wait_until(lambda: _serves(lab), timeout=5, interval=0.1)
            if (
                outcome.ran
                and outcome.failed is None
                and any(f.step == "vip" for f in planned.fixes)
            ):
                # a's ARP for the VIP may still be failing from before it existed (a retries
                # on its own timer, and lacks NET_ADMIN to be told to forget): settle first.
                wait_until(lambda: _reaches_vip(lab), timeout=6, interval=0.2)
            for step, why in planned.unfixable:
                out(say("solve.cannot", step=step, why=why))
        finally:
            lab.close()
    finally:
        lock.release()
    if not planned.fixes and not planned.unfixable:
        out(say("solve.nothing", upto=upto))
    if dry_run:
        return outcome
    graded = StudentLab(environment, topology, client, say)
    try:
        outcome.verdicts = [grade(graded, step) for step in through(upto)]
    finally:
        graded.close()
    return outcome


def _run(lab: StudentLab, fix: Fix) -> str | None:
    """Run one command; what went wrong, or None."""
    node = lab.node(fix.role)
    if fix.detach:  # its own exec, never one of the grader's shells (it outlives them)
        node.container.exec_run(list(fix.words), detach=True)
        return None
    done = node.exec_within(FIX_SECONDS, *fix.words)
    if done.ok:
        return None
    said = " ".join((done.stderr or done.stdout).split())[:300]
    return f"exit {done.rc}: {said}" if said else f"exit {done.rc}"
