"""Grading helpers that need no podman: names, class files, parsing, rule matching."""

from __future__ import annotations

import ipaddress

import pytest

from pytest_vlanlb.errors import ClassFileError, VlanlbError
from pytest_vlanlb.grading import load_class, parse_names
from pytest_vlanlb.grading.judges import snat_rule_covers
from pytest_vlanlb.observation.addresses import parse_ip_addr
from pytest_vlanlb.observation.probes import HttpOutcome, classify_wget


def test_names_default_override_and_prefix():
    assert parse_names(None) == {"router": "router", "a": "a", "b": "b"}
    assert parse_names("router=r1,b=pod") == {"router": "r1", "a": "a", "b": "pod"}
    assert parse_names(None, prefix="s1-")["a"] == "s1-a"
    with pytest.raises(VlanlbError, match="'c=x' is not ROLE=NAME"):
        parse_names("c=x")


def test_class_file(tmp_path):
    good = tmp_path / "class.yaml"
    good.write_text(
        "environments:\n  - name: alice\n    prefix: alice-\n"
        "  - name: bob\n    url: ssh://bob@host/run/podman/podman.sock\n"
        "    names: {router: r}\n"
    )
    alice, bob = load_class(good, "unix:///x.sock")
    override = tmp_path / "override.yaml"  # a name that keeps the prefix overrides one node
    override.write_text("environments:\n  - name: c\n    prefix: c-\n    names: {router: c-gw}\n")
    (carol,) = load_class(override, None)
    assert dict(carol.names) == {"router": "c-gw", "a": "c-a", "b": "c-b"}
    assert (alice.url, alice.names["b"]) == ("unix:///x.sock", "alice-b")
    assert (bob.url, dict(bob.names)) == (
        "ssh://bob@host/run/podman/podman.sock",
        {"router": "r", "a": "a", "b": "b"},
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("environments: []\n", "environments"),
        ("environments:\n  - prefix: x\n", "environments[0].name"),
        ("environments:\n  - name: a\n  - name: a\n", "environments[1].name"),
        ("environments:\n  - name: 'a b'\n", "environments[0].name"),
        ("environments:\n  - name: a\n    names: {c: x}\n", "environments[0].names.c"),
        ("environments:\n  - name: a\n    names: [x]\n", "environments[0].names"),
        ("environments:\n", "environments"),
        # prefix and names that disagree: whose lab is it?
        (
            "environments:\n  - name: a\n    prefix: alice-\n    names: {router: bob-router}\n",
            "environments[0].names.router",
        ),
        # two students graded on the same containers (the defaults, here)
        ("environments:\n  - name: a\n  - name: b\n", "environments[1]"),
        ("environments:\n  - name: a\n    prefix: [x]\n", "environments[0].prefix"),
    ],
)
def test_bad_class_files_name_the_field(tmp_path, text, field):
    path = tmp_path / "class.yaml"
    path.write_text(text)
    with pytest.raises(ClassFileError) as caught:
        load_class(path, None)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        # the wrong student's containers (the defaults) must never be graded for a typo
        ("environments:\n  - name: alice\n    prefx: alice-\n", "environments[0].prefx",
         "did you mean `prefix`?"),
        ("environments:\n  - name: bob\n    nmes: {a: x}\n", "environments[0].nmes",
         "did you mean `names`?"),
        ("environments:\n  - name: c\n    names: {routr: r}\n", "environments[0].names.routr",
         "did you mean `router`?"),
        ("environment:\n  - name: d\n", "environment", "did you mean `environments`?"),
        ("environments:\n  - name: e\n    colour: red\n", "environments[0].colour",
         "known keys: name, url, prefix, names, upto"),
    ],
)  # fmt: skip
def test_a_misspelt_class_file_key_is_an_error_naming_the_nearest_key(
    tmp_path, text, field, problem
):
    path = tmp_path / "class.yaml"
    path.write_text(text)
    with pytest.raises(ClassFileError) as caught:
        load_class(path, None)
    assert caught.value.field == field
    assert caught.value.problem == f"unknown key; {problem}"


IPROUTE2 = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN
    inet 127.0.0.1/8 scope host lo
2: eth0@if10: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
    link/ether 02:aa:bb:cc:dd:ee brd ff:ff:ff:ff:ff:ff link-netnsid 0
    inet 10.88.0.2/16 brd 10.88.255.255 scope global eth0
3: eth1@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
    inet 192.168.10.1/24 brd 192.168.10.255 scope global eth1
    inet 192.168.10.100/32 scope global eth1
    inet6 fe80::1/64 scope link
"""
BUSYBOX = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
7: eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP,M-DOWN> mtu 1500 qdisc noqueue
    inet 192.168.10.10/24 brd 192.168.10.255 scope global eth0
"""


def test_ip_addr_output_of_iproute2_and_busybox():
    parsed = parse_ip_addr(IPROUTE2)
    assert [str(a) for a in parsed["eth1"]] == ["192.168.10.1/24", "192.168.10.100/32"]
    assert parsed["eth0"] == [ipaddress.IPv4Interface("10.88.0.2/16")]
    assert [str(a) for a in parse_ip_addr(BUSYBOX)["eth0"]] == ["192.168.10.10/24"]


@pytest.mark.parametrize(
    ("rule", "covers"),
    [
        ("-A POSTROUTING -d 192.168.20.20/32 -p tcp -m tcp --dport 80 -j MASQUERADE", True),
        ("-A POSTROUTING -o eth2 -j MASQUERADE", True),
        ("-A POSTROUTING -o eth0 -j MASQUERADE", False),  # the uplink's NAT, not Step 5
        ("-A POSTROUTING -d 192.168.20.0/24 -j SNAT --to-source 192.168.20.1", True),
        ("-A POSTROUTING -d 192.168.20.21/32 -p tcp --dport 80 -j MASQUERADE", False),
        ("-A POSTROUTING -d 192.168.20.20/32 -p tcp --dport 8080 -j MASQUERADE", False),
        ("-A POSTROUTING -d 192.168.20.20/32 -j ACCEPT", False),
    ],
)
def test_which_postrouting_rules_do_step5(rule, covers):
    assert snat_rule_covers(rule, "192.168.20.20", 80, "eth2") is covers


@pytest.mark.parametrize(
    ("rc", "stderr", "outcome"),
    [
        (0, "", HttpOutcome.OK),
        (
            1,
            "wget: can't connect to remote host (192.168.20.20): Connection refused",
            HttpOutcome.REFUSED,
        ),
        (143, "", HttpOutcome.TIMEOUT),
        (124, "", HttpOutcome.TIMEOUT),
        (1, "wget: can't connect to remote host: No route to host", HttpOutcome.UNREACHABLE),
        (1, "wget: bad address 'x'", HttpOutcome.ERROR),
    ],
)
def test_busybox_wget_outcomes(rc, stderr, outcome):
    assert classify_wget(rc, stderr) is outcome


SNMP = """Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 15700
Icmp: InMsgs InErrors OutMsgs OutEchos OutEchoReps
Icmp: 1 0 3 {sent} 0
IcmpMsg: InType3 OutType8
IcmpMsg: 1 2
"""


class _SnmpNode:
    def __init__(self, text: str) -> None:
        self.text = text

    def exec(self, *command: str):  # the one command echo_requests runs
        from pytest_vlanlb.podman.container import ExecResult

        assert command == ("cat", "/proc/net/snmp")
        return ExecResult(command, 0, self.text, "")


def test_echo_requests_are_read_from_the_containers_own_icmp_counters():
    from pytest_vlanlb.grading.probing import echo_requests
    from pytest_vlanlb.observation.probes import PingResult

    assert echo_requests(_SnmpNode(SNMP.format(sent=7))) == 7  # type: ignore[arg-type]
    assert echo_requests(_SnmpNode("")) is None  # type: ignore[arg-type]
    # A ping that sent nothing says what was seen, not "0/0 replies".
    silent = PingResult("192.168.20.20", 0, 0, (), "sent no echo request within 0.5s")
    assert str(silent) == "ping 192.168.20.20: sent nothing (sent no echo request within 0.5s)"
    assert str(PingResult("h", 1, 0, (), "")) == "ping h: 0/1 replies"
