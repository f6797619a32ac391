"""A student's lab, attached to and probed: every probe made once and kept, because several
steps judge from the same observation (dnat, snat and vip-curl share one request of a's)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import podman
from podman.errors import NotFound

from ..model.topology import NodeSpec, Role, Topology
from ..observation.addresses import parse_ip_addr
from ..observation.counters import Observation, observe
from ..observation.probes import (
    HttpOutcome,
    HttpResult,
    PingResult,
    classify_wget,
    http_get,
    parse_ping,
    run_together,
)
from ..podman.container import Container
from ..podman.lookup import container_named
from ..util.waiting import wait_until
from .bounded import BoundedContainer
from .environments import Environment
from .messages import Speaker

T = TypeVar("T")
#: How long a probe that a step expects to go unanswered waits (Step 2's blocked a -> b):
#: 500 round trips and more on a segment. Expected answers get 1 s (`http`), as a slow
#: answer judged as none would fail a correct lab.
SILENCE = 0.5
#: The tools whose presence changes how a step is probed or what its hint says.
TOOLS = ("curl", "wget", "ping", "nc", "iptables", "ip", "timeout")


class StudentLab:
    """One environment's containers by role, and what has been probed in them."""

    def __init__(
        self,
        environment: Environment,
        topology: Topology,
        podman_client: podman.PodmanClient,
        say: Speaker | None = None,
    ) -> None:
        self.say = say or Speaker("en")  # every word of a verdict, in the run's language
        self.environment = environment
        self.topology = topology
        self.podman = podman_client
        self._memo: dict[str, Any] = {}
        self._paused: list[str] = []
        self._paused_said: list[str] = []
        service = topology.service
        self.vip = str(service.vip)
        self.backend = str(service.backend_address)
        self.port = service.backend_port
        self.greeting = service.greeting
        self.vip_url = f"http://{self.vip}" + ("" if service.port == 80 else f":{service.port}")
        self.backend_url = f"http://{self.backend}" + ("" if self.port == 80 else f":{self.port}")
        self.specs: dict[Role, NodeSpec] = {
            Role.ROUTER: topology.router,
            Role.CLIENT: topology.client,
            Role.POD: topology.backend,
        }

    def _once(self, key: str, make: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]  # type: ignore[no-any-return]

    # --- attaching ------------------------------------------------------------------------

    def node_name(self, role: Role) -> str:
        """The workshop's name for the node that plays `role` (router, a, b)."""
        return self.specs[role].name

    def container(self, role: Role) -> str:
        """The student's container playing `role`."""
        return self.environment.names[self.node_name(role)]

    def nodes(self) -> tuple[dict[Role, BoundedContainer], list[str]]:
        """The running containers by role, and what is wrong with the others."""
        return self._once("nodes", self._attach)

    def close(self) -> None:
        """End the shells opened in the student's containers (the containers stay)."""
        if "nodes" in self._memo:
            for node in self.nodes()[0].values():
                node.close_shells()

    def node(self, role: Role) -> BoundedContainer:
        return self.nodes()[0][role]

    def unfinished(self) -> list[tuple[Role, str]]:
        """Every command killed at its bound so far, with the role it ran in."""
        return [(role, cmd) for role, node in self.nodes()[0].items() for cmd in node.unfinished]

    def cut(self) -> list[tuple[Role, str]]:
        """Every listing a judge needs whole that was cut at its (large) bound so far."""
        return [(role, cmd) for role, node in self.nodes()[0].items() for cmd in node.cut]

    def paused(self) -> list[str]:
        """The student's containers that exist but are paused (`podman pause`)."""
        self.nodes()
        return list(self._paused)

    def paused_problems(self) -> list[str]:
        """What the attach said of the paused containers (as evidence)."""
        self.nodes()
        return list(self._paused_said)

    def _attach(self) -> tuple[dict[Role, BoundedContainer], list[str]]:
        found, problems = {}, []
        for role, spec in self.specs.items():
            name, label = self.container(role), self.node_name(role)
            try:
                container = container_named(self.podman, name)  # literal, never a regex
            except NotFound:
                problems.append(self.say("ev.no_container", name=name, label=label))
                continue
            status = container.attrs.get("State", {}).get("Status")
            if status == "paused":
                problems.append(self.say("ev.paused", name=name, label=label))
                self._paused.append(name)
                self._paused_said.append(problems[-1])
                continue
            if status != "running":
                problems.append(self.say("ev.not_running", name=name, label=label))
                continue
            found[role] = BoundedContainer(spec, container)
        # The shells the probes need, opened side by side now rather than one by one by the
        # probes (the firewall step probes twice from a at once).
        run_together(
            *[
                lambda n=node, r=role: _open_shells(n, 2 if r is Role.CLIENT else 1)
                for r, node in found.items()
            ]
        )
        return found, problems

    # --- probes, each made once -------------------------------------------------------------

    def tools(self, role: Role) -> set[str]:
        def probe() -> set[str]:
            script = "; ".join(f"command -v {t} >/dev/null 2>&1 && echo {t}" for t in TOOLS)
            return set(self.node(role).exec("/bin/sh", "-c", script + "; true").stdout.split())

        return self._once(f"tools:{role.value}", probe)

    def addresses(self, role: Role) -> dict[str, list[ipaddress.IPv4Interface]]:
        def probe() -> dict[str, list[ipaddress.IPv4Interface]]:
            return parse_ip_addr(self.node(role).exec("ip", "addr", "show").stdout)

        return self._once(f"addr:{role.value}", probe)

    def router_if(self, address: str) -> str | None:
        for ifname, addrs in self.addresses(Role.ROUTER).items():
            if any(str(a.ip) == address for a in addrs):
                return ifname
        return None

    def router_leg_toward(self, address: ipaddress.IPv4Address) -> str | None:
        """The router interface holding its own address on `address`'s segment."""
        own = self.topology.router.address_on(self.topology.segment_of(address))
        return self.router_if(str(own))

    def nat_rules(self, chain: str) -> list[str]:
        rules = self.node(Role.ROUTER).exec("iptables", "-t", "nat", "-S", chain).stdout
        return [line for line in rules.splitlines() if line.startswith("-A ")]

    def vip_request(self) -> Observation[HttpResult]:
        """a's request to the VIP, with the router's counters: shared by dnat, snat, vip-curl."""

        def probe() -> Observation[HttpResult]:
            a, router = self.node(Role.CLIENT), self.node(Role.ROUTER)
            curl = "curl" in self.tools(Role.CLIENT)
            return observe(router, lambda: self.http(a, self.vip_url, curl=curl))

        return self._once("vip-request", probe)

    def ping_for_silence(self, node: BoundedContainer, target: str) -> PingResult:
        """One echo request a step expects to go unanswered, judged after SILENCE seconds.

        busybox ping waits whole seconds (-W 1), so it is stopped at SILENCE instead: no reply
        by then is none. A reply arrives in well under a millisecond on a segment. Silence
        proves something only if a request left: the container's own ICMP counter
        (`OutEchos` of /proc/net/snmp, its network namespace's) says whether one did, so a
        `ping` that hangs without sending is reported as what it is."""
        sent_before = echo_requests(node)
        result = node.exec_within(SILENCE, "ping", "-c", "1", "-W", "1", target)
        if result.rc == 124:  # stopped at SILENCE: nothing came back
            sent_after = echo_requests(node)
            if sent_before is not None and sent_after == sent_before:
                return PingResult(target, 0, 0, (), self.say("probe.sent_none", seconds=SILENCE))
            return PingResult(target, 1, 0, (), self.say("probe.no_reply", seconds=SILENCE))
        return parse_ping(target, result.stdout + result.stderr)

    def http(
        self,
        node: BoundedContainer,
        url: str,
        *,
        curl: bool,
        timeout: float = 1.0,
        retry_refused: bool = True,
    ) -> HttpResult:
        """A GET; a refusal is retried for 0.3 s, since the workshop's nc loop has a gap (the
        milliseconds between two nc processes). 1 s is a thousand round trips on a segment:
        an answer that is coming has come."""
        results: list[HttpResult] = []

        def attempt() -> bool:
            results.append(self._get(node, url, timeout=timeout, curl=curl))
            return not retry_refused or results[-1].outcome is not HttpOutcome.REFUSED

        wait_until(attempt, timeout=0.3, interval=0.05)
        return results[-1]

    def _get(self, node: BoundedContainer, url: str, *, timeout: float, curl: bool) -> HttpResult:
        """GET with curl when the node has it, else busybox wget, killed after `timeout`
        (busybox's own `wget -T` crashes on a refused connection, `timeout` leaves zombies)."""
        if curl:
            return http_get(node, url, timeout=timeout)
        start = time.perf_counter()
        result = node.exec_within(timeout, "wget", "-q", "-O", "-", url)
        elapsed = time.perf_counter() - start
        if result.rc == 124:  # killed at its limit: silence, as busybox `timeout` reported it
            detail = self.say("probe.no_answer", seconds=timeout)
        else:
            detail = result.stderr.strip() or self.say("probe.wget_exited", rc=result.rc)
        outcome = classify_wget(result.rc, result.stderr)
        return HttpResult(url, outcome, result.stdout, detail, elapsed)


_ICMP = re.compile(r"^Icmp: (?P<names>[A-Za-z ]+)\nIcmp: (?P<values>[\d -]+)$", re.MULTILINE)


def echo_requests(node: Container) -> int | None:
    """ICMP echo requests sent from the node's network namespace so far, or None where
    /proc/net/snmp cannot be read."""
    found = _ICMP.search(node.exec("cat", "/proc/net/snmp").stdout)
    if not found:
        return None
    counts = dict(zip(found["names"].split(), found["values"].split(), strict=False))
    value = counts.get("OutEchos", "")
    return int(value) if value.isdigit() else None


def _open_shells(node: Container, count: int) -> None:
    with contextlib.suppress(Exception):  # only earlier: the probes meet any problem again
        node.open_shells(count)
