"""How a typed command runs in the run's sandbox: as written, or with the few rewrites that
remain (apk, the internet, VLAN emulation), or not run (in the background)."""

from __future__ import annotations

import ipaddress

import pytest

from pytest_vlanlb.document.bash import split_commands
from pytest_vlanlb.document.mapping import Action, RunContext, document_nics, plan_command


def context(dot1q: bool = False) -> RunContext:
    ctx = RunContext(dot1q, env={"IF": "ens5"})
    ctx.subnets.append(ipaddress.IPv4Network("192.168.20.0/24"))
    return ctx


def plan(line: str, ctx: RunContext | None = None, internet: bool = False):
    ctx = ctx or context()
    (command,) = split_commands(line + "\n")
    return plan_command(line + "\n", command, ctx, internet)


@pytest.mark.parametrize(
    "line",
    [
        "sudo podman exec router iptables -I FORWARD -i eth1 -o eth2 -j DROP",
        "sudo podman run -d --name router --network podman alpine sleep infinity",
        "sudo podman rm -af",
        "podman network create -d macvlan -o parent=eth0 net-vlan10",
        "rm -rf /tmp/x",
        "echo hi > /root/.bashrc",
        "export IF=ens5 # your NIC",
        "ip link delete eth0",
        "podman run --rm -v /:/host --pid=host --network host alpine true",
        "cat /etc/shadow",
        "echo $(touch /tmp/marker)",
        "sudo sysctl -w net.ipv4.ip_forward=1",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
    ],
)
def test_commands_run_as_written(line):
    p = plan(line)
    assert p.action is Action.RUN, p.reason
    assert p.script == line
    assert not p.notes


def test_what_the_checks_need_is_still_read():
    ctx = context()
    p = plan("sudo podman exec router iptables -I FORWARD -i eth1 -o eth2 -j DROP", ctx)
    assert p.rule is not None
    assert (p.rule.table, p.rule.chain, p.rule.verb) == ("filter", "FORWARD", "-I")
    assert p.rule.spec == ("-i", "eth1", "-o", "eth2", "-j", "DROP")
    plan(
        "sudo podman run -d --name router --network podman --cap-add NET_ADMIN "
        "--sysctl net.ipv4.ip_forward=1 alpine sleep infinity",
        ctx,
    )
    plan("podman run -d --name=r2 --sysctl=net.ipv4.ip_forward=1 alpine sleep 1", ctx)
    assert ctx.routers == ["router", "r2"]
    plan("podman network create --subnet 192.168.10.0/24 -o parent=$IF.10 net-vlan10", ctx)
    assert ctx.in_lab("192.168.10.7")
    assert not ctx.in_lab("8.8.8.8")
    assert plan("podman exec a ping -c 3 192.168.20.20").probe_from == "a"
    assert plan("podman exec -e X=1 a curl http://192.168.20.20").probe_from == "a"
    assert ctx.resolve("$IF.10") == "ens5.10"


def test_apk_add_becomes_a_tool_check():
    p = plan("sudo podman exec router apk add --no-cache iptables")
    assert p.action is Action.RUN
    assert p.script.startswith("sudo podman exec router sh -c ")
    assert "iptables iptables-save" in p.script
    assert "apk" not in p.script.split("sh -c")[1]
    assert plan("podman exec a apk add left-pad").action is Action.REFUSED
    assert plan("podman exec a apk update").action is Action.SKIP


@pytest.mark.parametrize(
    "line",
    [
        "podman exec a ping -c 3 8.8.8.8",
        "podman exec a dig www.google.com",
        "podman exec a curl -I https://www.google.com",
        'podman exec a sh -c "curl http://example.com/x"',
        "curl -fsSL https://get.example.org | sh",
        "podman pull alpine",
    ],
)
def test_internet_is_skipped_with_its_reason(line):
    p = plan(line)
    assert p.action is Action.SKIP
    assert "internet" in p.reason or "registry" in p.reason
    assert plan("apk add curl", internet=True).action is Action.SKIP


def test_vlan_links_are_emulated_only_without_8021q():
    vlan = plan("sudo ip link add link $IF name $IF.10 type vlan id 10", context(dot1q=False))
    assert vlan.action is Action.EMULATE
    assert vlan.emulate_args == ("ens5.10", "10")
    assert any("emulated" in n for n in vlan.notes)
    real = plan("ip link add link $IF name $IF.10 type vlan id 10", context(dot1q=True))
    assert real.action is Action.RUN
    assert plan("ip link add v0 type veth peer name v1").action is Action.RUN


def test_modules_are_not_loaded():
    p = plan("sudo modprobe 8021q")
    assert (p.action, p.emulate) == (Action.EMULATE, "modprobe")
    assert plan("insmod /tmp/x.ko").emulate == "modprobe"


@pytest.mark.parametrize(
    "line",
    [
        "sudo podman run --rm --privileged --network host alpine ip link",
        "podman run --device=/dev/vda alpine true",
        "sudo sysctl -w kernel.domainname=x",
        "echo x > /proc/sys/kernel/domainname",
        "echo 1 >> /sys/kernel/mm/ksm/run",
        "mount /dev/vda1 /mnt",
        "mknod /tmp/vda b 252 0",
    ],
)
def test_what_the_kernel_refuses_the_sandbox_runs_as_written(line):
    """Safety is the sandbox's user namespace, not this reading: the kernel answers."""
    p = plan(line)
    assert p.action is Action.RUN
    assert p.script == line


def test_a_command_in_the_background_is_not_run():
    p = plan("podman exec a ping h &")
    assert p.action is Action.REFUSED
    assert "would outlive its step" in p.reason
    assert not p.script


def test_a_saved_rule_matches_the_rule_as_typed():
    from pytest_vlanlb.document.diagnosis import normal_spec

    saved = (
        "-d 192.168.10.100/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.20.20:80"
    )
    typed = "-d 192.168.10.100 -p tcp --dport 80 -j DNAT --to-destination 192.168.20.20:80"
    assert normal_spec(tuple(saved.split())) == normal_spec(tuple(typed.split()))
    assert normal_spec(("-i", "eth1", "-j", "DROP")) != normal_spec(("-i", "eth0", "-j", "DROP"))


def test_the_nics_a_document_expects():
    block = (
        "export IF=ens5 # change to yours\n"
        "sudo ip link add link enp0s3 name enp0s3.10 type vlan id 10\n"
        "podman network create -d macvlan -o parent=eno1.20 n\n"
        "podman network create -d macvlan -oparent=$IF.30 m\n"
        "IF=lo\n"
    )
    assert document_nics(split_commands(block)) == ("eth0", "ens5", "enp0s3", "eno1")
