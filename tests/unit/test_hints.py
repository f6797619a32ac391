"""Hints give the layer catalog's commands with the student's names, safe to paste."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_vlanlb.grading.hints import Hints, shell_line
from pytest_vlanlb.model.topology import Role, load_topology

BASIC = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "basic.yaml")


class FakeLab:
    """What Hints reads of a student's lab: its topology, container names, router legs."""

    def __init__(self, containers, legs):
        self.topology = BASIC
        self._containers = containers
        self._legs = legs

    def container(self, role):
        return self._containers[role]

    def router_leg_toward(self, address):
        return self._legs[str(address)]


def hints(router="router", a="a", b="b", public="eth1", pods="eth2"):
    lab = FakeLab(
        {Role.ROUTER: router, Role.CLIENT: a, Role.POD: b},
        {"192.168.10.100": public, "192.168.20.20": pods},
    )
    return Hints(lab)


def test_the_workshops_commands_as_the_workshop_writes_them():
    h = hints()
    assert h.firewall() == (
        "podman exec router iptables -I FORWARD -i eth1 -o eth2 "
        "-m conntrack ! --ctstate DNAT -j DROP"
    )
    assert h.add_vip() == "podman exec router ip addr add 192.168.10.100/32 dev eth1"
    assert h.dnat() == (
        "podman exec router iptables -t nat -A PREROUTING -d 192.168.10.100 -p tcp "
        "--dport 80 -j DNAT --to-destination 192.168.20.20:80"
    )
    assert h.masquerade() == (
        "podman exec router iptables -t nat -A POSTROUTING -d 192.168.20.20 -p tcp "
        "--dport 80 -j MASQUERADE"
    )
    assert h.start_server() == (
        "podman exec -d b sh -c \"while true; do echo -e 'HTTP/1.1 200 OK\\n\\n"
        "Hello from Pod B' | nc -l -p 80; done\""
    )
    assert h.install("curl") == "podman exec a apk add --no-cache curl"


def test_hostile_names_are_quoted_so_pasting_runs_nothing(tmp_path):
    h = hints(router="r$(touch pwned)", public="x;touch pwned2", pods="`touch pwned3`")
    line = h.replace_firewall()
    # Run it with `podman` as a function that prints its arguments, one per line.
    script = f"podman() {{ printf '%s\\n' \"$@\"; }}\n{line}\n"
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert list(tmp_path.iterdir()) == []  # nothing ran
    assert "r$(touch pwned)" in out.splitlines()
    assert "x;touch pwned2" in out.splitlines()
    assert "`touch pwned3`" in out.splitlines()


def test_shell_line_leaves_plain_words_bare():
    assert shell_line(["iptables", "!", "-j", "DROP"]) == "iptables ! -j DROP"
