"""When a command's result is settled before it ends: stop waiting there, and say why.

Most of a document's run is its own waiting: a `ping -c 3` that answered at once still takes
2 s to send its other requests, a blocked `ping -c 2` waits 10 s for late replies, a curl
through a DROP rule waits for its time limit. The runner stops a command as soon as what it
has shown settles what the document says of it, and reports the reason beside the result
("stopped after 2.1 s: 0 replies to 2 requests, 1 s after the last, settles '100% packet
loss'"). Nothing is settled by guessing:
- a ping the document expects to **fail** (or lose 100%) is settled once every request has
  been sent (its header line starts the clock; `-c`, `-i` give the schedule) and no reply came
  within `LATE_REPLY_WAIT` of the last; a reply keeps it running to its own end;
- a ping expected to **succeed**, with no promise about its statistics, is settled by its
  first reply that holds every promise read for it (its exit status is 0 from then on);
- a curl expected to fail is settled when nothing came back within `CURL_SILENCE_WAIT` (a
  SYN and its retransmission unanswered);
- a probe expected to succeed that has shown nothing is settled as failed only on evidence:
  the routers' counters show its packets being dropped (at least `DROPS_TO_SETTLE` since it
  began), which no waiting can change while that rule stands (`observation.settling`, the
  rule the lab's negative probes settle by too). That reading is the probe's
  diagnosis too: no repeat is needed.
Anything else runs to its end or its time limit, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..observation.settling import Readings, drops, reason, settles
from .mapping import PREFIX_COMMANDS, exec_container_index
from .promises import Fails, Observed, PacketLoss, Promise, Reply

#: After a ping's last request, a reply that has not come by then is not coming (a lab on
#: one host answers in milliseconds; a guest under TCG in tens of them).
LATE_REPLY_WAIT = 1.0
#: A curl expected to fail: its SYN and the retransmission after 1 s went unanswered.
CURL_SILENCE_WAIT = 2.0
#: A probe expected to succeed is read against the counters from then on, every `POLL_EVERY`.
EVIDENCE_AFTER = 1.2
POLL_EVERY = 0.5
DROPS_TO_SETTLE = 2

ReadCounters = Callable[[], Readings]


@dataclass(frozen=True)
class Settled:
    """Why a command was stopped, and the exit status it is settled to have (None: as if it
    had timed out: it would not have answered)."""

    status: int | None
    reason: str


@dataclass(frozen=True)
class PingSchedule:
    count: int | None  # None: until stopped
    interval: float


def probe_argv(argv: Sequence[str]) -> list[str]:
    """The probe's own argv inside `[sudo] podman exec [options] CONTAINER ...`, or as typed."""
    values = list(argv)
    while values and values[0] in PREFIX_COMMANDS:
        values = values[1:]
    if values and values[0].rsplit("/", 1)[-1] == "podman" and "exec" in values:
        return values[exec_container_index(values) + 1 :]
    return values


def ping_schedule(argv: Sequence[str]) -> PingSchedule | None:
    """`ping -c 3 -i 0.5 HOST` -> 3 requests, 0.5 s apart; None if `argv` is not a ping."""
    if not argv or argv[0].rsplit("/", 1)[-1] != "ping":
        return None
    count: int | None = None
    interval = 1.0
    i = 1
    while i < len(argv):
        word = argv[i]
        option = re.fullmatch(r"-([ci])(.*)", word)
        if option:
            value = option[2] or (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if option[2] else 2
            try:
                if option[1] == "c":
                    count = int(value)
                else:
                    interval = float(value)
            except ValueError:
                return None  # ping itself will say what is wrong
            continue
        i += 1
    return PingSchedule(count, interval)


class Watch:
    """Decides, from what a running command has shown so far, whether it is settled."""

    def __init__(
        self,
        argv: Sequence[str],
        promises: Sequence[Promise],
        *,
        expects_success: bool,
        read_counters: ReadCounters | None = None,
        before: Readings | None = None,
    ) -> None:
        self.probe = probe_argv(argv)
        self.promises = list(promises)
        self.expects_failure = any(p.expects_failure for p in promises)
        self.expects_success = expects_success and not self.expects_failure
        self.schedule = ping_schedule(self.probe)
        self.is_curl = bool(self.probe) and self.probe[0].rsplit("/", 1)[-1] == "curl"
        self.read_counters = read_counters
        self.before = before
        self.header_at: float | None = None
        self.next_poll = EVIDENCE_AFTER
        self.after: Readings | None = None  # the counters read when it was settled by evidence

    def poll(self, stdout: str, elapsed: float) -> Settled | None:
        if self.schedule is not None:
            if settled := self._ping(stdout, elapsed):
                return settled
        elif (
            self.is_curl
            and self.expects_failure
            and self._only(PacketLoss, Fails)
            and not stdout
            and elapsed >= CURL_SILENCE_WAIT
        ):
            return Settled(
                None,
                f"no answer within {CURL_SILENCE_WAIT:g} s (its SYN and the "
                "retransmission went unanswered) settles the failure the document expects",
            )
        if self.expects_success and self._silent(stdout) and elapsed >= self.next_poll:
            self.next_poll = elapsed + POLL_EVERY
            return self._dropped()
        return None

    def _ping(self, stdout: str, elapsed: float) -> Settled | None:
        assert self.schedule is not None
        if self.header_at is None and re.search(r"^PING ", stdout, re.MULTILINE):
            self.header_at = elapsed  # no earlier than the first request went out
        replies = len(re.findall(r"bytes from ", stdout))
        count = self.schedule.count
        if self.expects_failure and self._only(PacketLoss, Fails):
            if replies or self.header_at is None or count is None:
                return None
            last = self.header_at + (count - 1) * self.schedule.interval
            if elapsed >= last + LATE_REPLY_WAIT:
                words = "; ".join(repr(p.words) for p in self.promises)
                return Settled(
                    1,
                    f"0 replies to {count} requests, {LATE_REPLY_WAIT:g} s after the last, "
                    f"settles {words}",
                )
        elif self.expects_success and replies and self._only(Reply):
            partial = Observed(0, stdout, "", elapsed)
            if all(p.check(partial, str).ok for p in self.promises):
                return Settled(0, "a reply settles its exit status 0")
        return None

    def _only(self, *kinds: type) -> bool:
        return all(isinstance(p, kinds) for p in self.promises)

    def _silent(self, stdout: str) -> bool:
        if self.schedule is not None:
            return "bytes from " not in stdout
        return not stdout.strip()

    def _dropped(self) -> Settled | None:
        if self.read_counters is None or not self.before:
            return None
        after = self.read_counters()
        moves = drops(self.before, after)
        if not settles(moves, DROPS_TO_SETTLE):
            return None
        self.after = after
        return Settled(None, reason(moves))
