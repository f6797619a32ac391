"""The probes a step makes in a student's container: a GET (curl where the container has
it, else busybox wget) and a ping a step expects to go unanswered, each bounded, each
told in the run's language."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import replace

from ..observation.probes import (
    HttpOutcome,
    HttpResult,
    PingResult,
    classify_wget,
    curl_argv,
    http_result,
    parse_ping,
    settled_by,
)
from ..observation.settling import silent_exec
from ..podman.container import Container
from ..util.waiting import wait_until
from .bounded import BoundedContainer
from .messages import Speaker

#: How long a probe that a step expects to go unanswered waits (Step 2's blocked a -> b):
#: 500 round trips and more on a segment. Expected answers get 1 s (`get`), as a slow
#: answer judged as none would fail a correct lab.
SILENCE = 0.5


def silent_ping(
    node: BoundedContainer,
    target: str,
    say: Speaker,
    *,
    evidence: Sequence[Container] = (),
) -> PingResult:
    """One echo request a step expects to go unanswered, judged after SILENCE seconds, or
    sooner once `evidence`'s counters (the student's router, only read) show it dropped:
    the one settling rule of the lab's negative probes (observation/settling.py).

    busybox ping waits whole seconds (-W 1), so it is stopped at SILENCE instead: no reply
    by then is none. A reply arrives in well under a millisecond on a segment. Silence
    proves something only if a request left: the container's own ICMP counter
    (`OutEchos` of /proc/net/snmp, its network namespace's) says whether one did, so a
    `ping` that hangs without sending is reported as what it is."""
    sent_before = echo_requests(node)
    run = silent_exec(
        node,
        ["ping", "-c", "1", "-W", "1", target],
        packets=1,
        window=SILENCE,
        evidence=evidence,
        run=functools.partial(node.exec_within, SILENCE),
        kernel=False,
    )
    if run.result.rc == 124:  # stopped at SILENCE: nothing came back
        sent_after = echo_requests(node)
        if sent_before is not None and sent_after == sent_before:
            return PingResult(target, 0, 0, (), say("probe.sent_none", seconds=SILENCE))
        return PingResult(target, 1, 0, (), say("probe.no_reply", seconds=SILENCE))
    pinged = parse_ping(target, run.result.stdout + run.result.stderr)
    return replace(pinged, stopped_by=settled_by(run), together=run.together)


def get(
    node: BoundedContainer,
    url: str,
    say: Speaker,
    *,
    curl: bool,
    timeout: float = 1.0,
    retry_refused: bool = True,
    evidence: Sequence[Container] = (),
) -> HttpResult:
    """A GET; a refusal is retried for 0.3 s, since the workshop's nc loop has a gap (the
    milliseconds between two nc processes). 1 s is a thousand round trips on a segment:
    an answer that is coming has come. With `evidence` (a GET expected to go unanswered),
    it is stopped as soon as the router's counters show its SYN dropped."""
    results: list[HttpResult] = []

    def attempt() -> bool:
        results.append(_get(node, url, say, timeout=timeout, curl=curl, evidence=evidence))
        return not retry_refused or results[-1].outcome is not HttpOutcome.REFUSED

    wait_until(attempt, timeout=0.3, interval=0.05)
    return results[-1]


def _get(
    node: BoundedContainer,
    url: str,
    say: Speaker,
    *,
    timeout: float,
    curl: bool,
    evidence: Sequence[Container] = (),
) -> HttpResult:
    """GET with curl when the node has it, else busybox wget, killed after `timeout`
    (busybox's own `wget -T` crashes on a refused connection, `timeout` leaves zombies)."""
    argv = curl_argv(url, timeout) if curl else ["wget", "-q", "-O", "-", url]
    run = silent_exec(
        node,
        argv,
        packets=1,
        window=timeout,
        evidence=evidence,
        # curl keeps its own time (--max-time); busybox wget is killed at the limit.
        run=None if curl else functools.partial(node.exec_within, timeout),
        stop_signal="TERM",  # under the wrapper, in the background: INT is ignored
        kernel=False,
    )
    result = run.result
    if curl:
        got = http_result(url, result.rc, result.stdout, result.stderr, run.elapsed)
    else:
        if result.rc == 124:  # killed at its limit: silence, as busybox `timeout` reported it
            detail = say("probe.no_answer", seconds=timeout)
        else:
            detail = result.stderr.strip() or say("probe.wget_exited", rc=result.rc)
        outcome = classify_wget(result.rc, result.stderr)
        got = HttpResult(url, outcome, result.stdout, detail, run.elapsed)
    # Stopped on its drop: no answer came, and none could (as the lab's negative GETs).
    # Killed at its limit (rc 124) it ran its whole window: the drops did not end it.
    ended_itself = result.rc == 124 or got.outcome not in (HttpOutcome.TIMEOUT, HttpOutcome.ERROR)
    if not run.drops or ended_itself:
        return got
    return replace(
        got,
        outcome=HttpOutcome.TIMEOUT,
        detail=say("probe.no_answer", seconds=round(run.elapsed, 2)),
        stopped_by=settled_by(run),
        together=run.together,
    )


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
