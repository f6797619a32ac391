"""Errors a user can act on. Each message says what is wrong and names the fix."""

from __future__ import annotations


class VlanlbError(Exception):
    """Base class: shown to the user as a short message, without a traceback."""


class TopologyError(VlanlbError):
    """A topology file is missing or malformed."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


class PreflightError(VlanlbError):
    """The machine cannot build the lab (not root, no podman, ...)."""


class LabBuildError(VlanlbError):
    """Building the lab failed; whatever was built has been removed again."""
