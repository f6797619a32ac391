"""When a running command's result is settled: the rules of `settling`, fed the output a
command would show at each moment (no podman: the runner's side is in tests/document)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from pytest_vlanlb.document.promises import ExactOutput, Fails, Observed, PacketLoss, Reply
from pytest_vlanlb.document.sandbox import Sandbox
from pytest_vlanlb.document.settling import (
    CURL_SILENCE_WAIT,
    LATE_REPLY_WAIT,
    Watch,
    ping_schedule,
    probe_argv,
)
from pytest_vlanlb.observation.counters import parse_counters
from pytest_vlanlb.util.waiting import wait_until

HEADER = "PING 192.168.20.20 (192.168.20.20): 56 data bytes\n"
REPLY = "64 bytes from 192.168.20.20: seq=0 ttl=63 time=0.4 ms\n"
PING = ["sudo", "podman", "exec", "a", "ping", "-c", "2", "192.168.20.20"]
CURL = ["sudo", "podman", "exec", "a", "curl", "http://192.168.10.100"]
LOSS = PacketLoss("結果: パケットロス 100%", 100)


def test_the_probe_inside_podman_exec_and_its_schedule():
    assert probe_argv(PING) == ["ping", "-c", "2", "192.168.20.20"]
    assert probe_argv(["podman", "exec", "-e", "X=1", "-it", "a", "curl", "u"]) == ["curl", "u"]
    schedule = ping_schedule(["ping", "-c3", "-i", "0.2", "h"])
    assert schedule is not None
    assert (schedule.count, schedule.interval) == (3, 0.2)
    assert ping_schedule(["ping", "h"]).count is None  # type: ignore[union-attr]
    assert ping_schedule(["curl", "h"]) is None
    assert ping_schedule(["ping", "-c", "many", "h"]) is None


def test_a_blocked_ping_is_settled_once_its_last_request_went_unanswered():
    watch = Watch(PING, [LOSS], expects_success=True)
    assert watch.poll("", 0.5) is None  # not started: no clock yet
    assert watch.poll(HEADER, 0.3) is None  # the clock starts at its header
    assert watch.poll(HEADER, 0.3 + 1 + LATE_REPLY_WAIT - 0.05) is None
    settled = watch.poll(HEADER, 0.3 + 1 + LATE_REPLY_WAIT)
    assert settled is not None
    assert settled.status == 1
    assert "0 replies to 2 requests" in settled.reason
    assert "結果: パケットロス 100%" in settled.reason
    # Judged as stopped: the loss promise holds on what it showed.
    stopped = Observed(1, HEADER, "", 2.3, settled.reason)
    assert LOSS.check(stopped, str).ok
    assert Fails("fails").check(stopped, str).ok


def test_a_reply_keeps_a_ping_expected_to_fail_running_to_its_end():
    watch = Watch(PING, [LOSS], expects_success=True)
    watch.poll(HEADER, 0.1)
    assert watch.poll(HEADER + REPLY, 10.0) is None


def test_a_ping_without_a_count_is_never_settled_as_lost():
    watch = Watch(["ping", "h"], [LOSS], expects_success=True)
    watch.poll(HEADER, 0.1)
    assert watch.poll(HEADER, 60.0) is None


def test_a_ping_expected_to_answer_is_settled_by_a_reply_that_holds_its_promises():
    ttl = Reply("64 bytes from 192.168.20.20: seq=0 ttl=63", "192.168.20.20", 63)
    watch = Watch(PING, [ttl], expects_success=True)
    assert watch.poll(HEADER, 0.1) is None
    settled = watch.poll(HEADER + REPLY, 0.2)
    assert settled is not None
    assert settled.status == 0
    wrong_ttl = Watch(PING, [Reply("ttl 62", "192.168.20.20", 62)], expects_success=True)
    assert wrong_ttl.poll(HEADER + REPLY, 0.2) is None  # runs on: its check will say why
    # Its statistics are promised: only its end shows them.
    zero = Watch(PING, [PacketLoss("0% packet loss", 0)], expects_success=True)
    assert zero.poll(HEADER + REPLY, 0.2) is None


def test_a_curl_expected_to_fail_is_settled_when_nothing_came_back():
    watch = Watch(CURL, [Fails("(失敗することを確認)")], expects_success=True)
    assert watch.poll("", CURL_SILENCE_WAIT - 0.1) is None
    settled = watch.poll("", CURL_SILENCE_WAIT)
    assert settled is not None
    assert settled.status is None
    assert watch.poll("HTTP/1.1 200 OK", CURL_SILENCE_WAIT + 1) is None


DUMP = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[{n}:{b}] -A FORWARD -i eth1 -o eth2 -j DROP
COMMIT
"""


def test_a_probe_expected_to_answer_is_stopped_only_on_evidence_of_drops():
    reads = iter(
        [
            {"router": parse_counters(DUMP.format(n=1, b=60))},
            {"router": parse_counters(DUMP.format(n=3, b=180))},
        ]
    )
    watch = Watch(
        CURL,
        [ExactOutput("Hello", "Hello\n")],
        expects_success=True,
        read_counters=lambda: next(reads),
        before={"router": parse_counters(DUMP.format(n=0, b=0))},
    )
    assert watch.poll("", 0.5) is None  # too early to read the counters
    assert watch.poll("", 1.3) is None  # one drop: a SYN's first try
    assert watch.poll("", 1.5) is None  # read again only every POLL_EVERY
    settled = watch.poll("", 1.9)
    assert settled is not None
    assert settled.status is None
    assert "3 packets dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP`" in settled.reason
    assert watch.after == {
        "router": parse_counters(DUMP.format(n=3, b=180))
    }  # the diagnosis reads these
    # Without counters (no router known) it waits for its limit, as before.
    assert Watch(CURL, [], expects_success=True).poll("", 14.0) is None


def test_a_stopped_probes_processes_in_the_sandbox_are_killed_and_no_others(tmp_path: Path):
    """`kill_processes` finds a probe by its argv among the sandbox's descendants only (here
    a shell stands for the sandbox's init)."""
    outside = subprocess.Popen(["bash", "-c", "exec -a ping sleep 31.5"])
    inside = subprocess.Popen(
        ["bash", "-c", "bash -c 'exec -a /usr/local/bin/ping sleep 31.5' & wait"],
        start_new_session=True,
    )
    try:

        def children() -> list[int]:
            found = []
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if (entry / "cmdline").read_bytes() == b"/usr/local/bin/ping\x0031.5\x00":
                            found.append(int(entry.name))
                    except OSError:
                        pass
            return found

        assert wait_until(lambda: bool(children()), timeout=5)
        box = Sandbox(tmp_path, inside, inside.pid, -1, ())  # type: ignore[arg-type]
        (target,) = children()
        assert box.kill_processes(["ping", "31.5"]) == [target]
        assert wait_until(lambda: not children(), timeout=5)
        assert outside.poll() is None  # the same argv outside the sandbox lives on
    finally:
        for process in (outside, inside):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
