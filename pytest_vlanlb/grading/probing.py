"""The probes a step makes in a student's container: a GET (curl where the container has
it, else busybox wget) and a ping a step expects to go unanswered, each bounded, each
told in the run's language."""

from __future__ import annotations

import re
import time

from ..observation.probes import (
    HttpOutcome,
    HttpResult,
    PingResult,
    classify_wget,
    http_get,
    parse_ping,
)
from ..podman.container import Container
from ..util.waiting import wait_until
from .bounded import BoundedContainer
from .messages import Speaker

#: How long a probe that a step expects to go unanswered waits (Step 2's blocked a -> b):
#: 500 round trips and more on a segment. Expected answers get 1 s (`get`), as a slow
#: answer judged as none would fail a correct lab.
SILENCE = 0.5


def silent_ping(node: BoundedContainer, target: str, say: Speaker) -> PingResult:
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
            return PingResult(target, 0, 0, (), say("probe.sent_none", seconds=SILENCE))
        return PingResult(target, 1, 0, (), say("probe.no_reply", seconds=SILENCE))
    return parse_ping(target, result.stdout + result.stderr)


def get(
    node: BoundedContainer,
    url: str,
    say: Speaker,
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
        results.append(_get(node, url, say, timeout=timeout, curl=curl))
        return not retry_refused or results[-1].outcome is not HttpOutcome.REFUSED

    wait_until(attempt, timeout=0.3, interval=0.05)
    return results[-1]


def _get(
    node: BoundedContainer, url: str, say: Speaker, *, timeout: float, curl: bool
) -> HttpResult:
    """GET with curl when the node has it, else busybox wget, killed after `timeout`
    (busybox's own `wget -T` crashes on a refused connection, `timeout` leaves zombies)."""
    if curl:
        return http_get(node, url, timeout=timeout)
    start = time.perf_counter()
    result = node.exec_within(timeout, "wget", "-q", "-O", "-", url)
    elapsed = time.perf_counter() - start
    if result.rc == 124:  # killed at its limit: silence, as busybox `timeout` reported it
        detail = say("probe.no_answer", seconds=timeout)
    else:
        detail = result.stderr.strip() or say("probe.wget_exited", rc=result.rc)
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
