"""MetalLB L2 failover between routers, and a client's view of it.

MetalLB's L2 leader holds the VIP and answers ARP for it; when the leader fails, another
node takes the VIP and its speaker sends gratuitous ARP at once and again for a few seconds,
so that clients update the MAC they send to. Without that, a client keeps sending to the dead
leader's MAC until its own neighbour entry expires (STALE, DELAY, unicast PROBEs, FAILED,
then a broadcast ARP that the new leader answers): MetalLB's known "ARP cache" problem.

Here a leader fails by losing its VLAN-10 link (`ip link set ethX down` in the router,
reversible); `RequestLoop` measures from the client, with the client's own clock, how long
the VIP stayed silent and how many requests were lost.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

from ..errors import LayerError
from ..util.waiting import wait_until
from .build import Lab
from .node import Node

#: Gratuitous ARPs the new leader sends: at once, then each second (busybox arping -U).
GARP_COUNT = 3
LOOP_LOG = "/tmp/vlanlb-loop.log"
#: When the loop stops (ns since the epoch): `seconds` after the failure, set once it is known.
LOOP_END = "/tmp/vlanlb-loop-end"
#: How long the loop may take to get its first answers before the failure (a slow machine,
#: an emulated one, needs seconds: the claims are about the gap, not about this).
SETTLE_LIMIT = 30.0
#: Answers the loop must have had before the failure (each started more than its timeout
#: before it, so the failure cannot have caught it in flight).
SETTLE = 5


def public_interface(lab: Lab, router: Node) -> str:
    return lab.router_interface(lab.topology.segment_of(lab.topology.service.vip), router)


def take_vip(lab: Lab, router: Node, *, garp: bool) -> None:
    """`router` becomes the leader: the VIP on its public leg, and (garp) unsolicited ARP."""
    interface, vip = public_interface(lab, router), lab.topology.service.vip
    script = f"ip addr add {vip}/32 dev {interface}"
    if garp:
        # In the background: the first announcement goes out at once, the rest each second.
        script += (
            f" && (busybox arping -U -c {GARP_COUNT} -I {interface} {vip} "
            "</dev/null >/dev/null 2>&1 &)"
        )
    router.exec("/bin/sh", "-c", script).check()


def drop_vip(lab: Lab, router: Node) -> None:
    interface, vip = public_interface(lab, router), lab.topology.service.vip
    router.exec("/bin/sh", "-c", f"ip addr del {vip}/32 dev {interface} 2>/dev/null; true")


def set_link(lab: Lab, router: Node, up: bool) -> None:
    interface = public_interface(lab, router)
    router.exec("ip", "link", "set", interface, "up" if up else "down").check()


@contextlib.contextmanager
def failed_leader(lab: Lab, leader: Node, follower: Node) -> Iterator[Callable[[bool], float]]:
    """Yields `fail(garp)`: the leader's VLAN-10 link goes down (it returns that moment) and
    the follower takes the VIP. Afterwards the leader is back and the follower holds nothing."""
    try:

        def fail(garp: bool) -> float:
            set_link(lab, leader, up=False)
            down = time.time()  # the moment the VIP's holder is gone
            take_vip(lab, follower, garp=garp)
            return down

        yield fail
    finally:
        drop_vip(lab, follower)
        set_link(lab, leader, up=True)
        # Addresses outlive a link that goes down: the leader still holds the VIP. It
        # announces itself again (as a returning MetalLB leader does), so clients move back.
        interface, vip = public_interface(lab, leader), lab.topology.service.vip
        leader.exec("busybox", "arping", "-U", "-c", "1", "-I", interface, str(vip))


@dataclass(frozen=True)
class Request:
    at: float  # seconds since the epoch, the client's clock
    ok: bool


@dataclass(frozen=True)
class Gap:
    """What the client saw around a failure at `failed_at`. A request that started less
    than `timeout` before it was in flight when it happened: it counts on neither side."""

    failed_at: float
    requests: list[Request]
    timeout: float

    @property
    def before(self) -> list[Request]:
        return [r for r in self.requests if r.at < self.failed_at - self.timeout]

    @property
    def after(self) -> list[Request]:
        return [r for r in self.requests if r.at >= self.failed_at]

    @property
    def recovered_at(self) -> float | None:
        """When the first request after the failure succeeded, or None."""
        return next((r.at for r in self.after if r.ok), None)

    @property
    def seconds(self) -> float | None:
        """How long the VIP stayed silent: failure to the first answered request after it."""
        return None if self.recovered_at is None else self.recovered_at - self.failed_at

    @property
    def lost(self) -> int:
        return sum(not r.ok for r in self.after)

    @property
    def failed_after_recovery(self) -> int:
        at = self.recovered_at
        return 0 if at is None else sum(not r.ok for r in self.after if r.at > at)

    def __str__(self) -> str:
        gap = "never recovered" if self.seconds is None else f"gap {self.seconds:.2f} s"
        return (
            f"{gap}, {self.lost} of {len(self.after)} requests lost after the failure "
            f"({len(self.before)} before it, "
            f"{'all ok' if all(r.ok for r in self.before) else 'NOT all ok'})"
        )


class RequestLoop:
    """Requests from `client` to `url`, back to back until `seconds` after a failure, each
    bounded by `timeout`, timestamped by the client; the failure is triggered once the loop
    has had its first answers."""

    def __init__(self, client: Node, url: str, *, seconds: float, timeout: float = 0.2) -> None:
        self.client = client
        self.url = url
        self.seconds = seconds
        self.timeout = timeout

    def _script(self) -> str:
        # Until the failure is known, the loop may run for the settle limit and `seconds`;
        # around() then moves the end (a rename: `read` never sees a half-written file).
        cap = int((SETTLE_LIMIT + self.seconds) * 1e9)
        return (
            f": > {LOOP_LOG}; echo $(( $(date +%s%N) + {cap} )) > {LOOP_END}; "
            f'while read -r end < {LOOP_END} && [ "$(date +%s%N)" -lt "$end" ]; do '
            f"t=$(date +%s%N); "
            f"if curl -s -o /dev/null --max-time {self.timeout:g} {self.url}; "
            f'then echo "$t ok"; else echo "$t fail"; fi >> {LOOP_LOG}; done; cat {LOOP_LOG}'
        )

    def _end_at(self, moment: float) -> None:
        end = int(moment * 1e9)
        self.client.exec(
            "/bin/sh", "-c", f"echo {end} > {LOOP_END}.new && mv {LOOP_END}.new {LOOP_END}"
        )

    def _answered(self, at_least: int) -> bool:
        """At least `at_least` requests were answered that started more than `timeout` ago:
        requests the failure cannot catch in flight, so that they count as "before" it."""
        horizon = int((time.time() - self.timeout) * 1e9)
        answered = 0
        for line in self.client.exec("cat", LOOP_LOG).stdout.splitlines():
            stamp, _, outcome = line.partition(" ")
            answered += stamp.isdigit() and int(stamp) < horizon and outcome == "ok"
        return answered >= at_least

    def around(self, failure: Callable[[], float], *, settle: int = SETTLE) -> Gap:
        """Run the loop; once `settle` requests were answered, run `failure`, which returns
        the moment the service broke."""
        self.client.exec("rm", "-f", LOOP_LOG, LOOP_END)  # no earlier loop's answers count
        with ThreadPoolExecutor(max_workers=1) as pool:
            loop = pool.submit(self.client.exec, "/bin/sh", "-c", self._script())
            try:
                if not wait_until(lambda: self._answered(settle), timeout=SETTLE_LIMIT):
                    raise LayerError(
                        f"the VIP did not answer {settle} requests within {SETTLE_LIMIT:g} s "
                        f"before the failure: check the layers ({self.url})"
                    )
                failed_at = failure()
                self._end_at(failed_at + self.seconds)
            except BaseException:
                self._end_at(0)  # the loop stops now, not at its cap
                raise
            output = loop.result().stdout
        requests = []
        for line in output.splitlines():
            stamp, _, outcome = line.partition(" ")
            if stamp.isdigit():
                requests.append(Request(int(stamp) / 1e9, outcome == "ok"))
        return Gap(failed_at, requests, self.timeout)


@dataclass(frozen=True)
class NeighbourTimers:
    """A client's ARP timers (per interface), and the longest a dead MAC can stay in use."""

    base_reachable_ms: int
    delay_first_probe_s: int
    retrans_ms: int
    ucast_solicit: int

    KEYS: ClassVar[dict[str, str]] = {
        "base_reachable_ms": "base_reachable_time_ms",
        "delay_first_probe_s": "delay_first_probe_time",
        "retrans_ms": "retrans_time_ms",
        "ucast_solicit": "ucast_solicit",
    }

    @property
    def longest_stale_use(self) -> float:
        """REACHABLE lasts up to 1.5 x base; then DELAY, then ucast_solicit unicast probes
        retrans apart, then FAILED and a broadcast ARP the new leader answers."""
        return (
            1.5 * self.base_reachable_ms / 1000
            + self.delay_first_probe_s
            + self.ucast_solicit * self.retrans_ms / 1000
        )

    @property
    def longest_with_a_late_confirmation(self) -> float:
        """Linux confirms a neighbour lazily: a socket that received an answer confirms the
        MAC with its next transmission. A request in flight at the failure, closing after it,
        can so confirm the dead MAC once more during DELAY, and the walk starts over: at most
        one more REACHABLE period and DELAY on top of the longest walk."""
        return (
            1.5 * self.base_reachable_ms / 1000 + self.delay_first_probe_s + self.longest_stale_use
        )

    @property
    def shortest_stale_use(self) -> float:
        """If the entry was already STALE at the failure: DELAY, then the unicast probes."""
        return self.delay_first_probe_s + self.ucast_solicit * self.retrans_ms / 1000

    def write(self, node: Node, interface: str) -> None:
        for field_name, key in self.KEYS.items():
            node.write_sysctl(f"net.ipv4.neigh.{interface}.{key}", str(getattr(self, field_name)))

    @classmethod
    def read(cls, node: Node, interface: str) -> NeighbourTimers:
        base = f"/proc/sys/net/ipv4/neigh/{interface}"
        values = node.exec(
            "/bin/sh", "-c", " ".join(f"cat {base}/{key};" for key in cls.KEYS.values())
        ).stdout.split()
        return cls(*(int(v) for v in values))


#: Linux's defaults: a dead leader's MAC can stay in use for up to 45 + 5 + 3 = 53 s.
LINUX_DEFAULT_TIMERS = NeighbourTimers(30000, 5, 1000, 3)
