"""Grading a student's own lab, step by step, without changing it.

The grader attaches to existing containers and only reads and probes: ping, curl or busybox
wget, `ip addr`/`ip route`, `/proc`, `iptables -S` and `iptables-save -c` (counters are read,
never zeroed). Each step gets a verdict with evidence and, on failure, a hint naming the
likely mistake and the fix. Steps are judged on their own wherever that is possible, so one
early mistake does not fail everything after it.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import podman
import yaml
from podman.errors import NotFound

from .counters import Observation, explain, observe
from .errors import TopologyError, VlanlbError
from .lookup import container_named
from .node import Node
from .probes import (
    HttpOutcome,
    HttpResult,
    PingResult,
    http_get_portable,
    ping_portable,
    run_together,
)
from .topology import Topology
from .waiting import wait_until

#: Stable step ids, in the workshop's order, with their titles.
STEPS: dict[str, str] = {
    "env": "Base lab of vlan_ja.md: containers, addresses, routes via the router",
    "web-server": "Step 1: b answers 'Hello from Pod B' on port 80",
    "firewall": "Step 2: a cannot reach b directly (ping and HTTP)",
    "vip": "Step 3: 192.168.10.100 on the router's VLAN-10 interface, reachable from a",
    "dnat": "Step 4: traffic to VIP:80 is translated to 192.168.20.20:80",
    "snat": "Step 5: that traffic leaves toward b from the router's VLAN-20 address",
    "vip-curl": "Step 6: a gets exactly 'Hello from Pod B' from http://192.168.10.100",
}
ROLES = ("router", "a", "b")
#: What the workshop tells students to install, per tool.
APK = {
    "curl": "podman exec {a} apk add --no-cache curl",
    "nc": "podman exec {b} apk add --no-cache busybox-extras",
    "iptables": "podman exec {router} apk add --no-cache iptables",
}
TOOLS = ("curl", "wget", "ping", "nc", "iptables", "ip", "timeout")


@dataclass(frozen=True)
class Environment:
    """One student's lab: where its podman answers and what its containers are called."""

    name: str
    url: str | None
    names: Mapping[str, str]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "names": dict(self.names)}


def parse_names(text: str | None, prefix: str = "") -> dict[str, str]:
    """`router=R,a=A,b=B` (any subset) over the defaults, optionally prefixed."""
    names = {role: f"{prefix}{role}" for role in ROLES}
    for part in filter(None, (text or "").split(",")):
        role, _, name = part.partition("=")
        if role not in ROLES or not name:
            raise VlanlbError(
                f"--vlanlb-names: {part!r} is not ROLE=NAME with ROLE one of {', '.join(ROLES)}"
            )
        names[role] = name
    return names


def load_class(path: Path, default_url: str | None) -> list[Environment]:
    """A class file: `environments: [{name, url?, prefix? | names?}, ...]`."""
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(source, "", f"cannot read the class file: {exc}") from exc
    entries = data.get("environments") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise TopologyError(source, "environments", "must be a non-empty list")
    environments: list[Environment] = []
    for index, entry in enumerate(entries):
        where = f"environments[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TopologyError(source, f"{where}.name", "is required (a string)")
        names = entry.get("names") or {}
        if not isinstance(names, dict) or not set(names) <= set(ROLES):
            raise TopologyError(source, f"{where}.names", f"maps {', '.join(ROLES)} to names")
        resolved = {
            role: str(names.get(role, f"{entry.get('prefix', '')}{role}")) for role in ROLES
        }
        if entry["name"] in {e.name for e in environments}:
            raise TopologyError(source, f"{where}.name", f"duplicate name {entry['name']!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", entry["name"]):
            raise TopologyError(source, f"{where}.name", "letters, digits, . _ - only")
        environments.append(Environment(entry["name"], entry.get("url") or default_url, resolved))
    return environments


@dataclass
class Verdict:
    id: str
    title: str
    status: str  # "pass" or "fail"
    evidence: list[str] = field(default_factory=list)
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Grader:
    """Grades one environment; probes shared by several steps are made once and kept."""

    def __init__(
        self, environment: Environment, topology: Topology, client: podman.PodmanClient
    ) -> None:
        self.environment = environment
        self.topology = topology
        self.client = client
        self.memo: dict[str, Any] = {}
        service = topology.service
        self.vip = str(service.vip)
        self.backend = str(service.backend_address)
        self.port = service.backend_port
        self.greeting = service.greeting
        self.vip_url = f"http://{self.vip}" + ("" if service.port == 80 else f":{service.port}")
        self.backend_url = f"http://{self.backend}" + ("" if self.port == 80 else f":{self.port}")

    # --- attaching ------------------------------------------------------------------------

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def nodes(self) -> tuple[dict[str, Node], list[str]]:
        """The running containers by role, and what is wrong with the others."""
        return self._once("nodes", self._attach)  # type: ignore[no-any-return]

    def _attach(self) -> tuple[dict[str, Node], list[str]]:
        specs = {
            "router": self.topology.router,
            "a": self.topology.client,
            "b": self.topology.backend,
        }
        found, problems = {}, []
        for role in ROLES:
            name = self.environment.names[role]
            try:
                container = container_named(self.client, name)  # literal, never a regex
            except NotFound:
                problems.append(f"container {name!r} ({role}) does not exist")
                continue
            if container.attrs.get("State", {}).get("Status") != "running":
                problems.append(f"container {name!r} ({role}) is not running")
                continue
            found[role] = Node(specs[role], container)
        return found, problems

    def tools(self, role: str) -> set[str]:
        def probe() -> set[str]:
            node = self.nodes()[0][role]
            script = "; ".join(f"command -v {t} >/dev/null 2>&1 && echo {t}" for t in TOOLS)
            return set(node.exec("/bin/sh", "-c", script + "; true").stdout.split())

        return self._once(f"tools:{role}", probe)  # type: ignore[no-any-return]

    def apk(self, tool: str) -> str:
        return APK[tool].format(**self.environment.names)

    def addresses(self, role: str) -> dict[str, list[ipaddress.IPv4Interface]]:
        def probe() -> dict[str, list[ipaddress.IPv4Interface]]:
            return parse_ip_addr(self.nodes()[0][role].exec("ip", "addr", "show").stdout)

        return self._once(f"addr:{role}", probe)  # type: ignore[no-any-return]

    def router_if(self, address: str) -> str | None:
        for ifname, addrs in self.addresses("router").items():
            if any(str(a.ip) == address for a in addrs):
                return ifname
        return None

    def names_for_hints(self) -> dict[str, str]:
        """Container and router interface names as the student's lab has them."""
        service = self.topology.service
        return {
            "public": self._router_leg_toward(service.vip) or "eth1",
            "pods": self._router_leg_toward(service.backend_address) or "eth2",
            **self.environment.names,
        }

    def _router_leg_toward(self, address: ipaddress.IPv4Address) -> str | None:
        """The router interface holding its own address on `address`'s segment."""
        own = self.topology.router.address_on(self.topology.segment_of(address))
        return self.router_if(str(own))

    # --- grading --------------------------------------------------------------------------

    def grade(self, step: str) -> Verdict:
        verdict = Verdict(step, STEPS[step], "fail")
        found, problems = self.nodes()
        needed = {
            "env": ROLES,
            "web-server": ("router", "b"),
            "firewall": ("router", "a"),
            "vip": ("router", "a"),
            "dnat": ("router", "a"),
            "snat": ("router", "a"),
            "vip-curl": ("router", "a"),
        }[step]
        missing = [role for role in needed if role not in found]
        if missing:
            verdict.evidence += problems
            verdict.hint = (
                "create and start the missing containers as in vlan_ja.md, or name yours "
                "with --vlanlb-names router=R,a=A,b=B"
            )
            return verdict
        no_iptables = "iptables" not in self.tools("router")
        if no_iptables and step in ("dnat", "snat"):  # judged from the router's NAT rules
            verdict.evidence.append("iptables is not installed on the router")
            verdict.hint = self.apk("iptables")
            return verdict
        getattr(self, "_" + step.replace("-", "_"))(verdict)
        if no_iptables and not verdict.passed and step in ("firewall", "vip-curl"):
            verdict.evidence.append("iptables is not installed on the router")
            verdict.hint += f"; first install iptables: {self.apk('iptables')}"
        return verdict

    def _env(self, v: Verdict) -> None:
        topology = self.topology
        ok = True
        for role, spec in (
            ("router", topology.router),
            ("a", topology.client),
            ("b", topology.backend),
        ):
            have = {str(a.ip) for addrs in self.addresses(role).values() for a in addrs}
            for interface in spec.interfaces:
                if interface.address is None:
                    continue
                if str(interface.address) in have:
                    v.evidence.append(f"{role} has {interface.address}")
                else:
                    ok = False
                    v.evidence.append(f"{role} lacks {interface.address} (has {sorted(have)})")
        for role, spec in (("a", topology.client), ("b", topology.backend)):
            gateway = topology.segments[spec.segments[0]].gateway
            routes = self.nodes()[0][role].exec("ip", "route").stdout
            if re.search(rf"^default via {re.escape(str(gateway))}\b", routes, re.M):
                v.evidence.append(f"{role}: default via {gateway} (the router)")
            else:
                ok = False
                v.evidence.append(f"{role}: no default route via {gateway}: {routes.strip()!r}")
        forward = self.nodes()[0]["router"].exec("cat", "/proc/sys/net/ipv4/ip_forward").stdout
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

    def _web_server(self, v: Verdict) -> None:
        router = self.nodes()[0]["router"]
        got = self._http(router, self.backend_url, curl="curl" in self.tools("router"))
        v.evidence.append(f"from the router: {got}")
        if got.outcome is HttpOutcome.OK and got.body.strip() == self.greeting:
            v.status = "pass"
            return
        start = (
            "podman exec -d {b} sh -c \"while true; do echo -e 'HTTP/1.1 200 OK\\n\\n"
            "Hello from Pod B' | nc -l -p 80; done\""
        ).format(**self.environment.names)
        if got.outcome is HttpOutcome.OK and got.body.lstrip().startswith("-e"):
            v.hint = (
                "the server's shell printed a literal '-e': its sh is not busybox/ash. "
                "Use busybox sh for the loop, or printf instead of echo -e"
            )
        elif got.outcome is HttpOutcome.OK:
            v.hint = f"b answers, but not exactly {self.greeting!r}: check Step 1's echo text"
        elif "nc" not in self.tools("b"):
            v.evidence.append("nc is not installed on b")
            v.hint = f"{self.apk('nc')}, then start Step 1's server: {start}"
        elif got.outcome is HttpOutcome.REFUSED:
            v.hint = f"nothing listens on b:{self.port}; start Step 1's server: {start}"
        else:
            v.hint = "b did not answer the router: is b's address right and the server running?"

    def _firewall(self, v: Verdict) -> None:
        a, router = self.nodes()[0]["a"], self.nodes()[0]["router"]

        def both() -> tuple[PingResult, HttpResult]:
            pinged, got = run_together(
                lambda: ping_portable(a, self.backend),
                lambda: self._http(
                    a,
                    self.backend_url,
                    curl="curl" in self.tools("a"),
                    timeout=1,
                    retry_refused=False,
                ),
            )
            return cast(PingResult, pinged), cast(HttpResult, got)

        seen = observe(router, both)
        pinged, got = seen.result
        v.evidence += [f"from a: {pinged}", f"from a: {got}", f"router: {_moves(seen)}"]
        h = self.names_for_hints()
        if pinged.received == 0 and got.outcome is HttpOutcome.TIMEOUT:
            v.status = "pass"
        elif pinged.received:
            v.hint = (
                f"a reaches b directly: Step 2's DROP rule is missing. Add it so that it "
                f"spares DNAT'ed traffic: podman exec {h['router']} iptables -I FORWARD "
                f"-i {h['public']} -o {h['pods']} -m conntrack ! --ctstate DNAT -j DROP"
            )
        else:
            v.hint = (
                f"ping is blocked but HTTP to b was {got.outcome.value}, not dropped: the "
                "workshop's firewall drops silently (-j DROP, not REJECT)"
            )

    def _vip(self, v: Verdict) -> None:
        h = self.names_for_hints()
        holder = self.router_if(self.vip)
        a = self.nodes()[0]["a"]
        pinged = ping_portable(a, self.vip)
        v.evidence.append(f"from a: {pinged}")
        add = f"podman exec {h['router']} ip addr add {self.vip}/32 dev {h['public']}"
        if holder is None:
            v.evidence.append(f"no router interface has {self.vip}")
            v.hint = f"add the VIP (Step 3): {add}"
        elif holder != h["public"]:
            v.evidence.append(
                f"{self.vip} is on the router's {holder}, not on {h['public']} (VLAN 10)"
            )
            reach = (
                " a reaches it only because Linux answers ARP for any local address (arp_ignore=0);"
                if pinged.received
                else ""
            )
            v.hint = (
                f"the VIP is on the wrong interface;{reach} MetalLB announces it on the "
                f"public side: podman exec {h['router']} ip addr del {self.vip}/32 dev "
                f"{holder}; {add}"
            )
        elif not pinged.received:
            v.evidence.append(f"{self.vip} is on {holder}")
            v.hint = "the VIP is in place but a gets no answer from it: check a's address/route"
        else:
            v.evidence.append(f"{self.vip} is on {holder} (VLAN 10)")
            v.status = "pass"

    def _vip_request(self) -> Observation[HttpResult]:
        """a's request to the VIP, with the router's counters: shared by dnat, snat, vip-curl."""

        def probe() -> Observation[HttpResult]:
            a, router = self.nodes()[0]["a"], self.nodes()[0]["router"]
            return observe(
                router, lambda: self._http(a, self.vip_url, curl="curl" in self.tools("a"))
            )

        return self._once("vip-request", probe)  # type: ignore[no-any-return]

    def nat_rules(self, chain: str) -> list[str]:
        router = self.nodes()[0]["router"]
        return [
            line
            for line in router.exec("iptables", "-t", "nat", "-S", chain).stdout.splitlines()
            if line.startswith("-A ")
        ]

    def _dnat(self, v: Verdict) -> None:
        seen = self._vip_request()
        target = f"{self.backend}:{self.port}"
        rules = [r for r in self.nat_rules("PREROUTING") if "DNAT" in r]
        v.evidence += [f"from a: {seen.result}", f"router: {_moves(seen)}"]
        v.evidence += [f"rule: {r}" for r in rules] or ["no DNAT rule in nat PREROUTING"]
        moved = [
            m
            for m in seen.moves
            if m.counter.table == "nat"
            and m.counter.chain == "PREROUTING"
            and m.counter.target == "DNAT"
        ]
        right = [m for m in moved if f"--to-destination {target}" in m.counter.spec]
        h = self.names_for_hints()
        command = (
            f"podman exec {h['router']} iptables -t nat -A PREROUTING -d {self.vip} -p tcp "
            f"--dport 80 -j DNAT --to-destination {target}"
        )
        if right:
            v.status = "pass"
        elif moved:
            v.hint = f"the VIP traffic is translated, but not to {target}: use {command}"
        elif rules:
            v.hint = (
                f"a DNAT rule exists but a's request did not match it; it must match "
                f"-d {self.vip} -p tcp --dport 80 (and the VIP must be reachable, see vip)"
            )
        else:
            v.hint = f"add Step 4's DNAT rule: {command}"

    def _snat(self, v: Verdict) -> None:
        seen = self._vip_request()
        h = self.names_for_hints()
        rules = [
            r
            for r in self.nat_rules("POSTROUTING")
            if _snat_rule_covers(r, self.backend, self.port, h["pods"])
        ]
        v.evidence += [f"rule: {r}" for r in rules] or [
            f"no MASQUERADE/SNAT rule in nat POSTROUTING covers {self.backend}:{self.port}"
        ]
        moved = sum(
            m.packets
            for m in seen.moves
            if m.counter.table == "nat"
            and m.counter.chain == "POSTROUTING"
            and m.counter.target in ("MASQUERADE", "SNAT")
        )
        dropped = sum(
            m.packets
            for m in seen.moves
            if m.counter.table == "filter" and m.counter.target == "DROP"
        )
        if not rules:
            v.hint = (
                f"add Step 5's rule: podman exec {h['router']} iptables -t nat -A "
                f"POSTROUTING -d {self.backend} -p tcp --dport {self.port} -j MASQUERADE"
            )
            return
        v.status = "pass"
        if moved:
            v.evidence.append(f"a's request to the VIP was source-NATed ({moved} packet(s))")
        elif dropped:
            v.evidence.append(
                "judged by the rule alone: a's request was dropped in FORWARD "
                "before reaching POSTROUTING (see vip-curl)"
            )
        else:
            v.evidence.append(
                "judged by the rule alone: a's request never reached b's side (see dnat and vip)"
            )

    def _vip_curl(self, v: Verdict) -> None:
        seen = self._vip_request()
        got = seen.result
        has_curl = "curl" in self.tools("a")
        v.evidence += [
            f"from a ({'curl' if has_curl else 'busybox wget: curl missing'}): {got}",
            f"router: {_moves(seen)}",
        ]
        notes = [] if has_curl else [f"curl is not installed on a: {self.apk('curl')}"]
        h = self.names_for_hints()
        if got.outcome is HttpOutcome.OK and got.body.strip() == self.greeting:
            v.status = "pass"
            v.hint = "; ".join(notes)
            return
        dnat = seen.moved("nat", "PREROUTING", "DNAT")
        dropped = seen.moved("filter", "FORWARD", "DROP")
        if got.outcome is HttpOutcome.TIMEOUT and dnat and dropped:
            hint = (
                "the FORWARD DROP rule of Step 2 also drops the DNAT'ed packets (FORWARD sees "
                "them after PREROUTING rewrote the destination). Replace it: podman exec "
                f"{h['router']} iptables -D FORWARD -i {h['public']} -o {h['pods']} -j DROP; "
                f"podman exec {h['router']} iptables -I FORWARD -i {h['public']} -o "
                f"{h['pods']} -m conntrack ! --ctstate DNAT -j DROP"
            )
        elif got.outcome is HttpOutcome.REFUSED and not dnat:
            hint = "the router owns the VIP but nothing translates it: add Step 4's DNAT rule"
        elif got.outcome is HttpOutcome.REFUSED:
            hint = "the request reached b, which refused it: start Step 1's web server on b"
        elif got.outcome is HttpOutcome.TIMEOUT and not dnat:
            hint = "nobody answers for the VIP: add it to the router's VLAN-10 side (Step 3)"
        elif got.outcome is HttpOutcome.OK:
            hint = f"the answer is not exactly {self.greeting!r}: check Step 1's server"
        else:
            hint = "see the evidence: the request did not complete"
        v.hint = "; ".join([hint, *notes])

    # --- probes ---------------------------------------------------------------------------

    def _http(
        self, node: Node, url: str, *, curl: bool, timeout: int = 2, retry_refused: bool = True
    ) -> HttpResult:
        """A GET; a refusal is retried briefly, since the workshop's nc loop has a gap."""
        results: list[HttpResult] = []

        def attempt() -> bool:
            results.append(http_get_portable(node, url, timeout=timeout, curl=curl))
            return not retry_refused or results[-1].outcome is not HttpOutcome.REFUSED

        wait_until(attempt, timeout=0.6, interval=0.2)
        return results[-1]


def _moves(seen: Observation[Any]) -> str:
    return explain(seen.moves)


def _snat_rule_covers(rule: str, backend: str, port: int, pods_if: str) -> bool:
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


_INET = re.compile(r"^\s+inet (\d+\.\d+\.\d+\.\d+/\d+)")
_LINK = re.compile(r"^\d+: ([^:@]+)[@:]")


def parse_ip_addr(text: str) -> dict[str, list[ipaddress.IPv4Interface]]:
    """`ip addr show` as iproute2 and busybox print it: interface -> IPv4 addresses."""
    result: dict[str, list[ipaddress.IPv4Interface]] = {}
    current = ""
    for line in text.splitlines():
        if link := _LINK.match(line):
            current = link[1]
            result.setdefault(current, [])
        elif (inet := _INET.match(line)) and current:
            result[current].append(ipaddress.IPv4Interface(inet[1]))
    return result
