"""`vlanlb solve` and `vlanlb check` without containers: which rules count as Step 2 as
written or as catching the VIP, the one line a check prints, which lab is meant, and the
lock that keeps a solve and a grading run apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_hints import hints

from pytest_vlanlb.errors import VlanlbError
from pytest_vlanlb.grading.environments import Environment, chosen_environment
from pytest_vlanlb.grading.lab_lock import LabLock, lock_path, machine
from pytest_vlanlb.grading.platform import check_line
from pytest_vlanlb.grading.solving import _catches_vip, _drops_everything, solve, through
from pytest_vlanlb.grading.steps import STEP_IDS, grade
from pytest_vlanlb.grading.student import StudentLab
from pytest_vlanlb.grading.verdict import CANNOT_JUDGE, FAIL, PASS, Verdict
from pytest_vlanlb.model.topology import load_topology

BASIC = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "basic.yaml")


def test_step_2_as_written_is_the_drop_without_the_dnat_exception():
    h = hints()
    assert _drops_everything("-i eth1 -o eth2 -j DROP", h)
    assert _drops_everything("-i eth1 -o eth2 -j REJECT --reject-with icmp-port-unreachable", h)
    assert not _drops_everything("-i eth1 -o eth2 -m conntrack ! --ctstate DNAT -j DROP", h)
    assert not _drops_everything("-i eth2 -o eth1 -j DROP", h)
    assert not _drops_everything("-i eth1 -o eth2 -p icmp -j DROP", h)


class VipLab:
    vip = "192.168.10.100"
    topology = BASIC


@pytest.mark.parametrize(
    ("rule", "catches"),
    [
        ("-d 192.168.10.100/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 1.2.3.4:80", 1),
        ("-p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.20.21:80", 1),
        ("-d 192.168.10.100/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 1.2.3.4:80", 0),
        ("-d 192.168.10.101/32 -j DNAT --to-destination 1.2.3.4:80", 0),
        ("-d 192.168.10.100/32 -j ACCEPT", 0),
    ],
)
def test_a_dnat_rule_catches_the_vip_by_destination_and_port(rule, catches):
    assert _catches_vip(rule, VipLab()) is bool(catches)


def test_solving_up_to_a_step_solves_the_steps_before_it():
    assert through("env") == ("env",)
    assert through("vip") == ("env", "web-server", "firewall", "vip")
    assert through("vip-curl") == STEP_IDS


def test_a_check_is_one_line():
    passed = Verdict("vip", "Step 3: the VIP", PASS)
    assert check_line(passed) == "PASS vip: Step 3: the VIP"
    failed = Verdict("vip-curl", "Step 6", FAIL, ["seen"], "replace it: iptables ...")
    assert check_line(failed) == "FAIL: replace it: iptables ..."
    unsure = Verdict("firewall", "Step 2", CANNOT_JUDGE, ["b down"], "cannot judge: start b")
    assert check_line(unsure) == "FAIL: cannot judge: start b"
    assert check_line(Verdict("env", "t", FAIL, ["no router"])) == "FAIL: no router"


def test_which_lab(tmp_path):
    assert chosen_environment(None, STEP_IDS).names == {"router": "router", "a": "a", "b": "b"}
    named = chosen_environment("unix:///x", STEP_IDS, "router=r1,b=p1")
    assert (named.url, dict(named.names)) == ("unix:///x", {"router": "r1", "a": "a", "b": "p1"})
    class_file = tmp_path / "class.yaml"
    class_file.write_text(
        "environments:\n  - {name: alice, prefix: alice-}\n"
        "  - {name: bob, url: 'ssh://root@bob/run/podman/podman.sock'}\n"
    )
    bob = chosen_environment(None, STEP_IDS, class_file=str(class_file), name="bob")
    assert bob.url == "ssh://root@bob/run/podman/podman.sock"
    alice = chosen_environment(None, STEP_IDS, class_file=str(class_file), name="alice")
    assert alice.names["router"] == "alice-router"
    with pytest.raises(VlanlbError, match=r"which environment\? add --environment NAME"):
        chosen_environment(None, STEP_IDS, class_file=str(class_file))
    with pytest.raises(VlanlbError, match=r"no environment named 'carol'; the class has alice"):
        chosen_environment(None, STEP_IDS, class_file=str(class_file), name="carol")
    with pytest.raises(VlanlbError, match="keep one of them"):
        chosen_environment(None, STEP_IDS, "a=x", str(class_file), "bob")
    with pytest.raises(VlanlbError, match="give both"):
        chosen_environment(None, STEP_IDS, name="bob")


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the locks of this test only
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    return Environment("alice", None, {"router": "r", "a": "a", "b": "b"})


def test_a_lab_is_graded_or_solved_never_both(environment):
    grading, worker, solving = LabLock(environment), LabLock(environment), LabLock(environment)
    assert lock_path(environment).parent == Path(os.environ["TMPDIR"])
    assert grading.take(exclusive=False)
    assert worker.take(exclusive=False)  # xdist workers grade side by side
    assert not solving.take(exclusive=True)
    grading.release()
    worker.release()
    assert solving.take(exclusive=True)
    assert not LabLock(environment).take(exclusive=False)
    other = Environment("alice", None, {"router": "r2", "a": "a", "b": "b"})
    assert LabLock(other).take(exclusive=True)  # another lab is another lock
    # the same containers through another local API (grading's own service) are the same lab
    through_api = Environment("bob", "unix:///run/vlanlb-podman-x/podman.sock", environment.names)
    assert not LabLock(through_api).take(exclusive=False)
    elsewhere = Environment("alice", "ssh://root@bob-vm/run/podman/podman.sock", environment.names)
    assert LabLock(elsewhere).take(exclusive=False)  # another machine's router, a, b


def test_a_lab_is_known_by_its_machine():
    assert machine(None) == machine("unix:///run/podman/podman.sock") == "local"
    assert machine("ssh://root@10.253.3.2:2222/run/x/podman.sock") == "root@10.253.3.2:2222"


def test_solve_is_refused_while_the_lab_is_graded(environment):
    grading = LabLock(environment)
    assert grading.take(exclusive=False)
    with pytest.raises(VlanlbError, match=r"alice: a grading run is judging these containers"):
        solve(environment, BASIC, None, "vip")  # type: ignore[arg-type]
    grading.release()


def test_grading_while_a_solve_runs_cannot_judge_and_touches_nothing(environment):
    solving = LabLock(environment)
    assert solving.take(exclusive=True)
    lab = StudentLab(environment, BASIC, None)  # type: ignore[arg-type]
    verdict = grade(lab, "vip-curl")
    assert verdict.status is CANNOT_JUDGE
    assert verdict.hint.startswith("cannot judge: `vlanlb solve` is changing this lab now")
    assert verdict.evidence == ["`vlanlb solve` is changing this lab now"]
    lab.close()
    solving.release()
