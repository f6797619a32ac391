"""Reading a page back from a real browser: Debian's Chromium, headless, offline.

The page is copied with a small script appended that, once the page is laid out, writes what
the browser shows of the class matrix (each cell's text and computed colours) into the DOM;
`--dump-dom` prints it. What is read is what a person sees, not what the file says."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
#: The flags this machine needs (root, no GPU, no network: nothing to look up or update).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
READER = """<script>
window.addEventListener("load", () => {
  const rows = {};
  for (const row of document.querySelectorAll("#matrix tbody tr")) {
    rows[row.dataset.student] = [...row.querySelectorAll("td.cell")].map((cell) => {
      const style = getComputedStyle(cell);
      return {step: cell.dataset.step, text: cell.innerText.trim(),
              background: style.backgroundColor, color: style.color};
    });
  }
  const passed = [...document.querySelectorAll("#passed td[data-step]")].map(
    (cell) => [cell.dataset.step, cell.innerText.trim()]);
  const out = document.createElement("pre");
  out.id = "vlanlb-read";
  out.textContent = JSON.stringify({rows, passed, lang: document.documentElement.lang});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup (it installs Debian's chromium)")
    return CHROMIUM


def read_matrix(page: Path, work: Path) -> tuple[dict, float]:
    """What the browser shows of the page's matrix, and the seconds the browser took."""
    copy = work / f"read-{page.name}"
    shutil.copy(page, copy)
    copy.write_text(copy.read_text(encoding="utf-8").replace("</body>", READER + "</body>"))
    profile = work / "chromium-profile"
    start = time.perf_counter()
    result = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", copy.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-2000:]
    start_tag = '<pre id="vlanlb-read">'
    dom = result.stdout
    assert start_tag in dom, dom[-2000:]
    raw = dom.split(start_tag, 1)[1].split("</pre>", 1)[0]
    return json.loads(html.unescape(raw)), elapsed


def screenshot(page: Path, target: Path, work: Path, size: str = "1100,700") -> None:
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={work / 'chromium-profile'}",
            "--hide-scrollbars",
            f"--window-size={size}",
            f"--screenshot={target}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )


def read_svg_texts(svg: Path, work: Path) -> list[str]:
    """The texts Chromium lays out when it shows the SVG inline in a page."""
    page = work / f"read-{svg.stem}.html"
    body = svg.read_text(encoding="utf-8").split("?>", 1)[-1]  # inline: no XML declaration
    figure = f'<figure class="walk" data-student="" data-step="">{body}</figure>'
    page.write_text(f"<!doctype html><html><body>{figure}{WALK_READER}</body></html>", "utf-8")
    return read_back(page, work)["walks"][0]["texts"]


def read_back(page: Path, work: Path) -> dict:
    """What the page's reader script wrote into the DOM, once Chromium laid the page out."""
    result = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={work / 'chromium-profile'}", "--dump-dom",
         page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    start_tag = '<pre id="vlanlb-read">'
    assert start_tag in result.stdout, result.stdout[-2000:]
    raw = result.stdout.split(start_tag, 1)[1].split("</pre>", 1)[0]
    return json.loads(html.unescape(raw))


WALK_READER = """<script>
window.addEventListener("load", () => {
  // Each figure's drawing (a walk, or an SVG shown alone): the texts the browser laid out
  // with a size (what a person can read), in document order.
  const walks = [...document.querySelectorAll("figure.walk")].map((figure) => ({
    student: figure.dataset.student, step: figure.dataset.step,
    texts: [...figure.querySelectorAll("svg text")]
      .filter((t) => { const box = t.getBBox(); return box.width > 0 && box.height > 0; })
      .map((t) => t.textContent.trim()),
  }));
  const out = document.createElement("pre");
  out.id = "vlanlb-read";
  out.textContent = JSON.stringify({walks});
  document.body.appendChild(out);
});
</script>"""


def read_walks(page: Path, work: Path) -> list[dict]:
    """The walks a page draws, as the browser lays them out: student, step and texts."""
    copy = work / f"walks-{page.name}"
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", WALK_READER + "</body>"))
    return read_back(copy, work)["walks"]
