"""The steps a student's lab is graded on: a table of id, the nodes it needs and its judge.
Titles are the catalogue's templates over the topology (addresses, port, greeting, VLAN ids),
in the run's language."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from ..model.commands import ALPINE_PACKAGES
from ..model.topology import Role, Topology
from . import judges
from .bounded import RULES_LIMIT
from .hints import Hints
from .messages import Speaker
from .student import StudentLab
from .verdict import FAIL, Verdict

Judge = Callable[[StudentLab, Hints, Verdict], None]
ALL = (Role.ROUTER, Role.CLIENT, Role.POD)


@dataclass(frozen=True)
class Step:
    id: str  # its title is the catalogue's `title.<id>` (messages.py), over title_facts()
    needs: tuple[Role, ...]  # the containers it probes
    judge: Judge
    rules_only: bool = False  # judged from the router's NAT rules: needs iptables there
    iptables_note: bool = False  # a failure may be for want of iptables on the router


STEPS: tuple[Step, ...] = (
    Step(
        "env",
        ALL,
        judges.env,
    ),
    Step(
        "web-server",
        (Role.ROUTER, Role.POD),
        judges.web_server,
    ),
    Step(
        "firewall",
        (Role.ROUTER, Role.CLIENT),
        judges.firewall,
        iptables_note=True,
    ),
    Step(
        "vip",
        (Role.ROUTER, Role.CLIENT),
        judges.vip,
    ),
    Step(
        "dnat",
        (Role.ROUTER, Role.CLIENT),
        judges.dnat,
        rules_only=True,
    ),
    Step(
        "snat",
        (Role.ROUTER, Role.CLIENT),
        judges.snat,
        rules_only=True,
    ),
    Step(
        "vip-curl",
        (Role.ROUTER, Role.CLIENT),
        judges.vip_curl,
        iptables_note=True,
    ),
)
STEP_IDS = tuple(step.id for step in STEPS)
_BY_ID = {step.id: step for step in STEPS}


def title_facts(topology: Topology) -> dict[str, object]:
    service = topology.service
    vip_url = f"http://{service.vip}" + ("" if service.port == 80 else f":{service.port}")
    return {
        "a": topology.client.name,
        "b": topology.backend.name,
        "vip": service.vip,
        "vip_url": vip_url,
        "port": service.port,
        "backend": service.backend_address,
        "backend_port": service.backend_port,
        "greeting": service.greeting,
        "public_vlan": topology.segments[topology.segment_of(service.vip)].vlan,
        "pod_vlan": topology.segments[topology.segment_of(service.backend_address)].vlan,
    }


def titles(topology: Topology, say: Speaker | None = None) -> dict[str, str]:
    facts = title_facts(topology)
    say = say or Speaker("en")
    return {step.id: say(f"title.{step.id}", **facts) for step in STEPS}


def grade(lab: StudentLab, step_id: str) -> Verdict:
    """Judge one step; a step whose containers are missing fails with what is wrong."""
    step = _BY_ID[step_id]
    say = lab.say
    verdict = Verdict(step.id, titles(lab.topology, say)[step.id], FAIL)
    found, problems = lab.nodes()
    if lab.being_solved:
        verdict.evidence += problems
        verdict.cannot_judge(say("hint.being_solved"))
        return verdict
    if any(role not in found for role in step.needs):
        verdict.evidence += problems
        paused = [lab.container(r) for r in step.needs if r not in found]
        paused = [name for name in paused if name in lab.paused()]
        if paused:
            verdict.cannot_judge(unpause(say, paused))
            return verdict
        verdict.hint = say("hint.missing_containers")
        return verdict
    hints = Hints(lab)
    no_iptables = "iptables" not in lab.tools(Role.ROUTER)
    if no_iptables and step.rules_only:
        verdict.evidence.append(say("ev.no_iptables"))
        verdict.hint = hints.install("iptables")
        return verdict
    hung_before, cut_before = len(lab.unfinished()), len(lab.cut())
    step.judge(lab, hints, verdict)
    hung, cut = lab.unfinished()[hung_before:], lab.cut()[cut_before:]
    if hung:  # a probe that was killed proves nothing either way
        for role, command in hung:
            verdict.evidence.append(
                say(
                    "ev.hung",
                    command=command,
                    container=lab.container(role),
                    bound=lab.node(role).bound,
                )
            )
        role, command = hung[0]
        tool = command.split()[0]
        verdict.cannot_judge(
            say(
                "hint.hung",
                tool=tool,
                container=lab.container(role),
                package=ALPINE_PACKAGES.get(tool, tool),
            )
        )
        return verdict
    if cut:  # a bound is not a verdict: counters missing from a cut listing prove nothing
        mib = RULES_LIMIT // 2**20
        for role, command in cut:
            verdict.evidence.append(
                say("ev.cut", command=command, container=lab.container(role), mib=mib)
            )
        verdict.cannot_judge(
            say("hint.cut", container=lab.container(cut[0][0]), mib=mib, command=cut[0][1])
        )
        return verdict
    if not verdict.passed and lab.paused():
        # A failure while a container of the lab is frozen (b's server, say) proves nothing.
        verdict.evidence += lab.paused_problems()
        verdict.cannot_judge(unpause(say, lab.paused()))
        return verdict
    if no_iptables and step.iptables_note and not verdict.passed:
        verdict.evidence.append(say("ev.no_iptables"))
        verdict.hint += "; " + say("hint.first_install_iptables", command=hints.install("iptables"))
    return verdict


def unpause(say: Speaker, containers: list[str]) -> str:
    key = "hint.unpause_one" if len(containers) == 1 else "hint.unpause_many"
    names = " ".join(shlex.quote(n) for n in containers)
    return say(key, containers=", ".join(containers), names=names)
