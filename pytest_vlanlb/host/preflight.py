"""What this machine must have before any run: root, and the tools a lab needs."""

from __future__ import annotations

import os
import sys

from ..errors import PreflightError
from .setup import missing_tools


def preflight() -> None:
    if os.geteuid() != 0:
        raise PreflightError(
            "the lab needs root (rootful podman, host veth links): run pytest as root, "
            f"e.g. `sudo {sys.executable} -m pytest`"  # this very interpreter: its venv
        )
    if missing := missing_tools("ip", "nsenter"):
        raise PreflightError(missing)
