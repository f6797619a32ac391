"""The host-side wire plan: veth pairs or an 802.1Q trunk, all tagged with the run's alias."""

from __future__ import annotations

from pytest_vlanlb.host.naming import RunNames
from pytest_vlanlb.host.wires import WireKind, parent_names, plan_wires

VLANS = [("public", 10), ("pods", 20)]


def test_veth_plan_makes_one_pair_per_segment():
    names = RunNames("abc123")
    commands = plan_wires(WireKind.VETH, names, VLANS)
    adds = [list(c.args) for c in commands if c.args[:2] == ("link", "add")]
    assert adds == [
        ["link", "add", "vlbabc123v10", "type", "veth", "peer", "name", "vlbabc123v10p"],
        ["link", "add", "vlbabc123v20", "type", "veth", "peer", "name", "vlbabc123v20p"],
    ]
    assert [c.creates for c in commands if c.creates] == ["vlbabc123v10", "vlbabc123v20"]
    assert parent_names(WireKind.VETH, names, VLANS) == {
        "public": "vlbabc123v10",
        "pods": "vlbabc123v20",
    }


def test_dot1q_plan_puts_vlan_subinterfaces_on_a_private_trunk():
    names = RunNames("abc123")
    commands = [list(c.args) for c in plan_wires(WireKind.DOT1Q, names, VLANS)]
    assert [
        "link",
        "add",
        "link",
        "vlbabc123t",
        "name",
        "vlbabc123t.10",
        "type",
        "vlan",
        "id",
        "10",
    ] in commands
    assert parent_names(WireKind.DOT1Q, names, VLANS)["pods"] == "vlbabc123t.20"


def test_every_link_is_labelled_and_brought_up():
    names = RunNames("abc123")
    for kind in WireKind:
        plan = plan_wires(kind, names, VLANS)
        commands = [list(c.args) for c in plan]
        made = {c.creates for c in plan if c.creates}
        made |= {
            c[7] for c in commands if c[:2] == ["link", "add"] and c[3] == "type" and c[4] == "veth"
        }
        aliased = {c[3] for c in commands if c[-2:] == ["alias", names.link_alias]}
        upped = {c[3] for c in commands if c[-1] == "up"}
        assert made == aliased == upped, kind
        # Nothing is ever attached to a host NIC: every link is one of ours.
        assert all(link.startswith("vlbabc123") for link in made)


def test_the_host_end_of_every_wire_answers_no_arp():
    """The host hears each segment's broadcasts on its end of the wire; NOARP there, so it
    never answers one (ARP nobody on a segment answered is then evidence: observation/arp)."""
    names = RunNames("abc123")
    for kind in WireKind:
        commands = [list(c.args) for c in plan_wires(kind, names, VLANS)]
        peers = {c[7] for c in commands if c[:2] == ["link", "add"] and c[4:5] == ["veth"]}
        noarp = {c[3] for c in commands if c[-2:] == ["arp", "off"]}
        assert peers, kind
        assert noarp == peers, kind
