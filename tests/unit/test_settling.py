"""The settling rule on recorded counter dumps: what counts as a drop, and when drops settle
a probe (observation/settling.py; the lab's probes and document mode share it)."""

from __future__ import annotations

from pathlib import Path

from pytest_vlanlb.observation.counters import (
    KERNEL_DROPS,
    explain,
    parse_counters,
    parse_nft,
    parse_snmp,
    story,
)
from pytest_vlanlb.observation.settling import drops, reason, settles
from pytest_vlanlb.observation.words import Words

DUMPS = Path(__file__).parent / "dumps"

NFT_BEFORE = """table inet guard { # handle 9
\tchain forward { # handle 1
\t\ttype filter hook forward priority filter; policy accept;
\t\tip daddr 192.168.20.20 counter packets 0 bytes 0 drop # handle 2
\t\tip daddr 192.168.20.21 counter packets 0 bytes 0 reject # handle 3
\t}
}
"""


def iptables(name):
    return parse_counters((DUMPS / name).read_text())


def test_a_filter_drop_counts_and_a_dnat_does_not():
    moves = drops({"r": iptables("defect_before.txt")}, {"r": iptables("defect_after.txt")})
    assert [(m.counter.chain, m.counter.number, m.packets) for m in moves] == [("FORWARD", 1, 3)]
    assert settles(moves, 3)
    assert not settles(moves, 4)  # a probe that sent 4 still has one packet unaccounted for
    assert reason(moves).startswith("3 packets dropped by filter FORWARD rule 1 ")


def test_an_nft_drop_counts_and_a_reject_does_not():
    after = NFT_BEFORE.replace("0 bytes 0 drop", "2 bytes 168 drop").replace(
        "0 bytes 0 reject", "5 bytes 300 reject"
    )
    moves = drops({"r": parse_nft(NFT_BEFORE)}, {"r": parse_nft(after)})
    assert [(m.counter.table, m.packets) for m in moves] == [("inet guard", 2)]


def test_a_router_that_could_not_be_read_settles_nothing():
    before = {"r": iptables("defect_before.txt"), "gone": None}
    after = {"r": iptables("defect_before.txt"), "gone": iptables("defect_after.txt")}
    assert drops(before, after) == []
    assert not settles([], 0)  # no drops never settle, even for a probe that sent nothing


SNMP = (
    "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams "
    "InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes\n"
    "Ip: 2 64 {received} 0 {addr_errors} 0 0 0 10 10 0 0\n"
    "Icmp: InMsgs InErrors\nIcmp: 3 0\n"
)


def test_the_kernels_own_drops_count_and_say_why():
    """A router that does not forward drops a packet for another host with no rule: the
    IPv4 layer's InAddrErrors counts it, and that is evidence too."""
    before = parse_snmp(SNMP.format(received=10, addr_errors=0))
    after = parse_snmp(SNMP.format(received=12, addr_errors=2))
    assert set(before) == {("kernel", "Ip", 0, name) for name in KERNEL_DROPS}
    moves = drops({"r": before}, {"r": after})
    assert settles(moves, 2)
    assert explain(moves) == (
        "2 packets dropped by the router's kernel (InAddrErrors: for another host, and the "
        "router does not forward: is net.ipv4.ip_forward 0?)"
    )
    assert "ip_forward が 0 では" in Words("ja").facts(story(moves))


class NamedRouter:
    """A router that answers nothing but its name (the watch reads it only on join)."""

    def __init__(self, name: str) -> None:
        self.container_name = name

    def exec(self, *command: str):
        from pytest_vlanlb.podman.container import ExecResult

        return ExecResult(command, 0, "", "")

    def has_command(self, name: str) -> bool:
        return False


def test_routers_of_one_name_get_watches_of_their_own_and_a_watch_goes_with_its_probes():
    """A grader meets many routers called `router`: a watch is its routers' objects'."""
    from pytest_vlanlb.observation import settling

    first, second = NamedRouter("router"), NamedRouter("router")
    one = settling._join([first], 1, 2)
    other = settling._join([second], 2, 2)
    assert one is not other
    assert one.routers == [first]
    assert other.routers == [second]
    assert settling._join([first], 3, 1) is one  # probes on the same router share it
    for watch, probe in ((one, 1), (other, 2), (one, 3)):
        settling._leave(watch, probe)
    assert settling._watches == {}


def test_a_router_whose_counters_read_empty_is_no_reading():
    """A failed iptables-save reads as no counters: None, not {} (against which every
    counter would seem to have moved and settle a probe at once)."""
    from pytest_vlanlb.observation.settling import read

    assert read([NamedRouter("router")]) == {"router": None}
