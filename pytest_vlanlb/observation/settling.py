"""When a probe that cannot get through is settled before its window ends: on evidence.

One rule, for the lab's negative probes and document mode's commands alike: a probe whose
packets the routers' counters show being dropped (by a filter DROP, an nft `drop`) cannot
succeed while that rule stands, so there is nothing left to wait for. Without evidence a
probe keeps its whole window: silence is only judged by waiting.

A negative probe (`silent_exec`) runs in the background of its node while the routers'
counters are read; it is stopped (SIGINT: ping still prints its statistics) once they account
for every packet it sent. Negative probes in flight at the same time on the same routers
share one watch, and are settled together, when the drops counted since the first of them
began cover every packet all of them sent (less what probes that already left sent, counted
as if dropped, so a drop is never credited twice). Counters cannot tell two probes' packets
apart, so together is the honest unit: a probe whose packets are not dropped (answered, or
unanswered for want of an owner) holds the others to their whole window, as it should.

A probe to an on-link address nobody owns sends no packet at all: they wait for ARP. Where the
caller names every other node on the prober's segment (`segment`), the watch also counts ARP
there (observation/arp.py); a probe whose target every one of them was asked for and none
answered is held for good, and settled by that alone (its packets owe no drop). This one is
told apart by address, so it settles its own probe, not the others beside it.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..podman.container import Container, ExecResult
from ..util.waiting import wait_until
from . import arp
from .counters import Counters, Move, counted_tables, diff, explain, snapshot
from .words import Unanswered

#: Each router's counters (`snapshot`: iptables and nft), None where they cannot be read (the
#: router is gone, or has no iptables).
Readings = dict[str, Counters | None]

#: How often the counters are read while a negative probe waits (each reading is two
#: commands through the router's shell, a few milliseconds here) ...
EVIDENCE_POLL = 0.005
#: ... but never more than a third of the time: where a reading is slow (a guest under TCG
#: takes a few hundred milliseconds), back-to-back readings took the CPU the probe's own
#: packets needed, and the main job ran 25 % slower there than with no settling at all.
READING_SHARE = 3.0


def moved(before: Readings, after: Readings) -> dict[str, list[Move] | None]:
    """Each router's counters that moved between two readings; None where either reading
    could not be made."""
    changes: dict[str, list[Move] | None] = {}
    for router, old in before.items():
        new = after.get(router)
        changes[router] = None if old is None or new is None else diff(old, new)
    return changes


def drops(before: Readings, after: Readings) -> list[Move]:
    """The drops the routers counted between two readings: filter DROP rules and policies,
    nft `drop` statements (a REJECT answers, so the probe ends by itself)."""
    changes = moved(before, after).values()
    return [m for moves in changes if moves is not None for m in moves if is_drop(m)]


def is_drop(move: Move) -> bool:
    counter = move.counter
    if counter.action:
        return counter.action == "drop"
    return counter.table == "filter" and counter.target == "DROP"


def settles(moves: Sequence[Move], packets: int) -> bool:
    """The drops account for every packet the probe sent (at least one)."""
    return sum(m.packets for m in moves) >= max(packets, 1)


def reason(moves: Sequence[Move]) -> str:
    return (
        f"{explain(list(moves))} while it waited, and nothing came back: it cannot succeed "
        "while that rule stands"
    )


@dataclass(frozen=True)
class Silenced:
    """A negative probe's run: its result, the drops it was stopped on (empty: it ran its
    whole window), and how many probes those drops were shared by (itself included)."""

    result: ExecResult
    drops: list[Move]
    together: int
    elapsed: float
    unanswered: tuple[Unanswered, ...] = ()  # or the ARP nobody answered that held it


class _Asked:
    """ARP counted on one segment's nodes (all the others on the probers' segment) for the
    probes of a watch that named them (observation/arp.py)."""

    def __init__(self, peers: Sequence[Container]) -> None:
        self.peers = list(peers)
        self.baseline = arp.watch(self.peers)
        self.readings: tuple[dict[str, arp.Counts] | None, ...] = ()  # the last two

    def read(self) -> None:
        if self.baseline is not None:
            self.readings = (*self.readings[-1:], arp.read(self.peers))

    def nobody(self) -> set[str]:
        """The addresses none of the peers answered ARP for, though all of them were asked."""
        if self.baseline is None or len(self.readings) < 2:
            return set()
        return arp.unanswered(self.baseline, *self.readings)


def _ids(containers: Sequence[Container]) -> tuple[int, ...]:
    return tuple(sorted(id(c) for c in containers))


class _Watch:
    """The negative probes in flight on one set of routers, and the counters since the
    first of them began."""

    def __init__(self, routers: Sequence[Container], kernel: bool) -> None:
        self.routers = list(routers)
        self.kernel = kernel
        self.lock = threading.Lock()
        self.before: Readings = {}
        self.members: dict[int, int] = {}  # probe -> packets it sends
        self.credited = 0  # packets of probes that left since `before`, counted as dropped
        self.departed = 0  # those probes: the drops since `before` settle them too
        self.reading: tuple[float, list[Move]] | None = None  # when, and the drops by then
        self.cost = 0.0  # how long the last reading took
        self.tables: dict[str, list[tuple[str, str]]] = {}  # each router's nft tables to read
        self.asked: dict[tuple[int, ...], _Asked] = {}  # by the segment's nodes
        self.targets: dict[int, tuple[str, _Asked]] = {}  # probe -> its target, its segment's
        self.held: set[int] = set()  # probes whose target nobody answers ARP for

    def join(
        self, probe: int, packets: int, segment: Sequence[Container], target: str | None
    ) -> None:
        with self.lock:
            if not self.members:
                started = time.perf_counter()
                # The tables are listed once a watch: its readings come milliseconds apart.
                self.tables = {r.container_name: counted_tables(r) for r in self.routers}
                self.before = read(self.routers, kernel=self.kernel, tables=self.tables)
                self.reading = None
                self.cost = time.perf_counter() - started
                self.credited = self.departed = 0
            if segment and target:  # counted from before the probe's first ARP request
                asked = self.asked.get(_ids(segment)) or _Asked(segment)
                self.asked[_ids(segment)] = asked
                self.targets[probe] = (target, asked)
            self.members[probe] = packets

    def leave(self, probe: int) -> bool:
        """Takes the probe out; True when it was the last."""
        with self.lock:
            packets = self.members.pop(probe)
            self.targets.pop(probe, None)
            if probe in self.held:  # its packets never left: no drop of theirs to credit
                self.held.discard(probe)
            else:
                self.credited += packets
                self.departed += 1
            if self.members:
                return False
            self.asked.clear()
            return True

    def settled(self, probe: int) -> tuple[list[Move], int, tuple[Unanswered, ...]] | None:
        """What settles `probe`: the ARP nobody answered for its target (that alone), or the
        drops, with how many probes they settle, once they cover every packet owed by the
        probes not held by such an ARP."""
        with self.lock:
            before, credited = self.before, self.credited
            now = time.perf_counter()
            due = max(EVIDENCE_POLL, READING_SHARE * self.cost)
            if self.reading is None or now - self.reading[0] >= due:
                # one reading serves every member
                readings = read(self.routers, kernel=self.kernel, tables=self.tables)
                for asked in self.asked.values():
                    asked.read()
                self.cost = time.perf_counter() - now
                self.reading = (now, drops(before, readings))
                # Held only changes with a reading: each segment's answer, worked out once.
                nobody = {id(asked): asked.nobody() for asked in self.asked.values()}
                self.held |= {p for p, (t, a) in self.targets.items() if t in nobody[id(a)]}
            moves = self.reading[1]
            if probe in self.held:
                target, asked = self.targets[probe]
                peers = tuple(p.container_name for p in asked.peers)
                return [], 1, (Unanswered(target, peers),)
            sharing = [p for p in self.members if p not in self.held]
            owed = sum(self.members[p] for p in sharing)
            # Every probe since `before`, gone or not: a load that delays one probe's poll must
            # not change what the drops are said to have settled.
            together = len(sharing) + self.departed
        if sum(m.packets for m in moves) - credited >= max(owed, 1):
            return moves, together, ()
        return None


#: The watches with probes in flight, by the routers' objects (not their names: graders of
#: a class meet many routers called `router`). A watch goes when its last probe leaves.
_watches: dict[tuple[int, ...], _Watch] = {}
_watches_lock = threading.Lock()
_probes = itertools.count()


def _join(
    routers: Sequence[Container],
    probe: int,
    packets: int,
    kernel: bool = True,
    segment: Sequence[Container] = (),
    target: str | None = None,
) -> _Watch:
    with _watches_lock:
        watch = _watches.setdefault(_ids(routers), _Watch(routers, kernel))
        watch.join(probe, packets, segment, target)
        return watch


def _leave(watch: _Watch, probe: int) -> None:
    with _watches_lock:
        if watch.leave(probe):
            _watches.pop(_ids(watch.routers), None)


def read(
    routers: Sequence[Container],
    *,
    kernel: bool = True,
    tables: Mapping[str, list[tuple[str, str]]] | None = None,
) -> Readings:
    """Each router's counters (`kernel`: the kernel's drop counters too; `tables`: the nft
    tables to read, by router, else listed anew); None where nothing could be read (a failed
    `iptables-save` reads as no counters at all, and against it every counter would seem to
    have moved)."""
    return {
        r.container_name: snapshot(
            r, kernel=kernel, tables=None if tables is None else tables[r.container_name]
        )
        or None
        for r in routers
    }


def silent_exec(
    node: Container,
    argv: Sequence[str],
    *,
    packets: int,
    window: float,
    evidence: Sequence[Container],
    run: Callable[..., ExecResult] | None = None,
    stop_signal: str = "INT",
    kernel: bool = True,
    segment: Sequence[Container] = (),
    target: str | None = None,
) -> Silenced:
    """`argv` in `node`, stopped early once `evidence`'s counters show its `packets` (and
    those of the negative probes in flight beside it) dropped. `window`: how long the probe
    runs by itself at most (its own timeout). `run` runs an argv in the node (`node.exec`
    unless given: the grader bounds its probes by wall time). `stop_signal`: INT lets ping
    print its statistics; a command the grader's wrapper runs in the background ignores
    INT (as sh makes every background job) unless it sets its own handler, as wget does
    not, so the grader stops a GET with TERM. `kernel=False` reads the rules' counters
    only (a student's router: one bounded command less per reading). `segment`: every other
    node on `node`'s segment (all of them, or none: the plugin's own labs only, since their ARP
    is counted by a table written there) and `target` the address the probe sends to: a
    target none of them answers ARP for settles the probe by itself."""
    execute = run or node.exec
    start = time.perf_counter()
    if not evidence and not segment:
        return Silenced(execute(*argv), [], 1, time.perf_counter() - start)
    # The probe carries a mark in its environment, found again in /proc to stop it: nothing
    # is written in the node (a student's container is only read).
    mark = f"VLANLB_PROBE={secrets.token_hex(6)}"
    stop = (
        f'for p in /proc/[0-9]*; do grep -qs {mark} "$p/environ" && '
        f'kill -{stop_signal} "${{p#/proc/}}"; done; true'
    )
    probe = next(_probes)
    watch = _join(evidence, probe, packets, kernel, segment, target)
    settled: tuple[list[Move], int, tuple[Unanswered, ...]] | None = None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            start = time.perf_counter()
            running = pool.submit(execute, "env", mark, *argv)

            def evidence_came() -> bool:
                nonlocal settled
                settled = watch.settled(probe)
                return settled is not None

            wait_until(
                evidence_came, timeout=window + 1.0, interval=EVIDENCE_POLL, give_up=running.done
            )
            if settled is not None and not running.done():
                node.exec("sh", "-c", stop)
            else:
                settled = None  # it ended by itself: its own result says what happened
            result = running.result()
            elapsed = time.perf_counter() - start
    finally:
        _leave(watch, probe)
    moves, together, nobody = settled or ([], 1, ())
    return Silenced(
        ExecResult(tuple(argv), result.rc, result.stdout, result.stderr),
        moves,
        together,
        elapsed,
        nobody,
    )
