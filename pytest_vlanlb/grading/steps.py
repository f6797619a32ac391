"""The steps a student's lab is graded on: a table of id, title, the nodes it needs and its
judge. Titles are templates over the topology (addresses, port, greeting, VLAN ids)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from ..topology import Role, Topology
from . import judges
from .bounded import RULES_LIMIT
from .hints import Hints
from .student import StudentLab
from .verdict import Verdict

#: The alpine package that provides each tool the grader runs.
APK_FOR = {
    "ping": "iputils",
    "curl": "curl",
    "wget": "busybox",
    "iptables": "iptables",
    "ip": "iproute2",
    "nc": "busybox-extras",
}
Judge = Callable[[StudentLab, Hints, Verdict], None]
ALL = (Role.ROUTER, Role.CLIENT, Role.POD)


@dataclass(frozen=True)
class Step:
    id: str
    title: str  # a template over title_facts()
    needs: tuple[Role, ...]  # the containers it probes
    judge: Judge
    rules_only: bool = False  # judged from the router's NAT rules: needs iptables there
    iptables_note: bool = False  # a failure may be for want of iptables on the router


STEPS: tuple[Step, ...] = (
    Step(
        "env",
        "Base lab of vlan_ja.md: containers, addresses, routes via the router",
        ALL,
        judges.env,
    ),
    Step(
        "web-server",
        "Step 1: {b} answers {greeting!r} on port {backend_port}",
        (Role.ROUTER, Role.POD),
        judges.web_server,
    ),
    Step(
        "firewall",
        "Step 2: {a} cannot reach {b} directly (ping and HTTP)",
        (Role.ROUTER, Role.CLIENT),
        judges.firewall,
        iptables_note=True,
    ),
    Step(
        "vip",
        "Step 3: {vip} on the router's VLAN-{public_vlan} interface, reachable from {a}",
        (Role.ROUTER, Role.CLIENT),
        judges.vip,
    ),
    Step(
        "dnat",
        "Step 4: traffic to VIP:{port} is translated to {backend}:{backend_port}",
        (Role.ROUTER, Role.CLIENT),
        judges.dnat,
        rules_only=True,
    ),
    Step(
        "snat",
        "Step 5: that traffic leaves toward {b} from the router's VLAN-{pod_vlan} address",
        (Role.ROUTER, Role.CLIENT),
        judges.snat,
        rules_only=True,
    ),
    Step(
        "vip-curl",
        "Step 6: {a} gets exactly {greeting!r} from {vip_url}",
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


def titles(topology: Topology) -> dict[str, str]:
    facts = title_facts(topology)
    return {step.id: step.title.format(**facts) for step in STEPS}


def grade(lab: StudentLab, step_id: str) -> Verdict:
    """Judge one step; a step whose containers are missing fails with what is wrong."""
    step = _BY_ID[step_id]
    verdict = Verdict(step.id, titles(lab.topology)[step.id], "fail")
    found, problems = lab.nodes()
    if any(role not in found for role in step.needs):
        verdict.evidence += problems
        paused = [lab.container(r) for r in step.needs if r not in found]
        paused = [name for name in paused if name in lab.paused()]
        if paused:
            verdict.cannot_judge(unpause(paused))
            return verdict
        verdict.hint = (
            "create and start the missing containers as in vlan_ja.md, or name yours "
            "with --vlanlb-names router=R,a=A,b=B"
        )
        return verdict
    hints = Hints(lab)
    no_iptables = "iptables" not in lab.tools(Role.ROUTER)
    if no_iptables and step.rules_only:
        verdict.evidence.append("iptables is not installed on the router")
        verdict.hint = hints.install("iptables")
        return verdict
    hung_before, cut_before = len(lab.unfinished()), len(lab.cut())
    step.judge(lab, hints, verdict)
    hung, cut = lab.unfinished()[hung_before:], lab.cut()[cut_before:]
    if hung:  # a probe that was killed proves nothing either way
        for role, command in hung:
            verdict.evidence.append(
                f"`{command}` in {lab.container(role)} did not finish within "
                f"{lab.node(role).bound:g}s and was killed"
            )
        role, command = hung[0]
        tool = command.split()[0]
        verdict.cannot_judge(
            f"cannot judge: `{tool}` in {lab.container(role)} hangs instead of answering. "
            f"Is it the real tool? Reinstall it (on alpine: apk add --no-cache "
            f"{APK_FOR.get(tool, tool)})"
        )
        return verdict
    if cut:  # a bound is not a verdict: counters missing from a cut listing prove nothing
        for role, command in cut:
            verdict.evidence.append(
                f"`{command}` in {lab.container(role)} printed more than "
                f"{RULES_LIMIT // 2**20} MiB: not read whole"
            )
        verdict.cannot_judge(
            f"cannot judge: {lab.container(cut[0][0])} holds more rules than the grader reads "
            f"({RULES_LIMIT // 2**20} MiB of `{cut[0][1]}`); remove the rules the workshop "
            "did not ask for and grade again"
        )
        return verdict
    if not verdict.passed and lab.paused():
        # A failure while a container of the lab is frozen (b's server, say) proves nothing.
        verdict.evidence += [p for p in problems if "paused" in p]
        verdict.cannot_judge(unpause(lab.paused()))
        return verdict
    if no_iptables and step.iptables_note and not verdict.passed:
        verdict.evidence.append("iptables is not installed on the router")
        verdict.hint += f"; first install iptables: {hints.install('iptables')}"
    return verdict


def unpause(containers: list[str]) -> str:
    return (
        f"cannot judge: {', '.join(containers)} paused; resume "
        f"{'it' if len(containers) == 1 else 'them'} with `podman unpause "
        f"{' '.join(shlex.quote(n) for n in containers)}` and grade again"
    )
