"""A student's lab, attached to and probed: every probe made once and kept, because several
steps judge from the same observation (dnat, snat and vip-curl share one request of a's)."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

import podman
from podman.errors import NotFound

from ..model.topology import NodeSpec, Role, Topology
from ..observation.addresses import parse_ip_addr
from ..observation.counters import Observation, observe
from ..observation.probes import (
    HttpResult,
    run_together,
)
from ..podman.container import Container
from ..podman.lookup import container_named
from .bounded import BoundedContainer
from .environments import Environment
from .lab_lock import LabLock
from .messages import Speaker
from .probing import get

T = TypeVar("T")
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
        *,
        locking: bool = True,
    ) -> None:
        """With `locking` (grading), the lab's shared lock is taken on attaching: while a
        `vlanlb solve` holds it, every step cannot be judged."""
        self.say = say or Speaker("en")
        self._lock = LabLock(environment) if locking else None
        self.being_solved = False  # every word of a verdict, in the run's language
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
        """End the shells opened in the student's containers (the containers stay), and
        let go of the lab."""
        if "nodes" in self._memo:
            for node in self.nodes()[0].values():
                node.close_shells()
        if self._lock is not None:
            self._lock.release()

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
        found: dict[Role, BoundedContainer] = {}
        problems: list[str] = []
        if self._lock is not None and not self._lock.take(exclusive=False):
            self.being_solved = True
            return found, [self.say("ev.being_solved")]
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
            return observe(  # the rules' counters only, as judges.firewall reads them
                router, lambda: get(a, self.vip_url, self.say, curl=curl), kernel=False
            )

        return self._once("vip-request", probe)


def _open_shells(node: Container, count: int) -> None:
    with contextlib.suppress(Exception):  # only earlier: the probes meet any problem again
        node.open_shells(count)
