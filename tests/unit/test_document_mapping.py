"""How a typed command is rewritten to run in a lab of its own, or refused, and why."""

from __future__ import annotations

import pytest

from pytest_vlanlb.document.mapping import Action, RunContext, plan_command
from pytest_vlanlb.document.shell import split_commands
from pytest_vlanlb.naming import RunNames

NAMES = RunNames("abc123", owner="host:1:2")
IMAGE = "localhost/vlanlb-alpine:test"


def context(dot1q: bool = False) -> RunContext:
    ctx = RunContext(NAMES, "vlbabc123t", dot1q, IMAGE)
    ctx.subnets.append(__import__("ipaddress").IPv4Network("192.168.20.0/24"))
    return ctx


def plan(line: str, ctx: RunContext | None = None, internet: bool = False):
    ctx = ctx or context()
    (command,) = split_commands(line + "\n")
    return plan_command(line + "\n", command, ctx, internet)


LABELS = "--label io.vlanlb.run=abc123 --label io.vlanlb.owner=host:1:2"


def test_sudo_dropped_and_names_mapped():
    p = plan("sudo podman exec router iptables -I FORWARD -i eth1 -o eth2 -j DROP")
    assert p.action is Action.RUN
    assert p.script == "podman exec vlb-abc123-router iptables -I FORWARD -i eth1 -o eth2 -j DROP"
    assert any("sudo" in n for n in p.notes)
    assert any("router -> vlb-abc123-router" in n for n in p.notes)
    assert p.rule is not None
    assert (p.rule.table, p.rule.chain, p.rule.verb) == (
        "filter",
        "FORWARD",
        "-I",
    )
    assert p.rule.spec == ("-i", "eth1", "-o", "eth2", "-j", "DROP")


def test_run_maps_name_network_image_and_labels_it():
    ctx = context()
    p = plan(
        "sudo podman run -d --name router --network podman --cap-add NET_ADMIN "
        "--sysctl net.ipv4.ip_forward=1 alpine sleep infinity",
        ctx,
    )
    assert p.script == (
        f"podman run {LABELS} -d --name vlb-abc123-router --network podman --cap-add NET_ADMIN "
        f"--sysctl net.ipv4.ip_forward=1 {IMAGE} sleep infinity"
    )
    assert ctx.routers == ["router"]
    p = plan("podman run -d --name=a --network=net-vlan10 --ip 192.168.10.10 alpine:3.20 sleep 1")
    assert "--name=vlb-abc123-a --network=vlb-abc123-net-vlan10" in p.script
    assert IMAGE in p.script


def test_network_create_connect_and_rm():
    ctx = context()
    p = plan(
        "podman network create --driver macvlan --subnet 192.168.10.0/24 "
        "--gateway 192.168.10.1 -o parent=$IF.10 net-vlan10",
        ctx,
    )
    assert p.script.startswith(f"podman network create {LABELS} --driver macvlan")
    assert p.script.endswith("-o parent=$IF.10 vlb-abc123-net-vlan10")
    assert ctx.in_lab("192.168.10.7")
    assert not ctx.in_lab("8.8.8.8")
    p = plan("podman network connect --ip 192.168.10.1 net-vlan10 router", ctx)
    assert (
        p.script
        == "podman network connect --ip 192.168.10.1 vlb-abc123-net-vlan10 vlb-abc123-router"
    )
    p = plan("podman rm -f a b router", ctx)
    assert p.script == "podman rm -f vlb-abc123-a vlb-abc123-b vlb-abc123-router"
    assert ctx.resolve("net-vlan10") == "vlb-abc123-net-vlan10"
    assert ctx.resolve("$IF.10") == "vlbabc123t.10"


def test_macvlan_parent_must_be_a_link_of_the_run():
    p = plan("podman network create -d macvlan -o parent=eth0 n")
    assert p.action is Action.UNMAPPED
    assert "real NIC" in p.reason


def test_apk_add_becomes_a_tool_check():
    p = plan("sudo podman exec router apk add --no-cache iptables")
    assert p.action is Action.RUN
    assert p.script.startswith("podman exec vlb-abc123-router sh -c ")
    assert "iptables iptables-save" in p.script
    assert "apk" not in p.script.split("sh -c")[1]
    assert plan("podman exec a apk add left-pad").action is Action.UNMAPPED
    assert plan("podman exec a apk update").action is Action.SKIP


@pytest.mark.parametrize(
    "line",
    [
        "podman exec a ping -c 3 8.8.8.8",
        "podman exec a dig www.google.com",
        "podman exec a curl -I https://www.google.com",
        'podman exec a sh -c "curl http://example.com/x"',
        "podman pull alpine",
    ],
)
def test_internet_is_skipped_with_its_reason(line):
    p = plan(line)
    assert p.action is Action.SKIP
    assert "internet" in p.reason or "registry" in p.reason


def test_lab_traffic_runs():
    assert plan("podman exec a ping -c 3 192.168.20.20").probe_from == "a"
    assert plan("podman exec a curl http://192.168.20.20").action is Action.RUN
    assert plan("apk add curl", internet=True).action is Action.SKIP


def test_host_ip_commands():
    ctx = context(dot1q=False)
    assert plan("ip -brief link", ctx).action is Action.RUN
    vlan = plan("sudo ip link add link $IF name $IF.10 type vlan id 10", ctx)
    assert vlan.action is Action.EMULATE
    assert vlan.emulate_args == ("vlbabc123t.10", "10")
    assert any("emulated" in n for n in vlan.notes)
    real = plan("ip link add link $IF name $IF.10 type vlan id 10", context(dot1q=True))
    assert real.action is Action.RUN
    assert real.new_links == ["vlbabc123t.10"]
    assert plan("ip link set $IF.10 up", ctx).action is Action.RUN
    for line in (
        "ip link delete eth0",
        "ip link set dev eth0 down",
        "ip addr add 10.0.0.1/24 dev eth0",
        "ip link add link eth0 name eth0.10 type vlan id 10",
    ):
        assert plan(line, ctx).action is Action.UNMAPPED, line


def test_export_if_is_the_trunk():
    p = plan("export IF=ens5 # your NIC")
    assert p.action is Action.EMULATE
    assert p.emulate_args == ("IF=vlbabc123t",)
    assert any("never a real NIC" in n for n in p.notes)


@pytest.mark.parametrize(
    "line", ["rm -rf /tmp/x", "systemctl restart podman", "podman exec a ping h &", "docker ps"]
)
def test_what_cannot_be_run_safely_is_reported_not_run(line):
    p = plan(line)
    assert p.action is Action.UNMAPPED
    assert p.reason
    assert not p.script


def test_pipeline_filters_run_as_written():
    p = plan("podman info | grep rootless")
    assert p.action is Action.RUN
    assert p.script == "podman info | grep rootless"


def test_a_saved_rule_matches_the_rule_as_typed():
    from pytest_vlanlb.document.runner import normal_spec

    saved = (
        "-d 192.168.10.100/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.20.20:80"
    )
    typed = "-d 192.168.10.100 -p tcp --dport 80 -j DNAT --to-destination 192.168.20.20:80"
    assert normal_spec(tuple(saved.split())) == normal_spec(tuple(typed.split()))
    assert normal_spec(("-i", "eth1", "-j", "DROP")) != normal_spec(("-i", "eth0", "-j", "DROP"))


def test_readers_run_on_the_host_with_their_here_document():
    p = plan("grep -c fine <<EOF\nfine\nEOF")
    assert p.action is Action.RUN
    assert p.script == "grep -c fine <<EOF\nfine\nEOF"
