"""Just enough of the shell's grammar to read a document's `bash` block as a reader types it.

A block becomes commands, one per line as typed (line continuations, quotes that span lines
and here-documents joined in), each a list of simple commands joined by `|`, `&&` or `||`,
with the source offsets of every word so that a word can be rewritten without touching the
rest of the line. Comments are kept: the documents put what a command should show there.
Parameter expansion (`$IF`) is recorded, not performed: the runner expands it for analysis and
leaves it to bash when the command runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_OPERATORS = ("&&", "||", ";;", "<<-", "<<<", "<<", ">>", "&>", ">&", "<&", "|", "&", ";", "<", ">")
_REDIRECTS = {"<<-", "<<<", "<<", ">>", "&>", ">&", "<&", "<", ">"}
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class ShellSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Word:
    """One word: its parts after quote removal (text and variables), and where it is."""

    parts: tuple[str | Var, ...]
    start: int
    end: int
    quoted: bool = False
    substitution: bool = False  # holds $(...) or `...`: its value is only known when run

    def value(self, env: Mapping[str, str] | None = None) -> str:
        env = env or {}
        return "".join(p if isinstance(p, str) else env.get(p.name, "") for p in self.parts)

    @property
    def literal(self) -> str | None:
        """The value when it needs no expansion, else None."""
        if self.substitution or any(isinstance(p, Var) for p in self.parts):
            return None
        return self.value()

    @property
    def variables(self) -> list[str]:
        return [p.name for p in self.parts if isinstance(p, Var)]


@dataclass(frozen=True)
class Redirect:
    op: str
    fd: int | None
    target: Word | None  # None for a here-document, whose body is `body`
    body: str = ""


@dataclass
class Simple:
    """A simple command: its words and its redirections."""

    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)

    def argv(self, env: Mapping[str, str] | None = None) -> list[str]:
        return [w.value(env) for w in self.words]

    @property
    def stderr_discarded(self) -> bool:
        return any(
            ((r.op == ">" and r.fd == 2) or r.op == "&>")
            and r.target is not None
            and r.target.literal == "/dev/null"
            for r in self.redirects
        )


@dataclass
class Command:
    """One command as typed: simple commands joined by operators, where it sits, and the
    comments that go with it (on its line, and the comment lines just above and below)."""

    text: str
    start: int
    end: int
    line: int  # 1-based line of the block where it starts
    last_line: int
    parts: list[Simple] = field(default_factory=list)
    joiners: list[str] = field(default_factory=list)  # between parts: | && ||
    background: bool = False
    comment: str = ""
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    #: The comment lines heading the run of commands this one belongs to (no blank line
    #: between): `# delete them (if they exist)` above two `ip link delete` lines is about both.
    lead: list[str] = field(default_factory=list)

    @property
    def may_fail(self) -> bool:
        """The author expects it may fail: its errors are discarded or `|| true` follows."""
        if "||" in self.joiners:
            return True
        return bool(self.parts) and self.parts[-1].stderr_discarded

    def source(self, block: str) -> str:
        return block[self.start : self.end]


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class _WordReader:
    """One shell word from `text` at `i`: its literal parts and variables, whether any of it
    was quoted, and whether it holds a command substitution."""

    def __init__(self, text: str, i: int) -> None:
        self.text, self.i, self.start = text, i, i
        self.parts: list[str | Var] = []
        self.buf: list[str] = []
        self.quoted = self.substitution = False

    def read(self) -> Word:
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c in " \t\n;&|<>()":
                break
            if c == "\\":
                if text.startswith("\\\n", self.i):
                    self.i += 2
                    continue
                self.buf.append(text[self.i + 1 : self.i + 2])
                self.i += 2
            elif c == "'":
                self.quoted = True
                end = text.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError(f"unclosed ' at line {_line_of(text, self.i)}")
                self.buf.append(text[self.i + 1 : end])
                self.i = end + 1
            elif c == '"':
                self._double_quoted()
            elif not self._expansion(c):
                self.buf.append(c)
                self.i += 1
        self._flush()
        return Word(tuple(self.parts), self.start, self.i, self.quoted, self.substitution)

    def _double_quoted(self) -> None:
        text = self.text
        self.quoted = True
        self.i += 1
        while True:
            if self.i >= len(text):
                raise ShellSyntaxError(f'unclosed " at line {_line_of(text, self.start)}')
            c = text[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\" and text[self.i + 1 : self.i + 2] in ('"', "\\", "$", "`", "\n"):
                if text[self.i + 1] != "\n":
                    self.buf.append(text[self.i + 1])
                self.i += 2
            elif not self._expansion(c):
                self.buf.append(c)
                self.i += 1

    def _flush(self) -> None:
        if self.buf:
            self.parts.append("".join(self.buf))
            self.buf.clear()

    def _variable(self) -> bool:
        match = _VAR.match(self.text, self.i)
        if not match:
            return False
        self._flush()
        self.parts.append(Var(match[1] or match[2]))
        self.i = match.end()
        return True

    def _balanced(self, open_: str, close: str) -> None:
        text = self.text
        self.substitution = True
        depth, j = 0, self.i
        while j < len(text):
            if text[j] == open_:
                depth += 1
            elif text[j] == close:
                depth -= 1
                if depth == 0:
                    break
            j += 1
        else:
            raise ShellSyntaxError(f"unclosed {open_!r} at line {_line_of(text, self.i)}")
        self.buf.append(text[self.i : j + 1])
        self.i = j + 1

    def _expansion(self, c: str) -> bool:
        """$(...), `...` or $VAR at i, taken into the word; False if none is."""
        text = self.text
        if c == "$" and text.startswith("$(", self.i):
            self.i += 1
            self.buf.append("$")
            self._balanced("(", ")")
            return True
        if c == "`":
            end = text.find("`", self.i + 1)
            if end < 0:
                raise ShellSyntaxError(f"unclosed ` at line {_line_of(text, self.i)}")
            self.substitution = True
            self.buf.append(text[self.i : end + 1])
            self.i = end + 1
            return True
        return c == "$" and self._variable()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.commands: list[Command] = []
        self.comments: list[tuple[int, str]] = []  # (line, text) of comment-only lines
        self._reset()
        self.pending_heredocs: list[tuple[Simple, int, str, bool]] = []

    def _reset(self) -> None:
        self.current = Simple()
        self.command: Command | None = None

    def line_of(self, offset: int) -> int:
        return _line_of(self.text, offset)

    def _word(self) -> Word:
        reader = _WordReader(self.text, self.i)
        word = reader.read()
        self.i = reader.i
        return word

    # --- commands ----------------------------------------------------------------------------

    def _begin(self) -> Command:
        if self.command is None:
            line = self.line_of(self.i)
            self.command = Command("", self.i, self.i, line, line)
        return self.command

    def _end_simple(self) -> None:
        if self.command is not None and (self.current.words or self.current.redirects):
            self.command.parts.append(self.current)
        self.current = Simple()

    def _finish(self, end: int) -> None:
        command = self.command
        if command is not None:
            self._end_simple()
            command.end = end
            command.text = self.text[command.start : end].rstrip()
            command.last_line = self.line_of(command.start + len(command.text))
            if command.parts:
                self.commands.append(command)
        self._reset()

    def _read_heredocs(self) -> None:
        """Here-document bodies start on the line after their operator."""
        for simple, index, delimiter, strip_tabs in self.pending_heredocs:
            lines: list[str] = []
            while True:
                if self.i >= len(self.text):
                    raise ShellSyntaxError(f"here-document ended before its {delimiter!r} line")
                end = self.text.find("\n", self.i)
                end = len(self.text) if end < 0 else end
                line = self.text[self.i : end]
                self.i = min(end + 1, len(self.text))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                lines.append(line)
            old = simple.redirects[index]
            simple.redirects[index] = Redirect(old.op, old.fd, None, "\n".join(lines) + "\n")
        self.pending_heredocs = []

    def run(self) -> list[Command]:
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c in " \t":
                self.i += 1
            elif text.startswith("\\\n", self.i):
                self.i += 2
            elif c == "\n":
                self.i += 1
                if self.pending_heredocs:
                    self._read_heredocs()
                self._finish(self.i)
            elif c == "#":
                end = text.find("\n", self.i)
                end = len(text) if end < 0 else end
                comment = text[self.i + 1 : end].strip()
                if self.command is not None:
                    self.command.comment = comment
                else:
                    self.comments.append((self.line_of(self.i), comment))
                self.i = end
            else:
                self._token()
        self._finish(len(text))
        attach_comments(self.commands, self.comments, text)
        return self.commands

    def _token(self) -> None:
        text = self.text
        fd: int | None = None
        digits = re.match(r"\d+(?=[<>])", text[self.i :])
        if digits:
            fd = int(digits[0])
            self.i += len(digits[0])
        op = next((o for o in _OPERATORS if text.startswith(o, self.i)), None)
        if op is None or text[self.i] in "()":
            if text[self.i] in "()":
                raise ShellSyntaxError(
                    f"subshells and functions are not supported (line {self.line_of(self.i)})"
                )
            self._begin()
            self.current.words.append(self._word())
            return
        self.i += len(op)
        if op in _REDIRECTS:
            self._begin()
            while self.i < len(text) and text[self.i] in " \t":
                self.i += 1
            target = self._word()  # a file, a here-document's delimiter, or an fd (2>&1)
            if not target.parts:
                raise ShellSyntaxError(f"{op} needs a target (line {self.line_of(self.i)})")
            self.current.redirects.append(Redirect(op, fd, target))
            if op in ("<<", "<<-"):
                delimiter = target.value()
                index = len(self.current.redirects) - 1
                self.pending_heredocs.append((self.current, index, delimiter, op == "<<-"))
            return
        command = self._begin()
        if op in ("|", "&&", "||"):
            self._end_simple()
            command.joiners.append(op)
        elif op in (";", "&"):
            command.background = op == "&"
            self._finish(self.i)
        else:
            raise ShellSyntaxError(f"{op!r} is not supported (line {self.line_of(self.i)})")


def attach_comments(commands: list[Command], comments: list[tuple[int, str]], text: str) -> None:
    """Comment lines right below a command are what it shows (`after`); comment lines right
    above a command say what it does or should do (`before`). A blank line separates."""
    by_first = {c.line: c for c in commands}
    by_last = {c.last_line: c for c in commands}
    groups: list[list[tuple[int, str]]] = []
    for line, comment in comments:
        if groups and groups[-1][-1][0] == line - 1:
            groups[-1].append((line, comment))
        else:
            groups.append([(line, comment)])
    for group in groups:
        first, last = group[0][0], group[-1][0]
        lines = [comment for _, comment in group]
        if (above := by_last.get(first - 1)) is not None:
            above.after.extend(lines)
        if (below := by_first.get(last + 1)) is not None:
            below.before.extend(lines)
    previous: Command | None = None
    for command in commands:
        if command.before:
            command.lead = list(command.before)
        elif previous is not None and command.line == previous.last_line + 1:
            command.lead = previous.lead
        previous = command


def split_commands(block: str) -> list[Command]:
    """The commands of a shell block, in order."""
    return _Lexer(block).run()
