"""docs/reference.md against the code: it names every option, ini key, fixture, marker,
layer and `vlanlb` command, and nothing that does not exist; no page of the docs (nor either
README) names an option the plugin does not have; the Japanese pages' option tables are
whole."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
from pathlib import Path

import pytest

import pytest_vlanlb
from pytest_vlanlb import cli, plugin
from pytest_vlanlb.lab.layers import LAYERS
from pytest_vlanlb.util.options import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", ROOT / "README.ja.md", *sorted((ROOT / "docs").rglob("*.md"))]
OPTION = re.compile(r"--vlanlb-[a-z]+(?:-[a-z]+)*")


def table(heading: str) -> list[list[str]]:
    """The rows of the first table under `heading` (cells, stripped)."""
    text = REFERENCE.split(f"\n{heading}\n", 1)[1]
    rows = []
    for line in text.splitlines():
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))  # `a\|b` is one cell
            rows.append([c.strip() for c in cells])
    return rows[1:]  # without the header row


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_option_and_ini_key_and_nothing_else():
    rows = table("### The lab") + table("### Document mode ([documents](documents.md))")
    rows += table("### Grading ([grading](grading.md))")
    options = {OPTION.findall(r[0])[0] for r in rows}
    assert options == {f"--vlanlb-{o.name}" for o in OPTIONS}
    ini = {span for r in rows for span in code_spans(r[1])}
    assert ini == {o.dest for o in OPTIONS if o.ini} | {"vlanlb_doc"}


def test_every_fixture_and_nothing_else():
    fixtures = {name for name in vars(plugin) if name.startswith("vlanlb_")}
    assert {code_spans(r[0])[0] for r in table("## Fixtures")} == fixtures


def test_the_marker():
    assert [code_spans(r[0])[0].split("(")[0] for r in table("## Markers")] == ["vlanlb"]


def test_every_layer_and_nothing_else():
    assert {code_spans(r[0])[0] for r in table("## Layers")} == set(LAYERS)


def test_every_command_and_nothing_else():
    named = {code_spans(r[0])[0].split()[1] for r in table("## The `vlanlb` command")}
    assert named == {*cli.COMMANDS, "--version"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_names_an_option_that_does_not_exist(page):
    named = set(OPTION.findall(page.read_text(encoding="utf-8")))
    assert named <= {f"--vlanlb-{o.name}" for o in OPTIONS}


@pytest.mark.parametrize("page", ["documents.md", "grading.md"])
def test_the_japanese_pages_list_every_option(page):
    text = (ROOT / "docs" / "ja" / page).read_text(encoding="utf-8")
    assert set(OPTION.findall(text)) == {f"--vlanlb-{o.name}" for o in OPTIONS}


def _signature(function: object) -> str:
    """`name(a, b, *, c=1)` as the reference writes it: parameters without their types."""
    parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    shown = [p.replace(annotation=inspect.Parameter.empty) for p in parameters]
    return f"{function.__name__}{inspect.Signature(shown)}"  # type: ignore[attr-defined]


def test_every_public_name_and_nothing_else_with_its_signature():
    rows = table("## Probes")
    assert {code_spans(r[0])[0].split("(")[0] for r in rows} == set(pytest_vlanlb.__all__)
    for row in rows:
        named = code_spans(row[0])[0]
        public = getattr(pytest_vlanlb, named.split("(")[0])
        if inspect.isfunction(public):
            assert named == _signature(public)
        elif isinstance(public, type) and issubclass(public, enum.Enum):
            assert set(code_spans(row[1])) >= {m.name for m in public}
        else:  # a result: every field named
            assert set(code_spans(row[1])) >= {f".{f.name}" for f in dataclasses.fields(public)}
