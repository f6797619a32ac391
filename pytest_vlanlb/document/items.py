"""pytest items for document mode: one item per step of each document, in the order given.

`pytest --vlanlb-doc vlan_ja.md --vlanlb-doc k8s_lb_ja.md` collects `vlan_ja.md::prerequisites`,
`vlan_ja.md::step-1` ... `k8s_lb_ja.md::step-6`, and then the cleanup sections, last document
first: a later document builds on an earlier one's (k8s_lb_ja.md needs vlan_ja.md's
containers), so an earlier document's cleanup is its teardown and runs at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from textwrap import indent
from typing import Any

import pytest

from ..errors import PreflightError, VlanlbError
from ..host.preflight import preflight
from ..observation.drawing import walks_drawn
from ..podman.api import api_version
from ..util.options import drawings_folder
from .mapping import document_nics
from .markdown import Document, Section, load_document
from .model import StepVerdict
from .page import write as write_page
from .report import as_data, describe, markdown_summary
from .runner import DocumentRun, is_runnable, typed_commands
from .store import document_image_store

STEP_PROPERTY = "vlanlb_document_step"


class StepFailure(Exception):
    def __init__(self, verdict: StepVerdict, text: str) -> None:
        super().__init__(text)
        self.verdict = verdict
        self.text = text


def load_documents(paths: list[str]) -> list[Document]:
    documents = []
    for given in paths:
        path = Path(given)
        if not path.is_file():
            raise VlanlbError(f"--vlanlb-doc {given}: no such file")
        document = load_document(path)
        if not any(is_runnable(s) for s in document.sections):
            raise VlanlbError(
                f"--vlanlb-doc {given}: no step to run (no ```bash block under a `##` heading)"
            )
        documents.append(document)
    return documents


class DocumentCollector(pytest.Collector):
    def __init__(self, *, document: Document, sections: list[Section], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.document = document
        self.sections = sections

    def collect(self) -> Iterable[pytest.Item]:
        for section in self.sections:
            yield DocumentStep.from_parent(self, name=section.id, section=section)


class DocumentStep(pytest.Item):
    def __init__(self, *, section: Section, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.section = section
        self.add_marker(pytest.mark.vlanlb)

    @property
    def document(self) -> Document:
        parent = self.parent
        assert isinstance(parent, DocumentCollector)
        return parent.document

    def runtest(self) -> None:
        session = self.config.pluginmanager.get_plugin(DocumentMode.PLUGIN_NAME)
        assert isinstance(session, DocumentMode)
        run = session.run()
        verdict = run.run_section(self.document, self.section)
        text = describe(verdict, run.timeout)
        session.verdicts[self.nodeid] = verdict
        data = as_data(verdict, session.language)
        session.pages.append({"nodeid": self.nodeid, **data})
        # JSON: junit writes str(value), and CI tools read JSON.
        self.user_properties.append((STEP_PROPERTY, json.dumps(data, ensure_ascii=False)))
        if verdict.passed:  # a failure's report is this text already
            self.add_report_section("call", "vlanlb document", text)
        if verdict.all_skipped:
            pytest.skip("; ".join(sorted({o.plan.reason for o in verdict.outcomes})))
        if not verdict.passed:
            walks = [walk for outcome in verdict.outcomes for walk in outcome.walks]
            if walks:
                folder = drawings_folder(self.config)
                drawn = walks_drawn(walks, folder, self.nodeid, session.language)
                text += "\n  where the packets went:\n" + indent(drawn, "    ")
            raise StepFailure(verdict, text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, StepFailure):
            return excinfo.value.text
        if isinstance(excinfo.value, VlanlbError):
            return f"pytest-vlanlb: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return str(self.document.path), self.section.line - 1, f"{self.section.title}"


def document_items(session: pytest.Session, documents: list[Document]) -> list[pytest.Item]:
    """Steps in document order; cleanup sections at the end, last document first."""
    names = [d.name for d in documents]
    labels = {id(d): (d.name if names.count(d.name) == 1 else str(d.path)) for d in documents}
    items: list[pytest.Item] = []
    cleanups: list[pytest.Item] = []
    for document in documents:
        runnable = [s for s in document.sections if is_runnable(s)]
        collector = DocumentCollector.from_parent(
            session,
            name=labels[id(document)],
            nodeid=labels[id(document)],
            document=document,
            sections=runnable,
        )
        for item in collector.collect():
            assert isinstance(item, DocumentStep)
            (cleanups if item.section.is_cleanup else items).append(item)
    ordered_cleanups = sorted(
        cleanups,
        key=lambda i: -documents.index(i.document),  # type: ignore[attr-defined]
    )
    return items + ordered_cleanups


class DocumentMode:
    """A plugin object: the session's document sandbox, made at the first step and removed at
    the end of the session (whatever the steps' own cleanup did), and the summary."""

    PLUGIN_NAME = "vlanlb-documents"

    def __init__(
        self,
        documents: list[Document],
        *,
        network_backend: str,
        image: str | None,
        timeout: float,
        keep: bool,
        progress: Callable[[str], None],
        report: Path | None = None,
        language: str = "en",
    ) -> None:
        self.documents = documents
        self.network_backend = network_backend
        self.image = image
        self.timeout = timeout
        self.keep = keep
        self.progress = progress
        self._run: DocumentRun | VlanlbError | None = None
        self.verdicts: dict[str, StepVerdict] = {}
        self.report = report  # the page's folder (--vlanlb-report), if asked for
        self.language = language
        self.pages: list[dict[str, Any]] = []  # each step's verdict as data, for the page
        self.page: Path | None = None

    def run(self) -> DocumentRun:
        if self._run is None:
            try:
                preflight()
                commands = [
                    t.command
                    for d in self.documents
                    for s in d.sections
                    if is_runnable(s)
                    for t in typed_commands(d, s)
                ]
                self._run = DocumentRun(
                    document_image_store(self.image, self.progress),
                    None if self.network_backend == "auto" else self.network_backend,
                    nics=document_nics(commands),
                    timeout=self.timeout,
                    keep=self.keep,
                    progress=self.progress,
                )
                sandbox = self._run.sandbox
                self.progress(
                    f"document sandbox {self._run.names.run_id}: podman "
                    f"{api_version(sandbox.api_url)}, NICs {', '.join(sandbox.nics)}, "
                    + ("802.1Q links" if self._run.context.dot1q else "8021q emulated by veth")
                    + f"; at most {sandbox.cgroups.describe()}"
                )
            except VlanlbError as exc:
                self._run = exc  # once: every step then fails with this line
        if isinstance(self._run, VlanlbError):
            raise self._run
        return self._run

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        if isinstance(self._run, DocumentRun):
            self._run.close()
        if self.report is not None and self.pages:
            self.page = write_page(self.report, self.pages, self.language)
        # GitHub Actions shows what a job appends to this file on its run's page.
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and self.verdicts:
            with open(summary, "a", encoding="utf-8") as out:
                out.write(markdown_summary(self.verdicts, self.timeout))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.verdicts:
            return
        terminalreporter.write_sep("-", "vlanlb documents")
        for nodeid, verdict in self.verdicts.items():
            mark = "PASS" if verdict.passed else "FAIL"
            if verdict.all_skipped:
                mark = "SKIP"
            terminalreporter.write_line(f"  {mark}  {nodeid:<32} {verdict.section.title}")
        if self.page is not None:
            terminalreporter.write_line(f"vlanlb: report written to {self.page}")


def check_not_distributed(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None):
        raise PreflightError(
            "--vlanlb-doc runs each document's steps in order in one sandbox: drop -n (xdist)"
        )
