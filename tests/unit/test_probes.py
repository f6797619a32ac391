"""Parsing probe output into facts: counts, TTLs, refused versus dropped."""

from __future__ import annotations

import pytest

from pytest_vlanlb.observation.probes import HttpOutcome, classify_curl, parse_ping

IPUTILS_OK = """PING 192.168.20.20 (192.168.20.20) 56(84) bytes of data.
64 bytes from 192.168.20.20: icmp_seq=1 ttl=63 time=0.392 ms
64 bytes from 192.168.20.20: icmp_seq=2 ttl=63 time=0.101 ms

--- 192.168.20.20 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 201ms
"""
IPUTILS_LOST = """PING 192.168.20.20 (192.168.20.20) 56(84) bytes of data.

--- 192.168.20.20 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 410ms
"""
BUSYBOX_OK = """PING 192.168.20.20 (192.168.20.20): 56 data bytes
64 bytes from 192.168.20.20: seq=0 ttl=63 time=0.224 ms

--- 192.168.20.20 ping statistics ---
1 packets transmitted, 1 packets received, 0% packet loss
"""


def test_parse_iputils_success():
    result = parse_ping("192.168.20.20", IPUTILS_OK)
    assert (result.transmitted, result.received, result.ttls) == (2, 2, (63, 63))
    assert result.loss == 0
    assert str(result) == "ping 192.168.20.20: 2/2 replies, ttl 63"


def test_parse_iputils_total_loss():
    result = parse_ping("192.168.20.20", IPUTILS_LOST)
    assert (result.transmitted, result.received, result.ttls) == (3, 0, ())
    assert result.loss == 1


def test_parse_busybox_ping():
    result = parse_ping("192.168.20.20", BUSYBOX_OK)
    assert (result.transmitted, result.received, result.ttls) == (1, 1, (63,))


def test_unparseable_output_counts_as_nothing_sent():
    result = parse_ping("x", "ping: unknown host x")
    assert (result.transmitted, result.received) == (0, 0)
    assert result.loss == 1


@pytest.mark.parametrize(
    ("rc", "stderr", "outcome"),
    [
        (0, "", HttpOutcome.OK),
        (28, "* Connection timed out after 1001 milliseconds", HttpOutcome.TIMEOUT),
        (7, "* connect to 192.168.10.100 port 80 failed: Connection refused", HttpOutcome.REFUSED),
        (7, "* connect to 192.168.20.20 port 80 failed: No route to host", HttpOutcome.UNREACHABLE),
        (6, "* Could not resolve host: x", HttpOutcome.ERROR),
    ],
)
def test_curl_outcomes_are_told_apart(rc, stderr, outcome):
    assert classify_curl(rc, stderr) is outcome
