"""Graphviz's `dot`, which draws the pictures (Debian's graphviz package; `vlanlb setup`
installs it)."""

from __future__ import annotations

import shutil
import subprocess

from ..errors import PreflightError
from .setup import missing_tools


def render_svg(dot: str) -> str:
    """DOT text drawn as a self-contained SVG (no fonts or images fetched)."""
    if shutil.which("dot") is None:
        raise PreflightError(missing_tools("dot"))
    drawn = subprocess.run(
        ["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=False, timeout=60
    )
    if drawn.returncode != 0:
        raise PreflightError(f"graphviz's dot could not draw the picture: {drawn.stderr.strip()}")
    return drawn.stdout
