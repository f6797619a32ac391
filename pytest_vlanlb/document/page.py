"""A document run as one self-contained page (`--vlanlb-doc … --vlanlb-report DIR`:
`DIR/index.html`): every step with its verdict, each command with what the text promised and
what was seen, the diagnosis, and the walk of each failed probe drawn inline (graphviz's SVG).
No network, no external CSS or script; each verdict a word and a colour, so that it reads in
black and white. The page's own words are English or Japanese (`--vlanlb-lang`); what the
document and the tools said is quoted as it was, and the diagnosis is English."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import VlanlbError
from ..host.graphviz import render_svg
from ..observation.drawing import said_walk_dot
from ..observation.words import Catalogued

EN = {
    "title": "vlanlb documents: {passed} of {steps} steps did what their text says",
    "step": "step",
    "heading": "title",
    "verdict": "verdict",
    "passed": "passed",
    "failed": "FAILED",
    "skipped": "skipped",
    "line": "line {line}",
    "not_run": "not run: {reason}",
    "skipped_because": "skipped: {reason}",
    "rewritten": "rewritten: {note}",
    "status": "exit status {status}",
    "timed_out": "still running at the time limit",
    "stopped": "stopped: {why}",
    "says": "the document says {words!r}",
    "held": "held",
    "broken": "did not hold",
    "seen": "seen: {seen}",
    "allowed": "its failure is allowed: the document says {words!r}",
    "diagnosis": "diagnosis",
    "walks": "where the packets went",
    "not_drawn": "not drawn: {why}",
}
JA = {
    "title": "vlanlb 文書: {steps} ステップ中 {passed} ステップが本文どおりに動いた",
    "step": "ステップ",
    "heading": "タイトル",
    "verdict": "判定",
    "passed": "本文どおり",
    "failed": "本文と違う",
    "skipped": "スキップ",
    "line": "{line} 行目",
    "not_run": "実行せず: {reason}",
    "skipped_because": "スキップ: {reason}",
    "rewritten": "書き換え: {note}",
    "status": "終了コード {status}",
    "timed_out": "制限時間の時点でまだ実行中",
    "stopped": "停止: {why}",
    "says": "文書の記述 {words!r}",
    "held": "成り立った",
    "broken": "成り立たなかった",
    "seen": "観測: {seen}",
    "allowed": "失敗は許容されています: 文書の記述 {words!r}",
    "diagnosis": "診断",
    "walks": "パケットの行方",
    "not_drawn": "図は描けませんでした: {why}",
}


CATALOGUES = {"en": EN, "ja": JA}


class PageWords(Catalogued):
    catalogues = CATALOGUES


#: Each verdict's colours (background, text); its word says it without colour.
CELLS = {"passed": ("#1a7f37", "#ffffff"), "failed": ("#cf222e", "#ffffff"),
         "skipped": ("#d0d7de", "#000000")}  # fmt: skip
_STYLE = """
body { margin: 1.5em; color: #1f2328;
       font-family: system-ui, 'Noto Sans CJK JP', 'Hiragino Sans', 'Yu Gothic', IPAGothic,
       sans-serif; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #8c959f; padding: 0.3em 0.6em; text-align: left; }
td.verdict { font-weight: bold; white-space: nowrap; }
section.step { border-top: 2px solid #8c959f; margin-top: 1.5em; }
code, pre { background: #f6f8fa; }
pre { padding: 0.5em; white-space: pre-wrap; }
""" + "".join(f"td.{v} {{ background: {bg}; color: {fg}; }}\n" for v, (bg, fg) in CELLS.items())


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def verdict_of(step: Mapping[str, Any]) -> str:
    if step["commands"] and all(c["action"] == "skip" for c in step["commands"]):
        return "skipped"
    return "passed" if step["passed"] else "failed"


def render(steps: Sequence[Mapping[str, Any]], language: str) -> str:
    """The page of a run's steps: each `report.as_data` of a step, with its `nodeid`."""
    say = PageWords(language)
    passed = sum(verdict_of(s) == "passed" for s in steps)
    title = say("title", passed=passed, steps=len(steps))
    rows = "".join(
        f'<tr data-step="{_e(s["nodeid"])}"><td><a href="#{_e(s["nodeid"])}">'
        f"<code>{_e(s['nodeid'])}</code></a></td><td>{_e(s['title'])}</td>"
        f'<td class="verdict {verdict_of(s)}">{_e(say(verdict_of(s)))}</td></tr>'
        for s in steps
    )
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_e(language)}"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<table id="steps"><thead><tr><th>{_e(say("step"))}</th><th>{_e(say("heading"))}</th>'
        f"<th>{_e(say('verdict'))}</th></tr></thead><tbody>{rows}</tbody></table>",
        *(_step(say, s) for s in steps),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _step(say: PageWords, step: Mapping[str, Any]) -> str:
    verdict = verdict_of(step)
    lines = [
        f'<section class="step" id="{_e(step["nodeid"])}" data-verdict="{verdict}">',
        f"<h2>{_e(say(verdict))} <code>{_e(step['nodeid'])}</code>: {_e(step['title'])}</h2>",
    ]
    for command in step["commands"]:
        lines.append(_command(say, step, command))
    lines.append("</section>")
    return "\n".join(lines)


def _command(say: PageWords, step: Mapping[str, Any], command: Mapping[str, Any]) -> str:
    mark = "✗" if command["failed"] else "-" if command["action"] == "skip" else "✓"
    items = [f"<h3>{mark} {_e(say('line', line=command['line']))}: "
             f"<code>{_e(command['command'])}</code></h3>", "<ul>"]  # fmt: skip
    items += [f"<li>{_e(say('rewritten', note=n))}</li>" for n in command["rewritten"]]
    if command["action"] == "skip":
        items.append(f"<li>{_e(say('skipped_because', reason=command['reason']))}</li>")
    elif command["action"] == "refused":
        items.append(f"<li>{_e(say('not_run', reason=command['reason']))}</li>")
    elif command["timed_out"]:
        items.append(f"<li>{_e(say('timed_out'))}</li>")
    elif command["stopped"]:
        items.append(f"<li>{_e(say('stopped', why=command['stopped']))}</li>")
    elif command["exit_status"] is not None:
        items.append(f"<li>{_e(say('status', status=command['exit_status']))}</li>")
    for promise in command["promises"]:
        held = say("held" if promise["held"] else "broken")
        seen = say("seen", seen=promise["seen"])
        items.append(f'<li class="promise">{_e(say("says", words=promise["says"]))}: '
                     f"<b>{_e(held)}</b> — {_e(seen)}</li>")  # fmt: skip
    if command["allowed_by"]:
        items.append(f"<li>{_e(say('allowed', words=command['allowed_by']))}</li>")
    items.append("</ul>")
    if command["diagnosis"]:
        diagnosis = "".join(f"<li>{_e(line)}</li>" for line in command["diagnosis"])
        items.append(f'<p>{_e(say("diagnosis"))}:</p><ul class="diagnosis">{diagnosis}</ul>')
    if command["walks"]:
        items.append(f"<p>{_e(say('walks'))}:</p>")
        items += [_walk(say, step, walk) for walk in command["walks"]]
    return "\n".join(items)


def _walk(say: PageWords, step: Mapping[str, Any], walk: Mapping[str, Any]) -> str:
    """A walk drawn inline (no XML declaration), or why it is not."""
    document, _, step_id = str(step["nodeid"]).partition("::")
    figure = f'<figure class="walk" data-student="{_e(document)}" data-step="{_e(step_id)}">'
    try:
        svg = render_svg(said_walk_dot(walk, walk.get("language", "en")))
    except Exception as exc:  # a drawing that fails must not lose the page
        return f"{figure}<figcaption>{_e(say('not_drawn', why=exc))}</figcaption></figure>"
    return figure + svg[svg.index("<svg") :] + "</figure>"


def check_folder(folder: Path) -> None:
    """Before anything runs: the report's folder can be made and written."""
    if folder.exists() and not folder.is_dir():
        raise VlanlbError(
            f"--vlanlb-report {folder}: a file is in the way; with --vlanlb-doc it is a folder "
            "(index.html is written in it)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".vlanlb-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise VlanlbError(f"--vlanlb-report {folder}: cannot write there ({exc})") from None


def write(folder: Path, steps: Sequence[Mapping[str, Any]], language: str) -> Path:
    page = folder / "index.html"
    page.write_text(render(steps, language), encoding="utf-8")
    return page
