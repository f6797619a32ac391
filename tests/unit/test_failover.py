"""The failover measurements as data: the gap around a failure, and the ARP timers' bounds."""

from __future__ import annotations

from pytest_vlanlb.lab.failover import LINUX_DEFAULT_TIMERS, Gap, NeighbourTimers, Request


def gap(*requests):
    return Gap(failed_at=10.0, requests=[Request(at, ok) for at, ok in requests], timeout=0.2)


def test_gap_from_the_failure_to_the_first_answer_after_it():
    g = gap(
        (9.0, True),
        (9.5, True),
        (9.9, False),
        (10.1, False),
        (10.4, False),
        (10.8, True),
        (11.0, True),
    )
    assert [r.at for r in g.before] == [9.0, 9.5]  # 9.9 was in flight at the failure
    assert g.seconds == 10.8 - 10.0
    assert g.lost == 2
    assert g.failed_after_recovery == 0
    assert str(g).startswith("gap 0.80 s, 2 of 4 requests lost")


def test_a_gap_that_never_closes():
    g = gap((9.0, True), (10.2, False), (10.5, False))
    assert g.seconds is None
    assert g.recovered_at is None
    assert str(g).startswith("never recovered")


def test_neighbour_timer_bounds():
    short = NeighbourTimers(
        base_reachable_ms=1000, delay_first_probe_s=1, retrans_ms=300, ucast_solicit=3
    )
    assert round(short.shortest_stale_use, 3) == 1.9
    assert round(short.longest_stale_use, 3) == 3.4
    assert round(short.longest_with_a_late_confirmation, 3) == 5.9
    assert LINUX_DEFAULT_TIMERS.longest_stale_use == 53.0
