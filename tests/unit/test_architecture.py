"""The house as docs/architecture.md draws it: the folders it names are the package's, each
folder imports only what the page says it uses, the import contract holds, and no module or
class has grown past what a reader takes in."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pytest_vlanlb"
PAGE = ROOT / "docs" / "architecture.md"
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py", "plugin.py", "errors.py"}
ENTRY_POINTS = ("plugin.py", "cli.py", "__main__.py")


def folders_table() -> dict[str, set[str]]:
    """folder -> the folders its row says it uses (entry points are one row)."""
    text = PAGE.read_text(encoding="utf-8")
    table = text.split("## Folders, top to bottom", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        uses = cells[2]
        used = set() if uses in ("—", "errors only") else set(re.findall(r"[a-z]+", uses))
        if uses == "everything below":
            used = {"*"}
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name.rstrip("/").removesuffix(".py")] = used
    return rows


def folder_of(module: str) -> str:
    """pytest_vlanlb.lab.layers.stack -> lab; pytest_vlanlb.plugin -> plugin."""
    return module.split(".")[1] if module.count(".") else ""


def imports_between_folders() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(p for p in parts if p != "__init__")
        package = parts[:-1]
        here = folder_of(module) if len(parts) > 2 else parts[1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = list(package)[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "pytest_vlanlb"
            ):
                target = node.module or ""
            else:
                continue
            there = folder_of(target) if target.count(".") else ""
            if there and there != here:
                found.setdefault(here, set()).add(there)
    return found


def test_the_page_names_every_folder_and_top_level_module_and_nothing_else():
    named = set(folders_table())
    actual = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert named == actual | modules


def test_only_the_entry_points_errors_and_init_sit_at_the_top():
    assert {p.name for p in PACKAGE.glob("*.py")} == TOP_LEVEL


def test_each_folder_imports_only_what_the_page_says_it_uses():
    table = folders_table()
    for folder, targets in imports_between_folders().items():
        allowed = table.get(folder, set())
        if "*" in allowed:
            continue
        assert targets - {"errors"} <= allowed, (folder, sorted(targets - allowed))


def test_the_import_contract_holds():
    """import-linter's layers and forbidden contracts (pyproject.toml), as .ci/run runs them."""
    linter = Path(sys.executable).parent / "lint-imports"
    if not linter.exists():
        pytest.fail("lint-imports is missing: run scripts/setup (it installs the dev extras)")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_no_class_over_170_lines_and_a_plugin_module_of_450_at_most():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                assert (node.end_lineno or 0) - node.lineno < 170, (path, node.name)
    assert len((PACKAGE / "plugin.py").read_text().splitlines()) <= 450
