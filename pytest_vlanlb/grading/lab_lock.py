"""One student's lab is either graded or solved, never both at once: grading holds a shared
lock on the lab (every xdist worker its own), `vlanlb solve` an exclusive one. The lock is a
file in this machine's temporary folder named after the machine the containers are on (this
one, or the ssh destination) and their names: it covers the runs on this machine (a student's
own solve on another machine that reaches the same podman is not seen; docs/grading.md says
so)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .environments import Environment


def machine(url: str | None) -> str:
    """Which machine's containers a URL reaches: this one for any local socket (the same
    containers whichever API serves them), else the ssh destination."""
    if not url or url.startswith("unix:"):
        return "local"
    return urlsplit(url).netloc


def lock_path(environment: Environment) -> Path:
    key = json.dumps([machine(environment.url), sorted(environment.names.items())])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"vlanlb-lab-{digest}.lock"


class LabLock:
    """A lock on one environment, taken without waiting (it says whether it got it)."""

    def __init__(self, environment: Environment) -> None:
        self.path = lock_path(environment)
        self._fd: int | None = None

    def _open(self) -> int:
        # Another user's existing file in a sticky /tmp cannot be opened with O_CREAT
        # (fs.protected_regular): read it as it is, create it only when it is missing.
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                return os.open(
                    self.path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
                )
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def take(self, *, exclusive: bool) -> bool:
        if self._fd is None:
            self._fd = self._open()
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None
