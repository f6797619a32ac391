"""Network probes run inside lab nodes, with results parsed into facts tests can assert.

Only silence uses a short wait: on a local segment a reply takes well under a millisecond, so
a probe that must NOT get through is sure after 0.3 s (a thousand round trips). Given the
routers to watch (`evidence=`), a negative probe stops sooner, once their counters show its
packets dropped (`settling`); with no such evidence it keeps its whole window. Anything that
must arrive (a reply, a greeting, a RST) gets POSITIVE_WAIT: on a loaded machine it can take
far longer than 0.3 s, and it costs nothing when it comes at once.
"""

from __future__ import annotations

import enum
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import urlsplit

from ..podman.container import Container
from .counters import story
from .settling import Silenced, silent_exec
from .words import ENGLISH, Evidence

T = TypeVar("T")

#: How long a negative probe waits before calling a packet lost (seconds).
NEGATIVE_WAIT = 0.3
#: How long a probe waits for something that must come (a reply, an answer, a refusal).
POSITIVE_WAIT = 5.0


@dataclass(frozen=True)
class PingResult:
    target: str
    transmitted: int
    received: int
    ttls: tuple[int, ...]
    output: str
    #: A negative ping stopped on evidence: the drops that settled it (else empty), and how
    #: many negative probes sent together those drops account for (itself included).
    stopped_by: tuple[Evidence, ...] = ()
    together: int = 1

    @property
    def loss(self) -> float:
        return 1.0 if self.transmitted == 0 else 1 - self.received / self.transmitted

    def __str__(self) -> str:
        return ENGLISH.ping(self)


_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_TTL = re.compile(r"ttl=(\d+)")


def parse_ping(target: str, output: str) -> PingResult:
    stats = _STATS.search(output)
    transmitted, received = (int(stats[1]), int(stats[2])) if stats else (0, 0)
    return PingResult(
        target, transmitted, received, tuple(int(t) for t in _TTL.findall(output)), output
    )


#: Between two echo requests of one probe: short, so that a probe's time is its wait (the
#: node runs ping as root, which iputils allows intervals under 0.2 s).
PING_INTERVAL = 0.01


def ping(
    node: Container,
    target: str,
    *,
    count: int = 1,
    wait: float = POSITIVE_WAIT,
    interval: float = PING_INTERVAL,
) -> PingResult:
    """`count` echo requests `interval` apart; waits `wait` seconds for the last reply."""
    result = node.exec(*_ping_argv(target, count, wait, interval))
    return parse_ping(target, result.stdout + result.stderr)


def _ping_argv(target: str, count: int, wait: float, interval: float) -> list[str]:
    return ["ping", "-n", "-c", str(count), "-i", f"{interval}", "-W", f"{wait:g}", target]


def ping_lost(
    node: Container,
    target: str,
    *,
    count: int = 2,
    evidence: Sequence[Container] = (),
    segment: Sequence[Container] = (),
) -> PingResult:
    """A negative ping: several requests, each given NEGATIVE_WAIT to be answered; stopped
    sooner once `evidence`'s counters show all of them dropped, or once every node of
    `segment` (all the others on `node`'s segment) was asked for `target` by ARP and none
    answered."""
    run = silent_exec(
        node,
        _ping_argv(target, count, NEGATIVE_WAIT, PING_INTERVAL),
        packets=count,
        window=NEGATIVE_WAIT + count * PING_INTERVAL,
        evidence=evidence,
        segment=segment,
        target=target,
    )
    result = parse_ping(target, run.result.stdout + run.result.stderr)
    return replace(result, stopped_by=settled_by(run), together=run.together)


def settled_by(run: Silenced) -> tuple[Evidence, ...]:
    """What a negative probe was stopped on, as facts: the ARP nobody answered, the drops."""
    return (*run.unanswered, *story(run.drops))


CURL_TIME = "vlanlb-curl-seconds="


class HttpOutcome(str, enum.Enum):
    OK = "ok"  # an HTTP answer arrived
    REFUSED = "refused"  # a TCP RST: the address answered, nothing listens
    TIMEOUT = "timeout"  # silence: dropped somewhere
    UNREACHABLE = "unreachable"  # ICMP unreachable or no ARP answer
    ERROR = "error"  # anything else (see detail)


@dataclass(frozen=True)
class HttpResult:
    url: str
    outcome: HttpOutcome
    body: str
    detail: str
    elapsed: float
    #: A negative request stopped on evidence: as PingResult's.
    stopped_by: tuple[Evidence, ...] = ()
    together: int = 1

    @property
    def ok(self) -> bool:
        return self.outcome is HttpOutcome.OK

    def __str__(self) -> str:
        return ENGLISH.http(self)


def classify_curl(rc: int, stderr: str) -> HttpOutcome:
    """Tell refused from dropped from unreachable by curl's exit code and verbose log."""
    if rc == 0:
        return HttpOutcome.OK
    if rc == 28:
        return HttpOutcome.TIMEOUT
    if "Connection refused" in stderr:
        return HttpOutcome.REFUSED
    if "No route to host" in stderr or "Network is unreachable" in stderr:
        return HttpOutcome.UNREACHABLE
    return HttpOutcome.ERROR


def curl_argv(url: str, timeout: float) -> list[str]:
    # curl's own clock: the exec around it can be slow on a loaded machine, curl's is not.
    timing = "%{stderr}" + CURL_TIME + "%{time_total}\n"
    return ["curl", "-sS", "-v", "--max-time", f"{timeout:g}", "-w", timing, url]


def http_result(url: str, rc: int, stdout: str, stderr: str, elapsed: float) -> HttpResult:
    stderr_lines = stderr.splitlines()
    for line in stderr_lines:
        if line.startswith(CURL_TIME):
            elapsed = float(line[len(CURL_TIME) :])
    detail = "\n".join(
        line for line in stderr_lines if not line.startswith(("> ", "< ", "{", "}", CURL_TIME))
    )
    return HttpResult(url, classify_curl(rc, stderr), stdout, detail, elapsed)


def http_get(node: Container, url: str, *, timeout: float = POSITIVE_WAIT) -> HttpResult:
    start = time.perf_counter()
    result = node.exec(*curl_argv(url, timeout))
    elapsed = time.perf_counter() - start
    return http_result(url, result.rc, result.stdout, result.stderr, elapsed)


def http_get_negative(
    node: Container,
    url: str,
    *,
    evidence: Sequence[Container] = (),
    segment: Sequence[Container] = (),
) -> HttpResult:
    """A request that must get no answer at all: a drop shows as a timeout after
    NEGATIVE_WAIT, or sooner once `evidence`'s counters show its SYN dropped (then it is a
    timeout too: no answer came, and none could), or once `segment` shows nobody answers ARP
    for its host (as `ping_lost`).

    Only for silence: a request expected to be refused must use `http_get`, since the RST
    may be late on a loaded machine.
    """
    run = silent_exec(
        node,
        curl_argv(url, NEGATIVE_WAIT),
        packets=1,
        window=NEGATIVE_WAIT,
        evidence=evidence,
        segment=segment,
        target=urlsplit(url).hostname,
    )
    got = http_result(url, run.result.rc, run.result.stdout, run.result.stderr, run.elapsed)
    # An answer that came before the stop stays an answer (the drops were another probe's).
    stopped = settled_by(run)
    if not stopped or got.outcome not in (HttpOutcome.TIMEOUT, HttpOutcome.ERROR):
        return got
    return replace(got, outcome=HttpOutcome.TIMEOUT, stopped_by=stopped, together=run.together)


def http_expecting(
    node: Container,
    url: str,
    expected: HttpOutcome,
    *,
    evidence: Sequence[Container] = (),
    segment: Sequence[Container] = (),
) -> HttpResult:
    """A GET that waits as long as `expected` needs: short for silence (shorter still on
    `evidence` or `segment`), long for anything."""
    if expected is HttpOutcome.TIMEOUT:
        return http_get_negative(node, url, evidence=evidence, segment=segment)
    return http_get(node, url)


def run_together(*probes: Callable[[], T]) -> list[T]:
    """Independent probes at the same time: negative ones then cost one wait, not several."""
    with ThreadPoolExecutor(max_workers=len(probes) or 1) as pool:
        return [future.result() for future in [pool.submit(p) for p in probes]]


# --- probes that also work with a busybox-only userland (students' alpine containers) -----


def ping_portable(node: Container, target: str, *, wait: int = 1) -> PingResult:
    """One echo request with options iputils and busybox ping share (-W whole seconds)."""
    result = node.exec("ping", "-c", "1", "-W", str(wait), target)
    return parse_ping(target, result.stdout + result.stderr)


def classify_wget(rc: int, stderr: str) -> HttpOutcome:
    if rc == 0:
        return HttpOutcome.OK
    if "refused" in stderr:
        return HttpOutcome.REFUSED
    if rc in (124, 143) or "timed out" in stderr:  # killed by `timeout`
        return HttpOutcome.TIMEOUT
    if "No route to host" in stderr or "unreachable" in stderr:
        return HttpOutcome.UNREACHABLE
    return HttpOutcome.ERROR


# --- many requests in one exec (a Service's spread, a failover's gap) ------------------------

FAILED_MARK = "vlanlb-request-failed"
#: Ends each transfer's output in http_many (curl's -w), so bodies can be told apart.
TRANSFER_MARK = "@@vlanlb-transfer@@"


def http_many(node: Container, url: str, count: int, *, timeout: float = 2.0) -> Counter[str]:
    """`count` requests from `node`, one new connection each (a new random pick by
    kube-proxy), in one curl process given the URL `count` times (`Connection: close`, so
    none is reused): answer body -> how many times it came. A failed request counts under
    FAILED_MARK with its HTTP code (000: no answer at all)."""
    result = node.exec(
        "curl",
        "-s",
        "--max-time",
        f"{timeout:g}",
        "-H",
        "Connection: close",
        "-w",
        f"\n{TRANSFER_MARK}%{{http_code}}\n",
        *[url] * count,
    )
    answers: Counter[str] = Counter()
    body: list[str] = []
    for line in result.stdout.splitlines():
        if not line.startswith(TRANSFER_MARK):
            body.append(line)
            continue
        code, text = line[len(TRANSFER_MARK) :], "\n".join(body).strip()
        answers[text if code.startswith("2") and text else f"{FAILED_MARK}-http-{code}"] += 1
        body = []
    return answers
