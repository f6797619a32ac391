"""Errors a user can act on. Each message says what is wrong and names the fix; each class
says what failed."""

from __future__ import annotations


class VlanlbError(Exception):
    """Base class: shown to the user as a short message, without a traceback."""


class FileError(VlanlbError):
    """A file the user wrote is missing or malformed: it names the file and the field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


class TopologyError(FileError):
    """A topology file is missing or malformed."""


class ClassFileError(FileError):
    """A class file (--vlanlb-class) is missing or malformed."""


class PreflightError(VlanlbError):
    """The machine cannot run what was asked (not root, no podman, a tool missing, ...)."""


class LabBuildError(VlanlbError):
    """Building the lab failed; whatever was built has been removed again."""


class LayerError(VlanlbError):
    """A layer could not be applied to the lab, or reverted from it (or the lab did not
    return to its base state after)."""


class TeardownError(VlanlbError):
    """Removing the lab failed; the message names the command that removes what is left."""


class CommandError(VlanlbError):
    """A command in a container or on the host failed, or did not find what the lab needs."""
