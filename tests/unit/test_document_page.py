"""The document run's page, from steps' data as `report.as_data` makes them: every step
with a word for its verdict, what the text promised and what was seen, the diagnosis, the
walk drawn inline; a stranger's text shown as text; both languages say the same things."""

from __future__ import annotations

import pytest

from pytest_vlanlb.document.page import CATALOGUES, check_folder, render, write
from pytest_vlanlb.errors import VlanlbError
from pytest_vlanlb.observation.words import placeholders

WALK = {
    "language": "en",
    "router": "router",
    "sent": ["curl http://192.168.10.100"],
    "stations": [
        {
            "hook": "PREROUTING",
            "facts": ["1 packet DNAT'ed by nat PREROUTING rule 1"],
            "stopped": "",
        },
        {"hook": "ROUTING", "facts": [], "stopped": ""},
        {
            "hook": "FORWARD",
            "facts": ["2 packets dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP`"],
            "stopped": "drop",
        },
    ],
    "end": "not-reached",
}


def command(**changes):
    base = {
        "line": 120,
        "command": "podman exec a curl http://192.168.10.100",
        "action": "run",
        "rewritten": [],
        "reason": "",
        "exit_status": 28,
        "timed_out": False,
        "stopped": "",
        "seconds": 1.2,
        "promises": [{"says": "Hello from Pod B", "held": False, "seen": "curl: (28) timeout"}],
        "allowed_by": None,
        "not_understood": [],
        "diagnosis": ["2 packets dropped by filter FORWARD rule 1 after DNAT"],
        "walks": [WALK],
        "failed": True,
    }
    return {**base, **changes}


STEPS = [
    {"nodeid": "k8s_lb_ja.md::step-1", "document": "k8s_lb_ja.md", "step": "step-1",
     "title": "Web server", "passed": True, "commands": [command(failed=False, walks=[],
     promises=[], diagnosis=[], exit_status=0)]},
    {"nodeid": "k8s_lb_ja.md::step-6", "document": "k8s_lb_ja.md", "step": "step-6",
     "title": "<script>alert(1)</script> curl", "passed": False, "commands": [command()]},
    {"nodeid": "vlan_ja.md::step-9", "document": "vlan_ja.md", "step": "step-9",
     "title": "apt", "passed": True,
     "commands": [command(action="skip", reason="needs the internet", failed=False)]},
]  # fmt: skip


def test_both_languages_say_the_same_things():
    assert CATALOGUES["en"].keys() == CATALOGUES["ja"].keys()
    for key, text in CATALOGUES["en"].items():
        assert placeholders(CATALOGUES["ja"][key]) == placeholders(text), key


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_step_its_verdict_promises_diagnosis_and_walk(language):
    page = render(STEPS, language)
    assert f'<html lang="{language}">' in page
    assert page.count('<section class="step"') == 3
    assert 'data-verdict="passed"' in page
    assert 'data-verdict="failed"' in page
    assert 'data-verdict="skipped"' in page
    assert page.count('<figure class="walk" data-student="k8s_lb_ja.md" data-step="step-6">') == 1
    assert "<svg" in page  # drawn by graphviz, inline
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page  # no script of ours, and none of the document's
    assert "needs the internet" in page
    assert "2 packets dropped by filter FORWARD rule 1 after DNAT" in page
    words = CATALOGUES[language]
    assert words["failed"] in page
    assert words["title"].format(passed=1, steps=3) in page


def test_the_folder_is_checked_before_anything_runs(tmp_path):
    in_the_way = tmp_path / "report"
    in_the_way.write_text("")
    with pytest.raises(VlanlbError, match="a file is in the way"):
        check_folder(in_the_way)
    folder = tmp_path / "made" / "here"
    check_folder(folder)
    assert folder.is_dir()
    assert list(folder.iterdir()) == []  # the write check leaves nothing
    assert write(folder, STEPS, "en") == folder / "index.html"


def test_a_walk_that_cannot_be_drawn_says_why_and_the_page_stays_whole(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no graphviz
    page = render(STEPS, "ja")
    assert "<figcaption>図は描けませんでした: missing: dot: install graphviz" in page
    assert page.count('<section class="step"') == 3
