"""How each step is judged: probe the student's lab, record evidence, pass or hint.

Each judge fills in a Verdict that starts as a fail. Probes come from StudentLab (made once,
shared between steps); commands in hints come from Hints (the layer catalog's commands).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from ..counters import Observation, explain, observe
from ..probes import HttpOutcome, HttpResult, PingResult, ping_portable, run_together
from ..topology import Role
from .bounded import OUTPUT_LIMIT
from .hints import Hints
from .student import SILENCE, StudentLab
from .verdict import Verdict


def moves(seen: Observation[Any]) -> str:
    return explain(seen.moves)


def env(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    ok = True
    for role, spec in lab.specs.items():
        have = {str(a.ip) for addrs in lab.addresses(role).values() for a in addrs}
        for interface in spec.interfaces:
            if interface.address is None:
                continue
            if str(interface.address) in have:
                v.evidence.append(f"{spec.name} has {interface.address}")
            else:
                ok = False
                v.evidence.append(f"{spec.name} lacks {interface.address} (has {sorted(have)})")
    for role in (Role.CLIENT, Role.POD):
        spec = lab.specs[role]
        gateway = lab.topology.segments[spec.segments[0]].gateway
        routes = lab.node(role).exec("ip", "route").stdout
        if re.search(rf"^default via {re.escape(str(gateway))}\b", routes, re.M):
            v.evidence.append(f"{spec.name}: default via {gateway} (the router)")
        else:
            ok = False
            v.evidence.append(f"{spec.name}: no default route via {gateway}: {routes.strip()!r}")
    forward = lab.node(Role.ROUTER).exec("cat", "/proc/sys/net/ipv4/ip_forward").stdout
    if forward.strip() == "1":
        v.evidence.append("router forwards (ip_forward=1)")
    else:
        ok = False
        v.evidence.append(f"router ip_forward={forward.strip() or '?'}")
    if ok:
        v.status = "pass"
    else:
        v.hint = (
            "rebuild the base lab as in vlan_ja.md: static addresses with "
            "`podman run --ip`/`podman network connect --ip`, the router created with "
            "--sysctl net.ipv4.ip_forward=1"
        )


def web_server(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    router = lab.node(Role.ROUTER)
    got = lab.http(router, lab.backend_url, curl="curl" in lab.tools(Role.ROUTER))
    v.evidence.append(f"from the router: {got}")
    if got.outcome is HttpOutcome.OK and got.body.strip() == lab.greeting:
        v.status = "pass"
        return
    b = lab.node_name(Role.POD)
    if got.outcome is HttpOutcome.OK and got.body.lstrip().startswith("-e"):
        v.hint = (
            "the server's shell printed a literal '-e': its sh is not busybox/ash. "
            "Use busybox sh for the loop, or printf instead of echo -e"
        )
    elif len(got.body) >= OUTPUT_LIMIT or (got.outcome is HttpOutcome.ERROR and got.body):
        v.hint = (
            f"{b}'s answer does not end (more than {OUTPUT_LIMIT} bytes, cut off): Step 1 "
            f"answers exactly {lab.greeting!r} once per request"
        )
    elif got.outcome is HttpOutcome.OK:
        v.hint = f"{b} answers, but not exactly {lab.greeting!r}: check Step 1's echo text"
    elif "nc" not in lab.tools(Role.POD):
        v.evidence.append(f"nc is not installed on {b}")
        v.hint = f"{hints.install('nc')}, then start Step 1's server: {hints.start_server()}"
    elif got.outcome is HttpOutcome.REFUSED:
        v.hint = f"nothing listens on {b}:{lab.port}; start Step 1's server: {hints.start_server()}"
    else:
        v.hint = f"{b} did not answer the router: is {b}'s address right and the server running?"


def firewall(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    a, router = lab.node(Role.CLIENT), lab.node(Role.ROUTER)
    curl = "curl" in lab.tools(Role.CLIENT)

    def probes() -> tuple[PingResult, HttpResult, PingResult]:
        pinged, got, b_up = run_together(
            lambda: lab.ping_for_silence(a, lab.backend),
            lambda: lab.http(a, lab.backend_url, curl=curl, timeout=SILENCE, retry_refused=False),
            lambda: ping_portable(router, lab.backend),  # is b there at all?
        )
        return pinged, got, b_up  # type: ignore[return-value]

    seen = observe(router, probes)
    pinged, got, b_up = seen.result
    name, b = lab.node_name(Role.CLIENT), lab.node_name(Role.POD)
    v.evidence += [f"from {name}: {pinged}", f"from {name}: {got}", f"router: {moves(seen)}"]
    dropped = seen.moved("filter", "FORWARD", "DROP")
    blocked = pinged.received == 0 and got.outcome is HttpOutcome.TIMEOUT
    if pinged.transmitted == 0:
        # A ping that sends nothing is silent whatever the firewall does.
        v.cannot_judge(
            f"cannot judge: `ping` in {lab.container(Role.CLIENT)} sent no echo request (see "
            "evidence). If it is not the real ping, reinstall it (on alpine: apk add "
            f"--no-cache iputils); if {name} has no route, fix env first"
        )
    elif blocked and not dropped and not b_up.received:
        # "a cannot reach b" proves nothing while b itself is unreachable.
        v.evidence.append(f"from the router: {b_up}")
        v.cannot_judge(
            f"cannot judge: {b} does not answer even the router, and no DROP rule on the "
            f"router counted a packet. Start {b} ({lab.container(Role.POD)}) and grade again"
        )
    elif blocked:
        v.status = "pass"
    elif pinged.received:
        v.hint = (
            f"{name} reaches {lab.node_name(Role.POD)} directly: Step 2's DROP rule is missing. "
            f"Add it so that it spares DNAT'ed traffic: {hints.firewall()}"
        )
    else:
        v.hint = (
            f"ping is blocked but HTTP to {lab.node_name(Role.POD)} was {got.outcome.value}, "
            "not dropped: the workshop's firewall drops silently (-j DROP, not REJECT)"
        )


def vip(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    holder = lab.router_if(lab.vip)
    name = lab.node_name(Role.CLIENT)
    pinged = ping_portable(lab.node(Role.CLIENT), lab.vip)
    v.evidence.append(f"from {name}: {pinged}")
    vlan = f"VLAN {hints.public_vlan}"
    if holder is None:
        v.evidence.append(f"no router interface has {lab.vip}")
        v.hint = f"add the VIP (Step 3): {hints.add_vip()}"
    elif holder != hints.public_if:
        v.evidence.append(
            f"{lab.vip} is on the router's {holder}, not on {hints.public_if} ({vlan})"
        )
        reach = (
            f" {name} reaches it only because Linux answers ARP for any local address "
            "(arp_ignore=0);"
            if pinged.received
            else ""
        )
        v.hint = (
            f"the VIP is on the wrong interface;{reach} MetalLB announces it on the "
            f"public side: {hints.remove_vip_from(holder)}; {hints.add_vip()}"
        )
    elif not pinged.received:
        v.evidence.append(f"{lab.vip} is on {holder}")
        v.hint = (
            f"the VIP is in place but {name} gets no answer from it: check {name}'s address/route"
        )
    else:
        v.evidence.append(f"{lab.vip} is on {holder} ({vlan})")
        v.status = "pass"


def dnat(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    seen = lab.vip_request()
    target = f"{lab.backend}:{lab.port}"
    rules = [r for r in lab.nat_rules("PREROUTING") if "DNAT" in r]
    v.evidence += [f"from {lab.node_name(Role.CLIENT)}: {seen.result}", f"router: {moves(seen)}"]
    v.evidence += [f"rule: {r}" for r in rules] or ["no DNAT rule in nat PREROUTING"]
    moved = [
        m
        for m in seen.moves
        if (m.counter.table, m.counter.chain, m.counter.target) == ("nat", "PREROUTING", "DNAT")
    ]
    right = [m for m in moved if dnat_target(m.counter.spec) == target]
    if right:
        v.status = "pass"
    elif moved:
        v.hint = f"the VIP traffic is translated, but not to {target}: use {hints.dnat()}"
    elif rules:
        v.hint = (
            f"a DNAT rule exists but {lab.node_name(Role.CLIENT)}'s request did not match it; "
            f"it must match {hints.dnat_match()} (and the VIP must be reachable, see vip)"
        )
    else:
        v.hint = f"add Step 4's DNAT rule: {hints.dnat()}"


def snat(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    seen = lab.vip_request()
    rules = [
        r
        for r in lab.nat_rules("POSTROUTING")
        if snat_rule_covers(r, lab.backend, lab.port, hints.pod_if)
    ]
    v.evidence += [f"rule: {r}" for r in rules] or [
        f"no MASQUERADE/SNAT rule in nat POSTROUTING covers {lab.backend}:{lab.port}"
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
        v.hint = f"add Step 5's rule: {hints.masquerade()}"
        return
    v.status = "pass"
    name = lab.node_name(Role.CLIENT)
    if moved:
        v.evidence.append(f"{name}'s request to the VIP was source-NATed ({moved} packet(s))")
    elif dropped:
        v.evidence.append(
            f"judged by the rule alone: {name}'s request was dropped in FORWARD "
            "before reaching POSTROUTING (see vip-curl)"
        )
    else:
        v.evidence.append(
            f"judged by the rule alone: {name}'s request never reached "
            f"{lab.node_name(Role.POD)}'s side (see dnat and vip)"
        )


def vip_curl(lab: StudentLab, hints: Hints, v: Verdict) -> None:
    seen = lab.vip_request()
    got = seen.result
    name = lab.node_name(Role.CLIENT)
    has_curl = "curl" in lab.tools(Role.CLIENT)
    v.evidence += [
        f"from {name} ({'curl' if has_curl else 'busybox wget: curl missing'}): {got}",
        f"router: {moves(seen)}",
    ]
    notes = [] if has_curl else [f"curl is not installed on {name}: {hints.install('curl')}"]
    if got.outcome is HttpOutcome.OK and got.body.strip() == lab.greeting:
        v.status = "pass"
        v.hint = "; ".join(notes)
        return
    dnat_moved = seen.moved("nat", "PREROUTING", "DNAT")
    dropped = seen.moved("filter", "FORWARD", "DROP")
    if got.outcome is HttpOutcome.TIMEOUT and dnat_moved and dropped:
        hint = (
            "the FORWARD DROP rule of Step 2 also drops the DNAT'ed packets (FORWARD sees "
            f"them after PREROUTING rewrote the destination). Replace it: "
            f"{hints.replace_firewall()}"
        )
    elif got.outcome is HttpOutcome.REFUSED and not dnat_moved:
        hint = "the router owns the VIP but nothing translates it: add Step 4's DNAT rule"
    elif got.outcome is HttpOutcome.REFUSED:
        hint = (
            f"the request reached {lab.node_name(Role.POD)}, which refused it: "
            f"start Step 1's web server on {lab.node_name(Role.POD)}"
        )
    elif got.outcome is HttpOutcome.TIMEOUT and not dnat_moved:
        hint = (
            f"nobody answers for the VIP: add it to the router's VLAN-{hints.public_vlan} "
            "side (Step 3)"
        )
    elif got.outcome is HttpOutcome.OK:
        hint = f"the answer is not exactly {lab.greeting!r}: check Step 1's server"
    else:
        hint = "see the evidence: the request did not complete"
    v.hint = "; ".join([hint, *notes])


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
