"""How each step is judged: probe the student's lab, record evidence, pass or hint.

Each judge fills in a Verdict that starts as a fail. Probes come from StudentLab (made once,
shared between steps); commands in hints come from Hints (the layer catalog's commands);
every word comes from the catalogue in the run's language (`lab.say`, see `messages`).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from ..model.topology import Role
from ..observation.counters import Observation, observe
from ..observation.drawing import said_walk
from ..observation.probes import HttpOutcome, HttpResult, PingResult, ping_portable, run_together
from ..observation.walk import walk_of
from .bounded import OUTPUT_LIMIT
from .hints import Hints
from .probing import SILENCE, get, silent_ping
from .student import StudentLab
from .verdict import PASS, Verdict


def router_saw(lab: StudentLab, seen: Observation[Any]) -> str:
    return lab.say("ev.router", moves=lab.say.moves(seen.moves))


def env(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    ok = True
    for role, spec in lab.specs.items():
        have = {str(a.ip) for addrs in lab.addresses(role).values() for a in addrs}
        for interface in spec.interfaces:
            if interface.address is None:
                continue
            if str(interface.address) in have:
                v.evidence.append(lab.say("ev.has", node=spec.name, address=interface.address))
            else:
                ok = False
                v.evidence.append(
                    lab.say(
                        "ev.lacks", node=spec.name, address=interface.address, have=sorted(have)
                    )
                )
    for role in (Role.CLIENT, Role.POD):
        spec = lab.specs[role]
        gateway = lab.topology.segments[spec.segments[0]].gateway
        routes = lab.node(role).exec("ip", "route").stdout
        if re.search(rf"^default via {re.escape(str(gateway))}\b", routes, re.M):
            v.evidence.append(lab.say("ev.default_route", node=spec.name, gateway=gateway))
        else:
            ok = False
            v.evidence.append(
                lab.say(
                    "ev.no_default_route", node=spec.name, gateway=gateway, routes=routes.strip()
                )
            )
    forward = lab.node(Role.ROUTER).exec("cat", "/proc/sys/net/ipv4/ip_forward").stdout
    if forward.strip() == "1":
        v.evidence.append(lab.say("ev.forwards"))
    else:
        ok = False
        v.evidence.append(lab.say("ev.no_forward", value=forward.strip() or "?"))
    if ok:
        v.status = PASS
    else:
        v.hint = lab.say("hint.rebuild")


def web_server(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    router = lab.node(Role.ROUTER)
    got = get(router, lab.backend_url, lab.say, curl="curl" in lab.tools(Role.ROUTER))
    v.evidence.append(lab.say("ev.from_router", result=lab.say.http(got)))
    if got.outcome is HttpOutcome.OK and got.body.strip() == lab.greeting:
        v.status = PASS
        return
    b = lab.node_name(Role.POD)
    if got.outcome is HttpOutcome.OK and got.body.lstrip().startswith("-e"):
        v.hint = lab.say("hint.literal_e")
    elif len(got.body) >= OUTPUT_LIMIT or (got.outcome is HttpOutcome.ERROR and got.body):
        v.hint = lab.say("hint.endless", b=b, limit=OUTPUT_LIMIT, greeting=lab.greeting)
    elif got.outcome is HttpOutcome.OK:
        v.hint = lab.say("hint.wrong_text", b=b, greeting=lab.greeting)
    elif "nc" not in lab.tools(Role.POD):
        v.evidence.append(lab.say("ev.tool_missing", tool="nc", node=b))
        v.hint = lab.say(
            "hint.install_then_server", install=hints.install("nc"), server=hints.start_server()
        )
    elif got.outcome is HttpOutcome.REFUSED:
        v.hint = lab.say("hint.nothing_listens", b=b, port=lab.port, server=hints.start_server())
    else:
        v.hint = lab.say("hint.b_silent_to_router", b=b)


def firewall(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    a, router = lab.node(Role.CLIENT), lab.node(Role.ROUTER)
    curl = "curl" in lab.tools(Role.CLIENT)

    def probes() -> tuple[PingResult, HttpResult, PingResult]:
        # Both must go unanswered: each stops as soon as the router counts it dropped.
        pinged, got, b_up = run_together(
            lambda: silent_ping(a, lab.backend, lab.say, evidence=[router]),
            lambda: get(
                a,
                lab.backend_url,
                lab.say,
                curl=curl,
                timeout=SILENCE,
                retry_refused=False,
                evidence=[router],
            ),
            lambda: ping_portable(router, lab.backend),  # is b there at all?
        )
        return pinged, got, b_up  # type: ignore[return-value]

    # The rules' counters only: no verdict reads the kernel's, and each reading of them is
    # one bounded exec more in the student's router (minutes of a class under TCG).
    seen = observe(router, probes, kernel=False)
    pinged, got, b_up = seen.result
    name, b = lab.node_name(Role.CLIENT), lab.node_name(Role.POD)
    v.evidence += [
        lab.say("ev.from", node=name, result=lab.say.ping(pinged)),
        lab.say("ev.from", node=name, result=lab.say.http(got)),
        router_saw(lab, seen),
    ]
    dropped = seen.moved("filter", "FORWARD", "DROP")
    blocked = pinged.received == 0 and got.outcome is HttpOutcome.TIMEOUT
    # With b gone, the router answers "unreachable" once its ARP for b gives up (3 s): how
    # soon that beats the HTTP window depends on the machine's speed, so both mean silent.
    silent = pinged.received == 0 and got.outcome in (HttpOutcome.TIMEOUT, HttpOutcome.UNREACHABLE)
    if pinged.transmitted == 0:
        # A ping that sends nothing is silent whatever the firewall does.
        v.cannot_judge(
            lab.say("hint.ping_sent_nothing", container=lab.container(Role.CLIENT), a=name)
        )
    elif silent and not dropped and not b_up.received:
        # "a cannot reach b" proves nothing while b itself is unreachable.
        v.evidence.append(lab.say("ev.from_router", result=lab.say.ping(b_up)))
        v.cannot_judge(lab.say("hint.b_down", b=b, container=lab.container(Role.POD)))
    elif blocked:
        v.status = PASS
    elif pinged.received:
        v.hint = lab.say("hint.drop_missing", a=name, b=b, command=hints.firewall())
    else:
        v.hint = lab.say(
            "hint.not_dropped", b=b, outcome=lab.say.words(f"http.{got.outcome.value}")
        )
    if not v.passed:  # a's packets: the router's own ping to b is not the client's walk
        walk = walk_of(seen, lab.node_name(Role.ROUTER), probes=[pinged, got])
        v.walk = said_walk(walk, lab.say.language)


def vip(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    holder = lab.router_if(lab.vip)
    name = lab.node_name(Role.CLIENT)
    pinged = ping_portable(lab.node(Role.CLIENT), lab.vip)
    v.evidence.append(lab.say("ev.from", node=name, result=lab.say.ping(pinged)))
    vlan = hints.public_vlan
    if holder is None:
        v.evidence.append(lab.say("ev.no_vip", vip=lab.vip))
        v.hint = lab.say("hint.add_vip", command=hints.add_vip())
    elif holder != hints.public_if:
        v.evidence.append(
            lab.say(
                "ev.vip_elsewhere", vip=lab.vip, holder=holder, public_if=hints.public_if, vlan=vlan
            )
        )
        reach = lab.say("hint.vip_reach_arp", a=name) if pinged.received else ""
        v.hint = lab.say(
            "hint.vip_wrong_if",
            reach=reach,
            remove=hints.remove_vip_from(holder),
            add=hints.add_vip(),
        )
    elif not pinged.received:
        v.evidence.append(lab.say("ev.vip_on", vip=lab.vip, holder=holder))
        v.hint = lab.say("hint.vip_no_answer", a=name)
    else:
        v.evidence.append(lab.say("ev.vip_on_vlan", vip=lab.vip, holder=holder, vlan=vlan))
        v.status = PASS


def dnat(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    seen = lab.vip_request()
    target = f"{lab.backend}:{lab.port}"
    rules = [r for r in lab.nat_rules("PREROUTING") if "DNAT" in r]
    v.evidence += [
        lab.say("ev.from", node=lab.node_name(Role.CLIENT), result=lab.say.http(seen.result)),
        router_saw(lab, seen),
    ]
    v.evidence += [lab.say("ev.rule", rule=r) for r in rules] or [lab.say("ev.no_dnat_rule")]
    moved = [
        m
        for m in seen.moves
        if (m.counter.table, m.counter.chain, m.counter.target) == ("nat", "PREROUTING", "DNAT")
    ]
    right = [m for m in moved if dnat_target(m.counter.spec) == target]
    if right:
        v.status = PASS
    elif moved:
        v.hint = lab.say("hint.dnat_elsewhere", target=target, command=hints.dnat())
    elif rules:
        v.hint = lab.say(
            "hint.dnat_no_match", a=lab.node_name(Role.CLIENT), match=hints.dnat_match()
        )
    else:
        v.hint = lab.say("hint.add_dnat", command=hints.dnat())


def snat(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    seen = lab.vip_request()
    rules = [
        r
        for r in lab.nat_rules("POSTROUTING")
        if snat_rule_covers(r, lab.backend, lab.port, hints.pod_if)
    ]
    v.evidence += [lab.say("ev.rule", rule=r) for r in rules] or [
        lab.say("ev.no_snat_rule", backend=lab.backend, port=lab.port)
    ]
    moved = sum(
        m.packets
        for m in seen.moves
        if (m.counter.table, m.counter.chain) == ("nat", "POSTROUTING")
        and m.counter.target in ("MASQUERADE", "SNAT")
    )
    dropped = sum(
        m.packets for m in seen.moves if m.counter.table == "filter" and m.counter.target == "DROP"
    )
    if not rules:
        v.hint = lab.say("hint.add_snat", command=hints.masquerade())
        return
    v.status = PASS
    name = lab.node_name(Role.CLIENT)
    if moved:
        v.evidence.append(lab.say("ev.snat_moved", a=name, packets=moved))
    elif dropped:
        v.evidence.append(lab.say("ev.snat_dropped", a=name))
    else:
        v.evidence.append(lab.say("ev.snat_never", a=name, b=lab.node_name(Role.POD)))


def vip_curl(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    seen = lab.vip_request()
    got = seen.result
    name = lab.node_name(Role.CLIENT)
    has_curl = "curl" in lab.tools(Role.CLIENT)
    tool = "curl" if has_curl else lab.say("ev.with_wget")
    v.evidence += [
        lab.say("ev.from_with", a=name, tool=tool, result=lab.say.http(got)),
        router_saw(lab, seen),
    ]
    notes = (
        [] if has_curl else [lab.say("hint.curl_missing", a=name, command=hints.install("curl"))]
    )
    if got.outcome is HttpOutcome.OK and got.body.strip() == lab.greeting:
        v.status = PASS
        v.hint = "; ".join(notes)
        return
    dnat_moved = seen.moved("nat", "PREROUTING", "DNAT")
    dropped = seen.moved("filter", "FORWARD", "DROP")
    if got.outcome is HttpOutcome.TIMEOUT and dnat_moved and dropped:
        hint = lab.say("hint.drop_after_dnat", command=hints.replace_firewall())
    elif got.outcome is HttpOutcome.REFUSED and not dnat_moved:
        hint = lab.say("hint.no_translation")
    elif got.outcome is HttpOutcome.REFUSED:
        hint = lab.say("hint.refused_by_b", b=lab.node_name(Role.POD))
    elif got.outcome is HttpOutcome.TIMEOUT and not dnat_moved:
        hint = lab.say("hint.nobody_answers", vlan=hints.public_vlan)
    elif got.outcome is HttpOutcome.OK:
        hint = lab.say("hint.answer_not_exact", greeting=lab.greeting)
    else:
        hint = lab.say("hint.see_evidence")
    v.hint = "; ".join([hint, *notes])
    v.walk = said_walk(walk_of(seen, lab.node_name(Role.ROUTER)), lab.say.language)


def snat_rule_covers(rule: str, backend: str, port: int, pods_if: str) -> bool:
    """Does a POSTROUTING rule (as `iptables -S` prints it) source-NAT traffic to b:port?"""
    words = shlex.split(rule)
    if "MASQUERADE" not in words and "SNAT" not in words:
        return False

    def value(flag: str) -> str | None:
        return words[words.index(flag) + 1] if flag in words else None

    destination = value("-d")
    if destination and ipaddress.IPv4Address(backend) not in ipaddress.IPv4Network(
        destination, strict=False
    ):
        return False
    if value("--dport") not in (None, str(port)):
        return False
    return value("-o") in (None, pods_if)


def dnat_target(spec: str) -> str | None:
    """The --to-destination of a DNAT rule, parsed (a comment holding the words is not it)."""
    words = shlex.split(spec)
    for index, word in enumerate(words[:-1]):
        if word == "-j" and words[index + 1] == "DNAT":
            options = words[index + 2 :]
            if "--to-destination" in options[:-1]:
                return options[options.index("--to-destination") + 1]
    return None
