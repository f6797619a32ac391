"""A probe's packets traced through a lab router by netfilter itself (`traced`).

The kernel delivers trace events only in the packet's own network namespace, so the monitor
(`nft -a monitor trace`) runs in the router's, from the host (the lab's own routers only:
this writes a rule, so it is never used on a student's router). A table of ours marks the
probe's packets (`meta nftrace set 1`) in a prerouting chain at priority -350, before every
other; it is removed, and the monitor stopped, whatever happens. Reading: observation/trace.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..errors import CommandError
from ..observation.counters import Move, snapshot
from ..observation.trace import (
    TRACE_TABLE,
    Rewrite,
    TraceLine,
    parse_trace,
    rewrites,
    trace_moves,
)
from ..observation.walk import Walk, walk_of_moves
from ..util.processes import die_with_parent, stop_process
from ..util.waiting import wait_until
from .node import Node

T = TypeVar("T")
#: nfnetlink's trace group (NFNLGRP_NFTRACE = 9) as /proc/net/netlink's group mask shows it.
_TRACE_GROUP = 1 << (9 - 1)
_NETLINK_NETFILTER = 12


@dataclass(frozen=True)
class Traced(Generic[T]):
    """A probe's result and what netfilter's trace saw of its packets."""

    result: T
    lines: list[TraceLine]
    moves: list[Move]  # the rules and policies met, as counters would have moved
    rewrites: list[Rewrite]  # NAT, as the chains saw the packets change

    def walk(self, router: str, probes: Sequence[Any] | None = None) -> Walk:
        """The walk the trace saw (observation/walk.py's model, as the counters' walk)."""
        seen = self.result if probes is None else probes
        listed = list(seen) if isinstance(seen, list | tuple) else [seen]
        return walk_of_moves(self.moves, router, listed)


def _nft(router: Node, *args: str, script: str | None = None) -> str:
    done = subprocess.run(
        ["nsenter", "-t", str(router.pid()), "-n", "nft", *args],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CommandError(f"nft {' '.join(args)} in {router.name}: {done.stderr.strip()}")
    return done.stdout


def _subscribed(router: Node, pid: int) -> bool:
    """Whether the monitor listens to trace events yet (its netlink socket in the router's
    namespace has joined the trace group): before that, events are lost."""
    with contextlib.suppress(OSError):
        listing = Path(f"/proc/{router.pid()}/net/netlink").read_text()
        for line in listing.splitlines()[1:]:
            fields = line.split()
            if fields[1:3] == [str(_NETLINK_NETFILTER), str(pid)]:
                return bool(int(fields[3], 16) & _TRACE_GROUP)
    return False


def traced(router: Node, probe: Callable[[], T], match: str) -> Traced[T]:
    """Run `probe` with the router tracing the packets `match` selects (an nft match, e.g.
    `ip saddr 192.168.10.10 ip daddr 192.168.10.100`); nothing of it stays on the router."""
    # Declared, emptied, then written in one transaction: a table a crashed run left is
    # replaced, never added to.
    _nft(
        router,
        "-f",
        "-",
        script=(
            f"table ip {TRACE_TABLE}\n"
            f"delete table ip {TRACE_TABLE}\n"
            f"table ip {TRACE_TABLE} {{\n"
            "  chain prerouting {\n"
            "    type filter hook prerouting priority -350; policy accept;\n"
            f"    {match} meta nftrace set 1\n"
            "  }\n"
            "}\n"
        ),
    )
    monitor = None
    try:
        monitor = subprocess.Popen(
            ["nsenter", "-t", str(router.pid()), "-n", "nft", "-a", "monitor", "trace"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        assert monitor.stdout is not None
        output = monitor.stdout.fileno()
        fcntl.fcntl(output, fcntl.F_SETFL, fcntl.fcntl(output, fcntl.F_GETFL) | os.O_NONBLOCK)
        ready = wait_until(
            lambda: _subscribed(router, monitor.pid),
            timeout=5,
            interval=0.01,
            give_up=lambda: monitor.poll() is not None,
        )
        if not ready:
            raise CommandError(f"nft monitor trace did not start in {router.name}")
        result = probe()
        chunks: list[bytes] = []
        quiet = [0]

        def drained() -> bool:  # the events of the probe's last packets, then silence
            with contextlib.suppress(BlockingIOError):
                if data := os.read(output, 1 << 20):
                    chunks.append(data)
                    quiet[0] = 0
                    return False
            quiet[0] += 1
            return quiet[0] >= 3

        wait_until(drained, timeout=2, interval=0.02)
    finally:
        if monitor is not None:
            stop_process(monitor, 2)
        _nft(router, "delete", "table", "ip", TRACE_TABLE)
    lines = parse_trace(b"".join(chunks).decode(errors="replace"))
    moves = trace_moves(
        lines, _nft(router, "-a", "list", "ruleset"), snapshot(router, kernel=False)
    )
    return Traced(result, lines, moves, rewrites(lines))
