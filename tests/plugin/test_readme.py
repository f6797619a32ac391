"""The READMEs (English and Japanese) name every option the plugin has, and no other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPTION = re.compile(r"--vlanlb-[a-z]+(?:-[a-z]+)*")


def named(path: Path) -> set[str]:
    return set(OPTION.findall(path.read_text(encoding="utf-8")))


def test_both_readmes_name_the_plugins_options(pytester):
    result = pytester.runpytest("--help")
    registered = set(OPTION.findall(result.stdout.str()))
    assert "--vlanlb-doc" in registered
    assert named(ROOT / "README.md") == registered
    assert named(ROOT / "README.ja.md") == registered
