"""Document mode configured from pytest's options: which documents, each command's time
limit, the sandbox's podman network backend. The plugin only registers what this returns."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..errors import VlanlbError
from ..observation.words import chosen_language
from ..util.options import on_command_line, option, outside_mode, progress_writer
from .items import DocumentMode, check_not_distributed, load_documents
from .page import check_folder


def documents(config: pytest.Config) -> list[str]:
    given = config.getoption("vlanlb_doc")
    if given:
        return list(given)
    return [str(p) for p in config.getini("vlanlb_doc")]


def configure(config: pytest.Config) -> DocumentMode:
    """The run's document session (a pytest plugin object). Document mode runs its own
    sandbox: it grades nothing, takes no podman URL and collects no test files; a document
    mode option without a document is a usage error."""
    paths = documents(config)
    if not paths:
        raise outside_mode(on_command_line(config, "doc"), "document mode", "--vlanlb-doc")
    if config.getoption("vlanlb_attach") or config.getoption("vlanlb_class"):
        raise VlanlbError("--vlanlb-doc builds its own lab: it cannot grade (--vlanlb-attach)")
    if option(config, "url"):
        raise VlanlbError(
            "--vlanlb-doc runs the documents' commands with this machine's podman: drop "
            "--vlanlb-url"
        )
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        raise VlanlbError(
            "--vlanlb-doc runs the documents' steps only: run test files in another pytest call"
        )
    check_not_distributed(config)
    seconds = timeout(config)
    report = config.getoption("vlanlb_report")
    if report:
        check_folder(Path(report))
    return DocumentMode(
        load_documents(paths),
        network_backend=option(config, "network_backend") or "auto",
        image=option(config, "image"),
        timeout=seconds,
        keep=bool(config.getoption("vlanlb_keep")),
        progress=progress_writer(config),
        report=Path(report) if report else None,
        language=language(config),
    )


def language(config: pytest.Config) -> str:
    return chosen_language(option(config, "lang"))


def timeout(config: pytest.Config) -> float:
    seconds = config.getoption("vlanlb_doc_timeout")
    if seconds is None:
        written = config.getini("vlanlb_doc_timeout")
        try:
            seconds = float(written)
        except ValueError:
            raise VlanlbError(
                f"ini vlanlb_doc_timeout = {written!r}: give a number of seconds"
            ) from None
    if seconds <= 0:
        raise VlanlbError(f"--vlanlb-doc-timeout {seconds:g}: give a positive number of seconds")
    return float(seconds)
