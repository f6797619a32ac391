"""The grader proves itself on solved states, and `vlanlb solve` / `vlanlb check` work on
student-like labs.

For every step k, a fresh base lab (containers and addresses only, as vlan_ja.md leaves it)
solved up to k passes the steps up to k and fails step k+1; solving the rest makes it 7/7.
From the usual broken states (Step 2 as written, no server, the VIP on eth2, no DNAT, no
firewall, a DNAT rule to the wrong pod), solve repairs the lab and the grade is full; what it
cannot fix (no iptables to be had, b stopped) it says. Grading here is the grader's own
`grade`, in this process; the commands are the `vlanlb` CLI as a student runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_vlanlb.grading.environments import Environment
from pytest_vlanlb.grading.lab_lock import LabLock
from pytest_vlanlb.grading.solving import solve
from pytest_vlanlb.grading.steps import STEP_IDS, grade
from pytest_vlanlb.grading.student import StudentLab
from pytest_vlanlb.grading.verdict import FAIL, PASS
from pytest_vlanlb.host.image import ImageRecipe

from .conftest import build_student_lab, remove_student_lab
from .workshop import BASIC, DROP_AS_WRITTEN, SERVER, Variant

#: vlan_ja.md's lab and nothing of k8s_lb_ja.md yet.
BASE = Variant([], server=None)
#: The labs the tests below change, one each: a fresh base per step, and broken states.
BROKEN = ("as-written", "no-server", "vip-wrong-if", "no-dnat", "no-firewall", "comment-dnat")
LABS: dict[str, Variant | str] = {
    **{f"base-{step}": BASE for step in STEP_IDS},
    **{name: name for name in BROKEN},
    "no-iptables": "no-iptables",
    "b-stopped": Variant([], stopped=("b",)),
    "step-2": Variant([DROP_AS_WRITTEN], server=SERVER),
    "check-wrong": "as-written",
    "check-right": "complete",
}
IMAGES = {"busybox": None, "node": ImageRecipe().tag}


@pytest.fixture(scope="module")
def labs(vlanlb_podman, alpine_like_image):
    from .workshop import ALL_VARIANTS

    def build(key):
        variant = LABS[key]
        typed = variant if isinstance(variant, Variant) else ALL_VARIANTS[variant]
        images = {**IMAGES, "busybox": alpine_like_image}
        return build_student_lab(
            vlanlb_podman.client(),
            f"sv-{key}-",
            images[typed.router_image],
            images[typed.client_image],
            alpine_like_image,
            variant,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(build, key) for key in LABS}
    built = {key: f.result() for key, f in futures.items() if not f.exception()}
    try:
        for future in futures.values():
            if future.exception():
                raise future.exception()  # type: ignore[misc]
        yield built
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda lab: remove_student_lab(lab.client, lab), built.values()))


def environment(lab) -> Environment:
    names = {role: f"{lab.prefix}{role}" for role in ("router", "a", "b")}
    return Environment(lab.prefix.rstrip("-"), None, names)


def why(outcome) -> list:
    """What a solve printed and, after it, each step that did not pass: for a failure."""
    return [*outcome.ran, *[(v.id, v.status.value, v.evidence, v.hint)
                            for v in outcome.verdicts or () if not v.passed]]  # fmt: skip


def graded(lab, client) -> dict[str, object]:
    student = StudentLab(environment(lab), BASIC, client)
    try:
        return {step: grade(student, step) for step in STEP_IDS}
    finally:
        student.close()


@pytest.mark.parametrize("upto", STEP_IDS)
def test_solved_up_to_a_step_passes_it_and_fails_the_next(upto, labs, vlanlb_podman):
    lab, client = labs[f"base-{upto}"], vlanlb_podman.client()
    said: list[str] = []
    outcome = solve(environment(lab), BASIC, client, upto, out=said.append)
    assert outcome.solved, (said, why(outcome))
    verdicts = graded(lab, client)
    k = STEP_IDS.index(upto)
    assert [verdicts[s].status for s in STEP_IDS[: k + 1]] == [PASS] * (k + 1), said
    if k + 1 < len(STEP_IDS):
        after = verdicts[STEP_IDS[k + 1]]
        assert after.status is FAIL, (after.evidence, after.hint)
    # the commands printed are the workshop's, typed in the student's containers
    router = f"podman exec {lab.prefix}router"
    expected = {
        "env": [],
        "web-server": [f"$ podman exec -d {lab.prefix}b sh -c"],
        "firewall": [f"$ {router} iptables -I FORWARD -i eth1 -o eth2 -j DROP"],
        "vip": [f"$ {router} ip addr add 192.168.10.100/32 dev eth1"],
        "dnat": [f"$ {router} iptables -t nat -A PREROUTING -d 192.168.10.100 -p tcp --dport 80"],
        "snat": [f"$ {router} iptables -t nat -A POSTROUTING -d 192.168.20.20"],
        "vip-curl": [f"$ {router} iptables -I FORWARD -i eth1 -o eth2 -m conntrack"],
    }
    # one command per step after env (Step 2's DROP is Step 6's corrected one when solved
    # through Step 6 at once)
    typed = [s for s in STEP_IDS[1 : k + 1] if not (s == "firewall" and upto == "vip-curl")]
    ran = [line for line in said if line.startswith("$ ")]
    assert len(ran) == len(typed), said
    for step in typed:
        assert any(line.startswith(p) for p in expected[step] for line in ran), (step, said)
    # the rest, then the whole workshop
    rest = solve(environment(lab), BASIC, client, "vip-curl", out=said.append)
    assert rest.solved, (said, why(rest))
    assert {v.status for v in graded(lab, client).values()} == {PASS}


@pytest.mark.parametrize("variant", BROKEN)
def test_solve_repairs_a_broken_lab(variant, labs, vlanlb_podman):
    lab, client = labs[variant], vlanlb_podman.client()
    before = graded(lab, client)
    assert any(v.status is not PASS for v in before.values())
    said: list[str] = []
    outcome = solve(environment(lab), BASIC, client, "vip-curl", out=said.append)
    assert outcome.solved, (said, why(outcome))
    assert {v.status for v in graded(lab, client).values()} == {PASS}
    router = f"podman exec {lab.prefix}router"
    removed = {
        "as-written": f"$ {router} iptables -D FORWARD -i eth1 -o eth2 -j DROP",
        "vip-wrong-if": f"$ {router} ip addr del 192.168.10.100/32 dev eth2",
        "comment-dnat": f"$ {router} iptables -t nat -D PREROUTING -d 192.168.10.100/32",
    }
    if variant in removed:
        assert any(line.startswith(removed[variant]) for line in said), said
    # solved is solved: again, nothing to change
    again: list[str] = []
    assert solve(environment(lab), BASIC, client, "vip-curl", out=again.append).solved
    assert again == ["nothing to change: the lab is already the workshop's state up to vip-curl"]


def test_what_solve_cannot_fix_it_says(labs, vlanlb_podman):
    client = vlanlb_podman.client()
    no_iptables = labs["no-iptables"]
    said: list[str] = []
    outcome = solve(environment(no_iptables), BASIC, client, "dnat", out=said.append)
    assert not outcome.solved
    install = f"$ podman exec {no_iptables.prefix}router apk add --no-cache iptables"
    assert said[0] == install, said
    assert said[1].startswith("  failed (exit 127: "), said
    assert said[1].endswith("; stopped here"), said
    assert outcome.failed == install[2:]
    stopped = labs["b-stopped"]
    said = []
    outcome = solve(environment(stopped), BASIC, client, "vip", out=said.append)
    assert not outcome.solved
    assert not outcome.ran
    assert said[0].startswith(
        f"cannot fix env: container '{stopped.prefix}b' (b) is not running: create and start"
    ), said
    assert stopped.container("b").status == "exited"  # never started, removed or recreated


def vlanlb(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pytest_vlanlb", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LC_ALL": "C.UTF-8", **(env or {})},
        check=False,
    )


def names(lab) -> str:
    return ",".join(f"{role}={lab.prefix}{role}" for role in ("router", "a", "b"))


def test_a_student_at_step_2_catches_up_to_step_3(labs, vlanlb_podman):
    lab, url = labs["step-2"], vlanlb_podman.url
    router = f"podman exec {lab.prefix}router"
    before = lab.state()
    dry = vlanlb("--url", url, "solve", "--upto", "vip", "--dry-run", "--vlanlb-names", names(lab))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.splitlines() == [
        f"would run: {router} ip addr add 192.168.10.100/32 dev eth1"
    ]
    assert lab.state() == before  # a dry run changes nothing
    grading = LabLock(environment(lab))
    grading.take(exclusive=False)  # as a grading run on this machine does
    try:
        refused = vlanlb("--url", url, "solve", "--upto", "vip", "--vlanlb-names", names(lab))
    finally:
        grading.release()
    assert refused.returncode == 2
    assert refused.stderr.startswith("vlanlb: default: a grading run is judging these containers")
    assert lab.state() == before
    run = vlanlb("--url", url, "solve", "--upto", "vip", "--vlanlb-names", names(lab))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"$ {router} ip addr add 192.168.10.100/32 dev eth1"
    assert [line.split(":")[0] for line in lines[1:]] == [f"PASS {s}" for s in STEP_IDS[:4]]
    verdicts = graded(lab, vlanlb_podman.client())
    assert [verdicts[s].status for s in STEP_IDS[:4]] == [PASS] * 4
    assert verdicts["dnat"].status is FAIL


def test_check_for_lab_platforms(labs, vlanlb_podman, tmp_path):
    url, reason = vlanlb_podman.url, tmp_path / "reason"
    wrong = vlanlb(
        "--url",
        url,
        "check",
        "vip-curl",
        "--vlanlb-names",
        names(labs["check-wrong"]),
        env={"VERIFICATION_FAILURE_REASON": str(reason)},
    )
    assert wrong.returncode == 1, wrong.stderr
    [line] = wrong.stdout.splitlines()
    assert line.startswith("FAIL: ")
    assert "-m conntrack ! --ctstate DNAT -j DROP" in line  # the fix, named
    assert reason.read_text() == line.removeprefix("FAIL: ") + "\n"
    right = vlanlb("--url", url, "check", "vip-curl", "--vlanlb-names", names(labs["check-right"]))
    assert right.returncode == 0, right.stdout + right.stderr
    assert (
        right.stdout
        == "PASS vip-curl: Step 6: a gets exactly 'Hello from Pod B' from http://192.168.10.100\n"
    )
    ja = vlanlb(
        "--url",
        url,
        "check",
        "vip-curl",
        "--vlanlb-lang",
        "ja",
        "--vlanlb-names",
        names(labs["check-right"]),
    )
    assert ja.returncode == 0, ja.stdout + ja.stderr
    assert ja.stdout.startswith("PASS vip-curl: Step 6: "), ja.stdout
    unknown = vlanlb("check", "vip-curls")
    assert unknown.returncode == 2
    assert "invalid choice: 'vip-curls'" in unknown.stderr
