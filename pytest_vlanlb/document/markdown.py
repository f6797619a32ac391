"""A workshop document as data: its `##` sections, each a sequence of prose and fenced blocks.

Only what document mode needs is parsed: headings (to name the steps), fenced code blocks with
their info string and line number, and the prose between them (where the documents state
what a command should show). Everything else is kept as prose text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_STEP = re.compile(r"(?:\bstep|ステップ)\s*(\d+)\b", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*\d+\s*[.)．、]\s*")

#: Section headings that are not "Step N", in the workshop's languages -> item id.
SECTION_IDS: dict[str, str] = {
    "前提条件": "prerequisites",
    "prerequisites": "prerequisites",
    "prerequisite": "prerequisites",
    "クリーンアップ": "cleanup",
    "後片付け": "cleanup",
    "片付け": "cleanup",
    "片づけ": "cleanup",
    "後始末": "cleanup",
    "cleanup": "cleanup",
    "clean up": "cleanup",
    "clean-up": "cleanup",
}


@dataclass(frozen=True)
class Fence:
    """A fenced code block; `line` is the 1-based line of its first content line."""

    lang: str
    text: str
    line: int

    @property
    def is_shell(self) -> bool:
        return self.lang in ("bash", "sh", "shell", "console")


@dataclass(frozen=True)
class Prose:
    text: str
    line: int


Element = Fence | Prose


@dataclass
class Section:
    id: str
    title: str
    line: int
    elements: list[Element] = field(default_factory=list)

    @property
    def shell_blocks(self) -> list[Fence]:
        return [e for e in self.elements if isinstance(e, Fence) and e.is_shell]

    @property
    def is_cleanup(self) -> bool:
        return self.id == "cleanup"


@dataclass
class Document:
    path: Path
    title: str
    sections: list[Section]

    @property
    def name(self) -> str:
        return self.path.name


def section_id(title: str, taken: set[str]) -> str:
    """`step-N` for "Step N. ...", a known id for prerequisites/cleanup, else a slug."""
    plain = re.sub(r"[*`_]", "", title).strip()
    if step := _STEP.search(plain):
        base = f"step-{int(step[1])}"
    else:
        key = re.split(r"[（(:：]", _NUMBERED.sub("", plain))[0].strip().lower()
        base = SECTION_IDS.get(key) or (
            "-".join(re.findall(r"[a-z0-9]+", key)) or f"section-{len(taken) + 1}"
        )
    ident, n = base, 2
    while ident in taken:
        ident, n = f"{base}-{n}", n + 1
    taken.add(ident)
    return ident


def is_step_heading(title: str) -> bool:
    """A `###` heading that is a step of its own ("### STEP 1: ...", "### 1. 前提条件" under
    "## 準備"), as some revisions nest them: not a sub-heading inside a step."""
    plain = re.sub(r"[*`_]", "", title).strip()
    key = re.split(r"[（(:：]", _NUMBERED.sub("", plain))[0].strip().lower()
    return bool(_STEP.match(plain)) or key in SECTION_IDS


def parse_document(text: str, path: Path) -> Document:
    lines = text.splitlines()
    title = ""
    sections: list[Section] = []
    taken: set[str] = set()
    current: Section | None = None
    prose: list[str] = []
    prose_line = 0

    def flush_prose() -> None:
        nonlocal prose
        if current is not None and any(line.strip() for line in prose):
            current.elements.append(Prose("\n".join(prose).strip("\n"), prose_line))
        prose = []

    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            flush_prose()
            indent, marker, lang = fence.groups()
            body: list[str] = []
            index += 1
            start = index + 1
            while index < len(lines) and not lines[index].lstrip().startswith(marker):
                body.append(
                    lines[index][len(indent) :] if lines[index].startswith(indent) else lines[index]
                )
                index += 1
            if current is not None:
                current.elements.append(Fence(lang.lower(), "\n".join(body), start))
            index += 1
            continue
        heading = _HEADING.match(line)
        if heading and (len(heading[1]) <= 2 or is_step_heading(heading[2])):
            flush_prose()
            if len(heading[1]) == 1:
                title = title or heading[2]
            else:
                current = Section(section_id(heading[2], taken), heading[2], index + 1)
                sections.append(current)
            index += 1
            prose_line = index + 1
            continue
        if not prose:
            prose_line = index + 1
        prose.append(line)
        index += 1
    flush_prose()
    return Document(path, title, sections)


def load_document(path: Path) -> Document:
    return parse_document(path.read_text(encoding="utf-8"), path)
