"""Layers as data: rendering against lab facts, the commands they run, composition rules."""

from __future__ import annotations

import pytest

from pytest_vlanlb.errors import VlanlbError
from pytest_vlanlb.lab.layers import LAYERS, hex_to_ipv4, layer, ordered
from pytest_vlanlb.lab.layers.engine import batch_deletions

FACTS = {
    "public_if": "eth1",
    "pod_if": "eth2",
    "vip": "192.168.10.100",
    "port": "80",
    "backend": "192.168.20.20",
    "backend_port": "80",
    "greeting": "Hello from Pod B",
    "port_hex": "0050",
}


def commands(name, undo=False):
    return [c for step in LAYERS[name].steps for c in step.commands(FACTS, undo)]


def test_workshop_firewall_is_step2_exactly():
    assert commands("firewall:workshop") == [
        ["iptables", "-I", "FORWARD", "-i", "eth1", "-o", "eth2", "-j", "DROP"]
    ]
    assert commands("firewall:workshop", undo=True)[0][1] == "-D"


def test_dnat_aware_firewall_spares_dnat_traffic():
    assert commands("firewall:dnat-aware")[0][3:] == [
        "-i",
        "eth1",
        "-o",
        "eth2",
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "DNAT",
        "-j",
        "DROP",
    ]


def test_vip_dnat_snat_are_steps_3_to_5():
    assert commands("vip") == [["ip", "addr", "add", "192.168.10.100/32", "dev", "eth1"]]
    assert commands("vip", undo=True) == [["ip", "addr", "del", "192.168.10.100/32", "dev", "eth1"]]
    assert commands("dnat") == [
        [
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-d",
            "192.168.10.100",
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            "192.168.20.20:80",
        ]
    ]
    assert commands("snat") == [
        [
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-d",
            "192.168.20.20",
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "MASQUERADE",
        ]
    ]


def test_webserver_answers_exactly_the_greeting():
    (start,) = commands("webserver")
    assert "nc -ll -p 80" in start[-1]
    assert "Hello from Pod B" in start[-1]


def test_layers_apply_in_workshop_order_and_compose_once():
    names = [lay.name for lay in ordered(["snat", "dnat", "webserver", "vip", "firewall:workshop"])]
    assert names == ["webserver", "firewall:workshop", "vip", "dnat", "snat"]
    assert layer("firewall").name == "firewall:dnat-aware"
    with pytest.raises(VlanlbError, match="one firewall, one service layer at most"):
        ordered(["firewall:workshop", "firewall:dnat-aware"])
    with pytest.raises(VlanlbError, match="one firewall, one service layer at most"):
        ordered(["service", "service:nftables"])  # one kube-proxy, in one mode
    with pytest.raises(VlanlbError, match="unknown layer 'vipp'; known layers: webserver"):
        layer("vipp")


def test_every_layer_names_its_kubernetes_counterpart():
    assert all(lay.kubernetes for lay in LAYERS.values())


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("0A0AA8C0:D4F2", "192.168.10.10"),
        ("0000000000000000FFFF00000114A8C0:9C40", "192.168.20.1"),
    ],
)
def test_proc_net_tcp_addresses_decode(entry, address):
    assert hex_to_ipv4(entry) == address


def test_a_revert_deletes_its_rules_in_one_restore_where_the_first_deletion_stood():
    lines = batch_deletions(
        [
            ["busybox", "sh", "-c", "kill $(cat /tmp/pid)"],
            ["iptables", "-t", "nat", "-D", "POSTROUTING", "-d", "10.0.0.2", "-j", "MASQUERADE"],
            ["ip", "addr", "del", "10.0.0.100/32", "dev", "eth1"],
            ["iptables", "-D", "FORWARD", "-i", "eth1", "-o", "eth2", "-j", "DROP"],
            ["iptables", "-D", "FORWARD", "-m", "comment", "--comment", "two words", "-j", "DROP"],
            ["iptables", "-X", "KUBE-SVC"],
        ]
    )
    assert lines == [
        "busybox sh -c 'kill $(cat /tmp/pid)'",
        "printf '%s\\n' '*nat' '-D POSTROUTING -d 10.0.0.2 -j MASQUERADE' COMMIT '*filter' "
        "'-D FORWARD -i eth1 -o eth2 -j DROP' COMMIT | iptables-restore --noflush",
        "ip addr del 10.0.0.100/32 dev eth1",
        # a word iptables-restore would split (it knows no single quotes) stays a command
        "iptables -D FORWARD -m comment --comment 'two words' -j DROP",
        "iptables -X KUBE-SVC",
    ]
