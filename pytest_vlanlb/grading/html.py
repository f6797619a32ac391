"""The class report as one self-contained page (`index.html`): no network, no external CSS or
script, readable in colour and in black and white.

What an instructor reads at the end of a session, top to bottom: the matrix of students x
steps (each cell a colour *and* a word), each step's pass count, the steps most of the class
did not pass (where the next session's explanation goes), then one section per student with
what was checked, what was seen, and the hint with its commands, ready to copy.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from ..host.graphviz import render_svg
from ..observation.drawing import said_walk_dot
from .messages import Speaker
from .verdict import CANNOT_JUDGE, FAIL, NOT_YET, PASS

#: Each status's cell colours (background, text). Its word is the catalogue's `status.*`, so
#: the page reads without colour too.
CELLS: dict[str, tuple[str, str]] = {
    PASS: ("#1a7f37", "#ffffff"),
    FAIL: ("#cf222e", "#ffffff"),
    CANNOT_JUDGE: ("#bf8700", "#000000"),
    NOT_YET: ("#d0d7de", "#000000"),
}

_STYLE = (
    """
body { margin: 1.5em; color: #1f2328;
       font-family: system-ui, 'Noto Sans CJK JP', 'Hiragino Sans', 'Yu Gothic', IPAGothic,
       sans-serif; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #8c959f; padding: 0.3em 0.6em; text-align: left; }
#matrix th, #matrix td { white-space: nowrap; }
td.cell { text-align: center; font-weight: bold; }
td.cell a { color: inherit; text-decoration: none; }
"""
    + "".join(
        f"td.{status} {{ background: {bg}; color: {fg}; }}\n" for status, (bg, fg) in CELLS.items()
    )
    + """
section.student { border-top: 2px solid #8c959f; margin-top: 1.5em; }
pre { background: #f6f8fa; padding: 0.5em; white-space: pre-wrap; user-select: all; }
.status { font-weight: bold; }
"""
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render(
    say: Speaker,
    title: str,
    steps: Sequence[tuple[str, str]],
    documents: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, str],
) -> str:
    """The page, in `say`'s language: `steps` are (id, title); `documents` each student's
    report (as the JSON has it); `scores` each student's score as the terminal says it."""
    head = "".join(f'<th scope="col" title="{_e(t)}">{_e(i)}</th>' for i, t in steps)
    rows = []
    for name, document in documents.items():
        cells = "".join(
            f'<td class="cell {_e(s["status"])}" data-step="{_e(s["id"])}">'
            f'<a href="#{_e(name)}-{_e(s["id"])}">{_e(say.status(s["status"]))}</a></td>'
            for s in document["steps"]
        )
        rows.append(
            f'<tr data-student="{_e(name)}"><th scope="row"><a href="#{_e(name)}">'
            f"{_e(name)}</a></th>{cells}<td>{_e(scores[name])}</td></tr>"
        )
    counts, missed = [], []
    for index, (step, step_title) in enumerate(steps):
        graded = [
            d["steps"][index] for d in documents.values() if d["steps"][index]["status"] != NOT_YET
        ]
        passed = sum(s["status"] == PASS for s in graded)
        counts.append(f'<td data-step="{_e(step)}">{passed}/{len(graded)}</td>')
        if graded and passed * 2 < len(graded):
            missed.append((len(graded) - passed, step, step_title, len(graded)))
    missed_list = "".join(
        f"<li><b>{_e(step)}</b> ({_e(t)}): {_e(say('page.missed_line', missed=n, graded=total))}"
        "</li>"
        for n, step, t, total in sorted(missed, reverse=True)
    )
    nothing = f"<li>{_e(say('page.none'))}</li>"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_e(say.language)}"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<table id="matrix"><thead><tr><th>{_e(say("label.student"))}</th>',
        f"{head}<th>{_e(say('label.score'))}</th></tr></thead><tbody>",
        *rows,
        f'</tbody><tfoot><tr id="passed"><th>{_e(say("label.passed"))}</th>',
        f"{''.join(counts)}<td></td></tr></tfoot></table>",
        f"<h2>{_e(say('page.missed'))}</h2>",
        f'<ul id="missed">{missed_list or nothing}</ul>',
        *(_student(say, name, document, scores[name]) for name, document in documents.items()),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _student(say: Speaker, name: str, document: Mapping[str, Any], score: str) -> str:
    environment = document["environment"]
    where = ", ".join(f"{node}={container}" for node, container in environment["names"].items())
    podman = say("page.podman", url=environment["url"]) if environment["url"] else ""
    lines = [
        f'<section class="student" id="{_e(name)}">',
        f"<h2>{_e(name)} — {_e(score)}</h2>",
        f"<p>{_e(say('page.containers', names=where))}{_e(podman)}</p>",
    ]
    for step in document["steps"]:
        lines.append(
            f'<h3 id="{_e(name)}-{_e(step["id"])}"><span class="status">'
            f"{_e(say.status(step['status']))}</span> {_e(step['id'])}: {_e(step['title'])}</h3>"
        )
        if step["evidence"]:
            lines.append("<ul>" + "".join(f"<li>{_e(e)}</li>" for e in step["evidence"]) + "</ul>")
        if step.get("walk"):
            lines.append(_walk(name, step))
        if step["hint"]:
            lines.append(f"<p>{_e(say('label.hint'))}:</p><pre>{_e(step['hint'])}</pre>")
    lines.append("</section>")
    return "\n".join(lines)


def _walk(name: str, step: Mapping[str, Any]) -> str:
    """The step's walk drawn inline (graphviz's SVG, no XML declaration), or why it is not."""
    walk = step["walk"]
    figure = f'<figure class="walk" data-student="{_e(name)}" data-step="{_e(step["id"])}">'
    try:
        svg = render_svg(said_walk_dot(walk, walk.get("language", "en")))
    except Exception as exc:
        return f"{figure}<figcaption>{_e(str(exc))}</figcaption></figure>"
    return figure + svg[svg.index("<svg") :] + "</figure>"
