"""The class report without podman: checkpoints, weights, the matrix, class.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pytest_vlanlb.errors import ClassFileError
from pytest_vlanlb.grading import STEP_IDS, GradeReport, load_class, writers
from pytest_vlanlb.grading.verdict import CANNOT_JUDGE, FAIL, NOT_YET, PASS, Verdict
from pytest_vlanlb.model.topology import load_topology

BASIC = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "basic.yaml")
CLASS = """weights: {vip-curl: 3, env: 0.5}
environments:
  - name: alice
    prefix: alice-
  - name: bob
    prefix: bob-
    upto: vip
"""


def report_for(tmp_path: Path, statuses: dict[str, dict[str, str]]) -> GradeReport:
    path = tmp_path / "class.yaml"
    path.write_text(CLASS)
    environments = load_class(path, None, STEP_IDS)
    report = GradeReport(environments, BASIC, str(tmp_path / "reports"), several=True)
    for name, steps in statuses.items():
        for step, status in steps.items():
            report.results.set(name, Verdict(step, step, status, ["seen"]).as_dict())
    return report


def test_checkpoints_and_weights_change_the_score_as_documented(tmp_path):
    alice = dict.fromkeys(STEP_IDS, PASS) | {"firewall": FAIL, "dnat": CANNOT_JUDGE}
    bob = {"env": PASS, "web-server": PASS, "firewall": PASS, "vip": FAIL}
    bob |= dict.fromkeys(("dnat", "snat", "vip-curl"), NOT_YET)
    report = report_for(tmp_path, {"alice": alice, "bob": bob})
    a = report.results.record("alice").as_dict()
    # Weights: env 0.5, vip-curl 3, the others 1 -> max 0.5 + 5 + 3; failed firewall and
    # cannot-judge dnat count nothing.
    assert (a["score"], a["max"], a["steps_passed"], a["steps_graded"]) == (6.5, 8.5, 5, 7)
    b = report.results.record("bob").as_dict()
    # Up to vip: dnat, snat, vip-curl are "not yet" and not in max.
    assert (b["score"], b["max"], b["steps_passed"], b["steps_graded"]) == (2.5, 3.5, 3, 4)
    assert report.results.score_text("bob") == "3/4 steps, 2.5/3.5 points, up to vip"
    matrix = writers.matrix(report.results)
    assert matrix[1].split()[:8] == [
        "alice",
        "PASS",
        "PASS",
        "FAIL",
        "PASS",
        "????",
        "PASS",
        "PASS",
    ]
    assert matrix[2].split()[:8] == ["bob", "PASS", "PASS", "PASS", "FAIL", "----", "----", "----"]
    # Per step: passes over the labs graded on it (bob is not yet at dnat).
    assert matrix[3].split() == ["passed", "2/2", "2/2", "1/2", "1/2", "0/1", "1/1", "1/1"]


def test_class_csv_has_a_row_per_student_and_a_column_per_step(tmp_path):
    report = report_for(tmp_path, {"alice": dict.fromkeys(STEP_IDS, PASS), "bob": {}})
    written = writers.write(report.results, tmp_path / "reports", True, "basic")
    rows = list(csv.reader((tmp_path / "reports" / "class.csv").open(encoding="utf-8-sig")))
    assert tmp_path / "reports" / "class.csv" in written
    assert rows[0] == ["name", *STEP_IDS, "score", "max", "steps_passed", "steps_graded"]
    assert rows[1] == ["alice", *[PASS] * 7, "8.5", "8.5", "7", "7"]
    # bob: graded up to vip, and no verdict came back for those steps (cannot judge).
    assert rows[2][1:5] == [CANNOT_JUDGE] * 4


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("environments:\n  - name: a\n    upto: step-3\n", "environments[0].upto"),
        ("weights: {vip-curll: 2}\nenvironments:\n  - name: a\n", "weights.vip-curll"),
        ("weights: {vip-curl: -1}\nenvironments:\n  - name: a\n", "weights.vip-curl"),
        ("weights: [1]\nenvironments:\n  - name: a\n", "weights"),
    ],
)
def test_a_bad_checkpoint_or_weight_names_the_field(tmp_path, text, field):
    path = tmp_path / "class.yaml"
    path.write_text(text)
    with pytest.raises(ClassFileError) as caught:
        load_class(path, None, STEP_IDS)
    assert caught.value.field == field


def test_the_command_line_checkpoint_applies_where_the_class_file_has_none(tmp_path):
    path = tmp_path / "class.yaml"
    path.write_text(CLASS)
    alice, bob = load_class(path, None, STEP_IDS, upto="firewall")
    assert (alice.upto, bob.upto) == ("firewall", "vip")
    assert alice.graded("firewall", STEP_IDS)
    assert not alice.graded("vip", STEP_IDS)
