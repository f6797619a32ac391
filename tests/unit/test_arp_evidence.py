"""ARP nobody answered, read from our counting table (observation/arp.py): the listing nft
1.0.6 printed in a namespace after a peer was asked for .100-.102 and answered for .1."""

from __future__ import annotations

from pytest_vlanlb.observation.arp import parse_counts, unanswered
from pytest_vlanlb.observation.words import Unanswered, Words

LISTING = """table arp vlanlb_arp {
\tset asked {
\t\ttype ipv4_addr
\t\tsize 4096
\t\tflags dynamic
\t\tcounter
\t\telements = { 10.9.0.100 counter packets 3 bytes 84, 10.9.0.101 counter packets 2 bytes 56,
\t\t\t     10.9.0.102 counter packets 1 bytes 28, 10.9.0.1 counter packets 1 bytes 28 }
\t}

\tset answered {
\t\ttype ipv4_addr
\t\tsize 4096
\t\tflags dynamic
\t\tcounter
\t\telements = { 10.9.0.1 counter packets 1 bytes 42 }
\t}

\tchain in {
\t\ttype filter hook input priority filter; policy accept;
\t\tarp operation request update @asked { arp daddr ip }
\t}

\tchain out {
\t\ttype filter hook output priority filter; policy accept;
\t\tarp operation reply update @answered { arp saddr ip }
\t}
}
"""
EMPTY = LISTING.split("\t\telements")[0] + "\t}\n}\n"


def test_the_listing_reads_as_asked_and_answered_per_address():
    assert parse_counts(LISTING) == {
        "10.9.0.100": (3, 0),
        "10.9.0.101": (2, 0),
        "10.9.0.102": (1, 0),
        "10.9.0.1": (1, 1),
    }
    assert parse_counts(EMPTY) == {}


def test_asked_and_never_answered_since_the_baseline_is_nobody():
    baseline = {"router": {"10.9.0.100": (1, 0)}}
    now = {"router": parse_counts(LISTING)}
    # .1 was answered; .100's request counted before the baseline still counts as asked
    # since (3 > 1); asked everywhere, answered nowhere:
    assert unanswered(baseline, now, now) == {"10.9.0.100", "10.9.0.101", "10.9.0.102"}


def test_an_answer_after_the_request_takes_the_address_back():
    earlier = {"router": {"10.9.0.100": (1, 0)}}
    later = {"router": {"10.9.0.100": (1, 1)}}
    assert unanswered({"router": {}}, earlier, later) == set()


def test_every_peer_must_have_been_asked():
    baseline = {"r1": {}, "r2": {}}
    earlier = {"r1": {"10.9.0.100": (1, 0)}, "r2": {}}  # r2 not (yet) asked: it might answer
    assert unanswered(baseline, earlier, earlier) == set()
    earlier["r2"] = {"10.9.0.100": (1, 0)}
    assert unanswered(baseline, earlier, earlier) == {"10.9.0.100"}
    later = {"r1": {"10.9.0.100": (1, 0)}, "r2": {"10.9.0.100": (1, 1)}}  # r2 answered
    assert unanswered(baseline, earlier, later) == set()


def test_a_peer_that_could_not_be_read_is_no_evidence():
    baseline = {"router": {}}
    asked = {"router": {"10.9.0.100": (1, 0)}}
    assert unanswered(baseline, None, asked) == set()
    assert unanswered(baseline, asked, None) == set()
    assert unanswered(baseline, asked, {"other": {}}) == set()


def test_said_in_both_languages():
    fact = Unanswered("192.168.10.100", ("router",))
    assert Words("en").fact(fact) == (
        "ARP for 192.168.10.100 reached every other node on the segment (router) and none "
        "answered: nobody there owns it"
    )
    assert "192.168.10.100 の ARP 要求" in Words("ja").fact(fact)
    assert "router" in Words("ja").fact(fact)
