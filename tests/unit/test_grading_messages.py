"""The grader's two catalogues: the same keys, the same placeholders, Japanese where the
Japanese one speaks, and the probes and counters said in each language."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pytest_vlanlb.grading import STEP_IDS, GradeReport, load_class, writers
from pytest_vlanlb.grading.messages import EN, JA, Speaker
from pytest_vlanlb.grading.steps import titles
from pytest_vlanlb.grading.verdict import FAIL, NOT_YET, PASS, Verdict
from pytest_vlanlb.model.topology import load_topology
from pytest_vlanlb.observation import words
from pytest_vlanlb.observation.counters import diff, parse_counters
from pytest_vlanlb.observation.probes import HttpOutcome, HttpResult, PingResult
from pytest_vlanlb.observation.words import default_language, placeholders

BASIC = load_topology(Path(__file__).resolve().parents[2] / "topologies" / "basic.yaml")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
#: Keys whose Japanese is the same as the English (numbers, or words kept as they are).
SAME_IN_BOTH = {"label.steps", "ping.replies", "ping.ttl", "page.podman", "moves.join"}


@pytest.mark.parametrize(("en", "ja"), [(EN, JA), (words.EN, words.JA)])
def test_both_catalogues_have_the_same_keys_and_placeholders(en, ja):
    assert en.keys() == ja.keys()
    for key in en:
        assert placeholders(en[key]) == placeholders(ja[key]), key


@pytest.mark.parametrize("ja", [JA, words.JA])
def test_the_japanese_catalogue_speaks_japanese(ja):
    english_left = [k for k, v in ja.items() if not JAPANESE.search(v) and k not in SAME_IN_BOTH]
    assert english_left == []


def test_every_step_has_a_title_in_both_languages():
    for language in ("en", "ja"):
        named = titles(BASIC, Speaker(language))
        assert list(named) == list(STEP_IDS)
    assert titles(BASIC, Speaker("ja"))["vip-curl"] == (
        "Step 6: a が http://192.168.10.100 から 'Hello from Pod B' をそのまま受け取る"
    )


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LC_ALL": "ja_JP.UTF-8", "LANG": "C.UTF-8"}, "ja"),
        ({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),  # LC_ALL wins
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_the_default_language_follows_the_locale(environ, language):
    assert default_language(environ) == language


def test_probes_and_counters_are_said_in_each_language():
    ping = PingResult("192.168.20.20", 1, 0, (), "")
    http = HttpResult("http://192.168.10.100", HttpOutcome.TIMEOUT, "", "no answer", 1.0)
    old = parse_counters("*filter\n:FORWARD ACCEPT [0:0]\n[0:0] -A FORWARD -j DROP\nCOMMIT\n")
    new = parse_counters("*filter\n:FORWARD ACCEPT [0:0]\n[2:120] -A FORWARD -j DROP\nCOMMIT\n")
    moves = diff(old, new)
    en, ja = Speaker("en"), Speaker("ja")
    # English is what the probes and counters say themselves.
    assert en.ping(ping) == str(ping)
    assert en.http(http) == str(http)
    assert en.moves(moves) == "2 packets dropped by filter FORWARD rule 1 `-j DROP`"
    assert ja.ping(ping) == "ping 192.168.20.20: 応答 0/1"
    assert ja.http(http) == "GET http://192.168.10.100: 1.00 秒でタイムアウト（no answer）"
    assert ja.moves(moves) == "2 パケットが filter FORWARD のルール 1 `-j DROP` で破棄された"


def test_a_report_in_japanese(tmp_path):
    path = tmp_path / "class.yaml"
    path.write_text("environments:\n  - name: alice\n    prefix: alice-\n    upto: vip\n")
    report = GradeReport(
        load_class(path, None, STEP_IDS), BASIC, str(tmp_path / "r"), several=True, language="ja"
    )
    for step, status in zip(STEP_IDS, [PASS, PASS, FAIL, PASS, *[NOT_YET] * 3], strict=True):
        report.results.set("alice", Verdict(step, "t", status, ["x"], "h").as_dict())
    assert report.results.score_text("alice") == "3/4、vip まで"
    writers.write(report.results, tmp_path / "r", True, "basic")
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="ja">' in page
    assert "クラスの多くが合格しなかったステップ" in page
    assert ">不合格</a>" in page
    assert ">未到達</a>" in page


def _keys_said(source: str) -> list[tuple[int, str, bool]]:
    """Each catalogue key the grader's code says: (line, key or its f-string prefix, whether
    it goes through `.words`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        through_words = isinstance(func, ast.Attribute) and func.attr == "words"
        if name not in ("say", "words") or (name == "words" and not through_words):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((node.lineno, first.value, through_words))
        elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
            found.append((node.lineno, f"{first.values[0].value}*", through_words))
    return found


def test_every_key_the_grader_says_is_in_the_catalogue_it_says_it_from():
    """`lab.say(key)` reads the grader's catalogue, `lab.say.words(key)` the observations':
    a key from the other one is a KeyError only the path that says it finds (a CI guest
    found `http.unreachable` that way)."""
    package = Path(__file__).resolve().parents[2] / "pytest_vlanlb" / "grading"
    checked = 0
    for path in sorted(package.glob("*.py")):
        for line, key, through_words in _keys_said(path.read_text()):
            catalogue = words.EN if through_words else EN
            if key.endswith("*"):
                ok = any(k.startswith(key[:-1]) for k in catalogue)
            else:
                ok = key in catalogue
            assert ok, f"{path.name}:{line}: {key!r} is not in that catalogue"
            checked += 1
    assert checked > 50  # the scan sees the grader's calls
