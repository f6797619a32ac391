"""Grading student-like labs: verdicts, hints, reports, read-only, several at once."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_vlanlb.grading import STEP_IDS
from pytest_vlanlb.grading.messages import Speaker
from pytest_vlanlb.grading.results import ENV_PROPERTY, VERDICT_PROPERTY
from pytest_vlanlb.host.image import ImageRecipe
from pytest_vlanlb.host.naming import RunNames
from pytest_vlanlb.host.wires import vlanlb_links

from .conftest import build_student_lab, run_pytest
from .workshop import VARIANTS

#: For each variant, the steps that must fail and a phrase their hint must contain.
EXPECTED_FAILURES = {
    "complete": {},
    "as-written": {"vip-curl": "also drops the DNAT'ed packets"},
    "no-server": {
        "web-server": "nothing listens on b:80",
        "vip-curl": "which refused it: start Step 1's web server",
    },
    "vip-wrong-if": {"vip": "the VIP is on the wrong interface"},
    "no-dnat": {
        "dnat": "add Step 4's DNAT rule",
        "vip-curl": "nothing translates it: add Step 4's DNAT rule",
    },
    "no-firewall": {"firewall": "Step 2's DROP rule is missing"},
    "no-iptables": {
        "firewall": "first install iptables: podman exec st-no-iptables-router apk add",
        "dnat": "podman exec st-no-iptables-router apk add --no-cache iptables",
        "snat": "podman exec st-no-iptables-router apk add --no-cache iptables",
        "vip-curl": "nothing translates it",
    },
    # Hostile or broken environments (issue 9).
    "hostile-names": {
        # Quoted: `x;id` in double quotes, `$(id)` in single quotes (see the paste test).
        "firewall": """iptables -I FORWARD -i "x;id" -o '$(id)' -m conntrack""",
    },
    "endless-answer": {
        "web-server": "b's answer does not end",
        "vip-curl": "the request did not complete",
    },
    "b-stopped-no-drop": {
        "env": "create and start the missing containers",
        "web-server": "create and start the missing containers",
        "firewall": "cannot judge: b does not answer even the router",
        "vip-curl": "the request did not complete",
    },
    "hanging-curl": {
        "web-server": "cannot judge: `curl` in st-hanging-curl-router hangs instead of answering",
    },
    "comment-dnat": {
        "dnat": "the VIP traffic is translated, but not to 192.168.20.20:80",
        "vip-curl": "the request did not complete",
    },
    "many-rules": {},  # read whole: a bound is never a verdict
    "paused-b": {
        "env": "cannot judge: st-paused-b-b paused; resume it with `podman unpause st-paused-b-b`",
        "web-server": "podman unpause st-paused-b-b",
        # firewall passes: the DROP rule counted a's packets, whatever b's state.
        "vip-curl": "podman unpause st-paused-b-b",
    },
    "hanging-ping": {
        "firewall": "cannot judge: `ping` in st-hanging-ping-a sent no echo request",
        "vip": "cannot judge: `ping` in st-hanging-ping-a hangs instead of answering",
    },
}
#: The failures above that are "cannot judge": what was seen proves neither pass nor fail.
CANNOT_JUDGE = {
    ("hanging-ping", "firewall"),
    ("hanging-ping", "vip"),
    ("b-stopped-no-drop", "firewall"),
    ("hanging-curl", "web-server"),
    ("paused-b", "env"),
    ("paused-b", "web-server"),
    ("paused-b", "vip-curl"),
}


def grade(cwd, *args, timeout=600):
    """`pytest` in grading mode, in a subprocess."""
    return run_pytest(cwd, *args, timeout=timeout)


def grade_class(work, url, *args):
    """`work/class.yaml` graded two environments at a time (pytest-xdist), each
    environment's steps on one worker, reports in `work/reports`."""
    return grade(
        work,
        "-n",
        "2",
        "--dist",
        "loadscope",
        "--vlanlb-class",
        "class.yaml",
        f"--vlanlb-url={url}",
        "--vlanlb-report",
        "reports",
        *args,
    )


@dataclass(frozen=True)
class Graded:
    """One grading run of every student lab: its process, the labs' state before and after,
    the JSON reports by variant, and its working folder."""

    run: subprocess.CompletedProcess
    before: dict
    after: dict
    reports: dict
    work: Path
    url: str  # the podman API the labs are on


def evidence_line(step, prefix):
    """The evidence line that starts with `prefix` (evidence is looked up by what it says)."""
    found = [line for line in step["evidence"] if line.startswith(prefix)]
    assert len(found) == 1, (prefix, step["evidence"])
    return found[0]


@pytest.fixture(scope="module")
def graded(student_labs, vlanlb_podman, tmp_path_factory):
    """Grade every student lab in one run, two environments at a time (pytest-xdist)."""
    work = tmp_path_factory.mktemp("class")
    lines = ["environments:"]
    for variant, lab in student_labs.items():
        lines += [f"  - name: {variant}", f"    prefix: {lab.prefix}"]
    (work / "class.yaml").write_text("\n".join(lines) + "\n")
    before = {variant: lab.state() for variant, lab in student_labs.items()}
    run = grade_class(work, vlanlb_podman.url, "--junitxml", "junit.xml")
    after = {variant: lab.state() for variant, lab in student_labs.items()}
    reports = {p.stem: json.loads(p.read_text()) for p in (work / "reports").glob("*.json")}
    return Graded(run, before, after, reports, work, vlanlb_podman.url)


def test_grading_changes_nothing(graded):
    for variant, state in graded.before.items():
        assert graded.after[variant] == state, variant


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_verdicts_and_hints(graded, variant):
    assert variant in graded.reports, graded.run.stdout[-3000:]
    report = graded.reports[variant]
    assert [s["id"] for s in report["steps"]] == list(STEP_IDS)
    failures = EXPECTED_FAILURES[variant]
    for step in report["steps"]:
        context = json.dumps(step, indent=1)
        assert step["evidence"], context
        if step["id"] in failures:
            judged = "cannot-judge" if (variant, step["id"]) in CANNOT_JUDGE else "fail"
            assert step["status"] == judged, context
            assert failures[step["id"]] in step["hint"], context
        else:
            assert step["status"] == "pass", context
    assert report["score"] == len(STEP_IDS) - len(failures)
    assert report["max"] == len(STEP_IDS)
    assert report["environment"]["names"]["router"] == f"st-{variant}-router"


def test_steps_sharing_a_probe_saw_the_same_request(graded):
    """dnat, snat and vip-curl judge one request of a's (made once per environment)."""
    for variant, report in graded.reports.items():
        if variant == "no-iptables":
            continue  # dnat is judged from rules there, and there are none to read
        steps = {s["id"]: s for s in report["steps"]}
        # The same request, hence the same counter movement, in both verdicts.
        seen = evidence_line(steps["dnat"], "router: ")
        assert seen == evidence_line(steps["vip-curl"], "router: "), variant


def test_step2s_probes_stop_on_the_routers_drop_count(graded):
    """A blocked a -> b is settled on evidence (the student's DROP counted both probes), as
    the lab's negative probes are: busybox ping stopped with INT, busybox wget (which the
    grader's wrapper runs in the background, where INT is ignored) with TERM. Without the
    stop, each would be reported as silence after its whole window instead."""
    step = next(s for s in graded.reports["complete"]["steps"] if s["id"] == "firewall")
    assert step["status"] == "pass", step
    rule = "filter FORWARD rule 1 `-i eth1 -o eth2 -m conntrack ! --ctstate DNAT -j DROP`"
    for probe in ("from a: ping ", "from a: GET "):
        line = evidence_line(step, probe)
        assert "stopped on evidence" in line, line
        assert rule in line, line


def test_missing_curl_is_reported_with_the_workshops_apk_line(graded):
    step = next(s for s in graded.reports["complete"]["steps"] if s["id"] == "vip-curl")
    assert step["status"] == "pass"  # judged with busybox wget
    assert (
        "curl is not installed on a: podman exec st-complete-a apk add --no-cache curl"
        in (step["hint"])
    )


def test_terminal_table_exit_code_and_junit(graded):
    run, work = graded.run, graded.work
    assert run.returncode == 1, run.stdout[-3000:]  # some steps fail
    assert "vlanlb grade: complete (7/7)" in run.stdout
    assert "vlanlb grade: as-written (6/7)" in run.stdout
    assert "INTERNALERROR" not in run.stdout + run.stderr
    junit = (work / "junit.xml").read_text()
    for variant in VARIANTS:
        for step in STEP_IDS:
            assert f'grade-{variant}" name="{step}"' in junit  # classname, test name
    # Each verdict as JSON a CI tool can read (pytest writes str(value): no Python reprs).
    for case in ET.fromstring(junit).iter("testcase"):
        values = {p.get("name"): p.get("value") for p in case.iter("property")}
        verdict = json.loads(values[VERDICT_PROPERTY])
        assert verdict["id"] == case.get("name")
        environment = case.get("classname").rpartition("grade-")[2]  # ".grade-NAME"
        assert json.loads(values[ENV_PROPERTY])["name"] == environment


def test_missing_containers_fail_every_step_without_crashing(vlanlb_podman, tmp_path):
    run = grade(
        tmp_path,
        "--vlanlb-attach",
        "--vlanlb-names",
        "router=nope-r,a=nope-a,b=nope-b",
        f"--vlanlb-url={vlanlb_podman.url}",
        "--vlanlb-report",
        "r.json",
        timeout=120,
    )
    assert run.returncode == 1, run.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["score"] == 0
    for step in report["steps"]:
        assert "container 'nope-r' (router) does not exist" in step["evidence"], step
        assert "--vlanlb-names" in step["hint"]


def service_processes():
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if "podman system service" in line]


def test_grading_starts_and_stops_its_own_service_when_none_runs(student_labs, tmp_path):
    """A student built the lab with the CLI and no API service runs: grading still works."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}  # no CONTAINER_HOST
    default = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pytest_vlanlb.podman.api import answers, DEFAULT_SOCKETS;"
            "print(any(answers(s) for s in DEFAULT_SOCKETS))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert default.stdout.strip() == "False", "a default podman socket answers: not this path"
    before = service_processes()
    lab = student_labs["complete"]
    names = ",".join(f"{role}={lab.prefix}{role}" for role in ("router", "a", "b"))
    run = run_pytest(
        tmp_path,
        "--vlanlb-attach",
        "--vlanlb-names",
        names,
        "--vlanlb-report",
        "r.json",
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "vlanlb grade: default (7/7)" in run.stdout
    assert "started for this run at unix://" in run.stdout  # our own service, not a running one
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 7
    assert service_processes() == before  # and it is gone again


def test_a_student_lab_that_fails_half_built_leaves_nothing(vlanlb_podman, alpine_like_image):
    """The build fails after wires, networks and containers exist: all of it goes."""
    client = vlanlb_podman.client()
    names = RunNames.new()
    with pytest.raises(KeyError, match="no-such-variant"):
        build_student_lab(
            client,
            "st-broken-",
            ImageRecipe().tag,
            alpine_like_image,
            alpine_like_image,
            "no-such-variant",
            names,
        )
    label = {"label": f"io.vlanlb.run={names.run_id}"}
    assert client.containers.list(all=True, filters=label) == []
    assert client.networks.list(filters=label) == []
    assert [link for link, alias in vlanlb_links() if alias.run_id == names.run_id] == []


def processes(lab, role):
    """Command lines of every process in a student's container (no ps needed)."""
    listing = lab.type(role, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; true")
    return listing


def test_a_hanging_tool_costs_seconds_and_leaves_nothing_running(student_labs, tmp_path):
    lab = student_labs["hanging-curl"]
    names = ",".join(f"{role}={lab.prefix}{role}" for role in ("router", "a", "b"))
    # Unbounded, `sleep 100000` would outlast the run's 120 s: the bound is what ends it.
    run = run_pytest(tmp_path, "--vlanlb-attach", "--vlanlb-names", names, timeout=120)
    assert "vlanlb grade: default (6/7)" in run.stdout, run.stdout[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert "did not finish within 4s and was killed" in run.stdout
    assert "sleep 100000" not in processes(lab, "router")  # killed, not left running


def test_an_endless_answer_is_cut_off_in_seconds(student_labs, tmp_path):
    lab = student_labs["endless-answer"]
    names = ",".join(f"{role}={lab.prefix}{role}" for role in ("router", "a", "b"))
    # An answer without end would outlast the run's 120 s: the output bound is what ends it.
    run = run_pytest(tmp_path, "--vlanlb-attach", "--vlanlb-names", names, timeout=120)
    assert "vlanlb grade: default (5/7)" in run.stdout, run.stdout[-3000:]


def test_a_checkpoint_grades_up_to_its_step_and_no_further(student_labs, tmp_path):
    """Mid-workshop: `--vlanlb-upto vip` on a lab whose later steps are not done yet (no
    DNAT, no SNAT): those steps are "not yet", run no probe, and the score counts the first
    four only; the run passes."""
    lab = student_labs["no-dnat"]
    names = ",".join(f"{role}={lab.prefix}{role}" for role in ("router", "a", "b"))
    run = run_pytest(
        tmp_path,
        "--vlanlb-attach",
        "--vlanlb-names",
        names,
        "--vlanlb-upto",
        "vip",
        "--vlanlb-report",
        "r.json",
        "-rs",
    )
    assert run.returncode == 0, run.stdout[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["pass"] * 4 + ["not-yet"] * 3
    assert (report["score"], report["max"], report["steps_graded"]) == (4, 4, 4)
    assert report["environment"]["upto"] == "vip"
    assert "vlanlb grade: default (4/4, up to vip)" in run.stdout
    assert "not yet: graded up to vip" in run.stdout  # pytest's skip reason, with -rs


def test_names_are_literal_not_patterns(student_labs, tmp_path):
    lab = student_labs["complete"]
    names = f"router={lab.prefix}router,a=.*,b={lab.prefix}b"
    run = run_pytest(
        tmp_path, "--vlanlb-attach", "--vlanlb-names", names, "--vlanlb-report", "r.json"
    )
    report = json.loads((tmp_path / "r.json").read_text())
    env = next(s for s in report["steps"] if s["id"] == "env")
    assert "container '.*' (a) does not exist" in env["evidence"], env
    assert run.returncode == 1


def test_a_report_path_that_cannot_be_written_is_refused_before_grading(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "folder").mkdir()
    for target, problem in (
        ("file/r.json", "is a file, not a folder"),
        ("folder", "is a folder; name a file such as grade.json"),
    ):
        run = run_pytest(tmp_path, "--vlanlb-attach", "--vlanlb-report", target, timeout=60)
        assert run.returncode == 4, run.stdout + run.stderr
        assert problem in run.stderr, run.stderr


def test_no_api_puts_the_reason_in_the_report(tmp_path):
    url = f"unix://{tmp_path}/no.sock"
    run = run_pytest(
        tmp_path, "--vlanlb-attach", f"--vlanlb-url={url}", "--vlanlb-report", "r.json"
    )
    assert run.returncode == 1
    report = json.loads((tmp_path / "r.json").read_text())
    for step in report["steps"]:
        assert any(f"no podman API answers at {url}" in e for e in step["evidence"]), step
        assert step["evidence"] != ["not graded"]


def test_a_hint_with_hostile_names_runs_nothing_when_pasted(graded, tmp_path):
    step = next(s for s in graded.reports["hostile-names"]["steps"] if s["id"] == "firewall")
    command = step["hint"].split("spares DNAT'ed traffic: ", 1)[1]
    script = f"podman() {{ printf '%s\\n' \"$@\"; }}\n{command}\n"
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "uid=" not in " ".join(out)  # `id` never ran
    assert out[out.index("-i") + 1] == "x;id"
    assert out[out.index("-o") + 1] == "$(id)"


def test_the_class_page_shows_what_the_json_says(graded, tmp_path):
    """index.html rendered by a real browser (headless Chromium): every matrix cell shows its
    student's verdict as a word and a colour, and each step's pass count adds up; class.csv
    and the terminal's matrix say the same."""
    from .browser import read_matrix

    shown, _ = read_matrix(graded.work / "reports" / "index.html", tmp_path)
    assert shown["lang"] == "en"
    assert_matrix(shown, graded.reports, Speaker("en"))
    rows = list(csv.reader((graded.work / "reports" / "class.csv").open(encoding="utf-8-sig")))
    for row in rows[1:]:
        report = graded.reports[row[0]]
        assert row[1:8] == [s["status"] for s in report["steps"]], row
        assert row[8] == str(report["score"])
    assert f"vlanlb class: {len(VARIANTS)} labs" in graded.run.stdout


def assert_matrix(shown, reports, say):
    """The browser's reading of the matrix against the JSON reports, in `say`'s words."""
    from pytest_vlanlb.grading.html import CELLS

    assert set(shown["rows"]) == set(reports)
    for variant, report in reports.items():
        cells = shown["rows"][variant]
        assert [c["step"] for c in cells] == list(STEP_IDS)
        for cell, step in zip(cells, report["steps"], strict=True):
            background, color = CELLS[step["status"]]
            assert cell["text"] == say.status(step["status"]), (variant, cell, step["status"])
            assert cell["background"] == _rgb(background), (variant, cell)
            assert cell["color"] == _rgb(color), (variant, cell)
    for index, (step, count) in enumerate(shown["passed"]):
        statuses = [r["steps"][index]["status"] for r in reports.values()]
        assert (step, count) == (STEP_IDS[index], f"{statuses.count('pass')}/{len(statuses)}")


def test_a_class_graded_in_japanese_says_the_same_in_japanese(graded, tmp_path):
    """The same class with --vlanlb-lang ja: the same verdicts as the English run, every
    title, evidence line and hint in Japanese (the commands as they are), and a page the
    browser shows in Japanese."""
    from .browser import read_matrix

    work = tmp_path / "ja"
    work.mkdir()
    (work / "class.yaml").write_text((graded.work / "class.yaml").read_text())
    run = grade_class(work, graded.url, "--vlanlb-lang", "ja")
    reports = {p.stem: json.loads(p.read_text()) for p in (work / "reports").glob("*.json")}
    assert set(reports) == set(graded.reports), run.stdout[-3000:]
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    for variant, report in reports.items():
        english = graded.reports[variant]
        assert [s["status"] for s in report["steps"]] == [s["status"] for s in english["steps"]], (
            variant
        )
        for step in report["steps"]:
            assert japanese.search(step["title"]), step
            for line in step["evidence"]:
                assert japanese.search(line) or line.startswith(("rule: ", "ルール: ")), line
            if step["hint"] and not step["hint"].startswith("podman exec"):
                assert japanese.search(step["hint"]), step
    # The workshop's own commands stay as they are, inside the Japanese hint.
    as_written = {s["id"]: s for s in reports["as-written"]["steps"]}["vip-curl"]["hint"]
    assert "Step 2 の FORWARD の DROP ルール" in as_written
    assert "-m conntrack ! --ctstate DNAT -j DROP" in as_written
    shown, _ = read_matrix(work / "reports" / "index.html", tmp_path)
    assert shown["lang"] == "ja"
    assert_matrix(shown, reports, Speaker("ja"))
    assert "vlanlb クラス: " in run.stdout


def _rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def test_the_literal_drop_students_walk_is_on_the_class_page(graded, tmp_path):
    """The as-written student (Step 2's literal DROP): vip-curl's walk, in the JSON and drawn
    on the class page as the browser shows it: DNAT in PREROUTING, then FORWARD rule 1
    marked as the drop, b not reached. The complete lab's vip-curl passed: no walk."""
    from .browser import read_walks

    steps = {s["id"]: s for s in graded.reports["as-written"]["steps"]}
    walk = steps["vip-curl"]["walk"]
    assert [s["hook"] for s in walk["stations"] if s["facts"]] == ["PREROUTING", "FORWARD"]
    assert walk["end"] == "not-reached"
    complete = {s["id"]: s for s in graded.reports["complete"]["steps"]}
    assert complete["vip-curl"]["walk"] is None
    assert complete["firewall"]["walk"] is None
    drawn = read_walks(graded.work / "reports" / "index.html", tmp_path)
    shown = next(w for w in drawn if (w["student"], w["step"]) == ("as-written", "vip-curl"))
    texts = shown["texts"]
    hooks = [
        next(i for i, t in enumerate(texts) if t.startswith(h)) for h in ("PREROUTING", "FORWARD")
    ]
    assert hooks == sorted(hooks), texts
    forward = texts[hooks[1] :]
    assert forward[1] == "✗ DROPPED HERE", texts
    assert "dropped by filter FORWARD rule 1" in " ".join(forward), texts
    assert "-i eth1 -o eth2 -j DROP" in " ".join(forward), texts
    assert texts[-1] == "(not reached)", texts
    assert not any(w["student"] == "complete" for w in drawn)
