"""What a document promises a command will show, read from its own words.

The documents state results in a few ways, in Japanese and in English: a comment under a ping
(`# 結果: パケットロス 100%`, `# Result: 100% packet loss`), sample output under a command
(`# rootless: false`, `# 64 bytes from 192.168.20.20: seq=0 ttl=63 ...`), a comment that names
what a listing should show (`# net-vlan10 と net-vlan20 が表示されること`), a sentence after a
block (`` `192.168.10.1` (eth1) ``), an "Expected result" block, and a prerequisite
("containers `a`, `b`, `router` are running"). Each recognised statement becomes a promise
checked against what was observed; sample lines that state nothing checkable are listed in the
report as examples, never silently taken as checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .markdown import Fence, Prose
from .shell import Command

Resolve = Callable[[str], str]  # a document's word -> this run's (names, $IF)

_LOSS = re.compile(r"(\d+)\s*%\s*packet loss|パケットロス\s*(\d+)\s*%", re.IGNORECASE)
_REPLY = re.compile(r"bytes from (\d+\.\d+\.\d+\.\d+)")
_TTL = re.compile(r"\bttl=(\d+)")
_KEY_VALUE = re.compile(r"^[A-Za-z][\w.-]*: [^\sx.][^\s]*$")
_SHOWS = (
    re.compile(r"^(?:確認[:：]?\s*)?(.+?)\s*が表示されること"),
    re.compile(r"^(?:verify\s+)?(.+?)\s+(?:should be|are|is) (?:displayed|shown|listed)", re.I),
)
_FAILURE = re.compile(
    r"失敗することを確認|通らなくな|通信不能|confirm failure|should fail|must fail", re.IGNORECASE
)
_INTERNET = re.compile(
    r"インターネット接続が必要|インターネットが必要|internet connection required|"
    r"requires? (?:an? )?internet|needs? (?:an? )?internet",
    re.IGNORECASE,
)
_ADDRESS_PAIR = re.compile(r"`(\d+\.[\dx]+\.[\dx]+\.[\dx]+)`\s*[（(]\s*([A-Za-z][\w.@-]*)\s*[)）]")
_ADDRESS_PROSE = re.compile(r"見え|表示|成功|should show|shows?\b|appear", re.IGNORECASE)
_EXPECTED = re.compile(r"期待される(?:結果|出力)|expected (?:result|output)", re.IGNORECASE)
_RUNNING = (
    re.compile(r"コンテナ\s*((?:`[^`]+`\s*[,、]?\s*(?:と|および)?\s*)+)が起動している"),
    re.compile(
        r"containers?\s*((?:`[^`]+`\s*,?\s*(?:and\s*)?)+)(?:must be|are|is|should be) running",
        re.IGNORECASE,
    ),
)
_TOKEN_SPLIT = re.compile(r"\s*(?:,|、|\band\b|と|および)\s*")
_NAME_TOKEN = re.compile(r"^[\w${}.-]+$")


@dataclass(frozen=True)
class Observed:
    """What one command did."""

    status: int | None  # None: it was killed at the time limit
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.status is None

    def describe_status(self, limit: float) -> str:
        if self.status is None:
            return f"no result within {limit:g} s (timed out)"
        return f"exit status {self.status}"


@dataclass(frozen=True)
class Check:
    """A promise's outcome: whether it held and what was seen."""

    ok: bool
    seen: str


@dataclass(frozen=True)
class Promise:
    """A statement of the document about one command's result; `words` quotes the document."""

    words: str

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        raise NotImplementedError

    @property
    def expects_failure(self) -> bool:
        return False


@dataclass(frozen=True)
class Fails(Promise):
    """The document says this command fails (a blocked ping)."""

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        if observed.timed_out:
            return Check(True, "no result (timed out)")
        return Check(observed.status != 0, f"exit status {observed.status}")

    @property
    def expects_failure(self) -> bool:
        return True


@dataclass(frozen=True)
class PacketLoss(Promise):
    percent: int

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        found = _LOSS.search(observed.stdout)
        if found is None:
            return Check(False, "no ping statistics in the output")
        seen = int(found[1] or found[2])
        return Check(seen == self.percent, f"{seen}% packet loss")

    @property
    def expects_failure(self) -> bool:
        return self.percent == 100


@dataclass(frozen=True)
class Reply(Promise):
    """A ping reply from `address` (with `ttl`, when the document shows one)."""

    address: str
    ttl: int | None

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        replies = [
            line for line in observed.stdout.splitlines() if f"bytes from {self.address}" in line
        ]
        if not replies:
            return Check(False, f"no reply from {self.address}")
        ttls = sorted({int(m[1]) for line in replies if (m := _TTL.search(line))})
        ok = self.ttl is None or ttls == [self.ttl]
        return Check(ok, f"{len(replies)} replies from {self.address}, ttl {ttls}")


@dataclass(frozen=True)
class ShowsLine(Promise):
    """A line the output shows as written (`rootless: false`)."""

    line: str

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        lines = [" ".join(line.split()) for line in observed.stdout.splitlines()]
        ok = " ".join(self.line.split()) in lines
        return Check(ok, "shown" if ok else f"not among the {len(lines)} lines of output")


@dataclass(frozen=True)
class ShowsNames(Promise):
    """Names a listing shows (`net-vlan10 と net-vlan20 が表示されること`), mapped to this run."""

    names: tuple[str, ...]

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        text = observed.stdout
        present = [
            resolve(n)
            for n in self.names
            if re.search(rf"(?<![\w.-]){re.escape(resolve(n))}(?![\w.-])", text)
        ]
        missing = [resolve(n) for n in self.names if resolve(n) not in present]
        if missing:
            return Check(False, f"missing: {', '.join(missing)}")
        return Check(True, f"shown: {', '.join(present)}")


@dataclass(frozen=True)
class AddressesOn(Promise):
    """Addresses on interfaces, as `ip addr` shows them (`` `192.168.10.1` (eth1) ``)."""

    pairs: tuple[tuple[str, str], ...]  # (address pattern with x wildcards, interface)

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        found = interface_addresses(observed.stdout)
        wrong = []
        for pattern, interface in self.pairs:
            regex = re.compile("^" + re.escape(pattern).replace("x", r"\d+") + "$")
            here = found.get(interface, [])
            if not any(regex.match(address) for address in here):
                elsewhere = [i for i, addrs in found.items() if any(regex.match(a) for a in addrs)]
                where = f"it is on {', '.join(elsewhere)}" if elsewhere else "no interface has it"
                wrong.append(
                    f"{pattern} not on {interface} ({interface}: {here or 'absent'}; {where})"
                )
        if wrong:
            return Check(False, "; ".join(wrong))
        return Check(True, ", ".join(f"{i}: {', '.join(found[i])}" for _, i in self.pairs))


@dataclass(frozen=True)
class ExactOutput(Promise):
    """The document's "expected result" block: the output, exactly."""

    expected: str

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        want, got = self.expected.strip("\n"), observed.stdout.strip("\n")
        if got == want:
            return Check(True, f"output {got!r}")
        if observed.timed_out and not got:
            return Check(False, "no output: the command timed out")
        return Check(False, f"output {got[:300]!r} instead of {want!r}")


def interface_addresses(ip_addr_output: str) -> dict[str, list[str]]:
    """`ip addr` (iproute2 or busybox) -> interface -> IPv4 addresses."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in ip_addr_output.splitlines():
        if header := re.match(r"^\d+:\s+([^:@\s]+)", line):
            current = header[1]
            found.setdefault(current, [])
        elif inet := re.match(r"^\s+inet\s+(\d+\.\d+\.\d+\.\d+)", line):
            found.setdefault(current, []).append(inet[1])
    return found


@dataclass
class Reading:
    """What the runner takes from a command's comments."""

    promises: list[Promise] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # sample output lines, not checked
    needs_internet: bool = False


def read_command(command: Command) -> Reading:
    reading = Reading()
    notes = [*command.before, command.comment]
    if any(_INTERNET.search(note) for note in notes if note):
        reading.needs_internet = True
    # "結果: パケットロス 100% (通信不能)" says it once, as a loss: not twice.
    failure = [
        n for n in [*notes, *command.after] if n and _FAILURE.search(n) and not _LOSS.search(n)
    ]
    if failure:
        reading.promises.append(Fails("; ".join(failure)))
    for note in command.before:
        if names := _shown_names(note):
            reading.promises.append(ShowsNames(note, names))
    for line in command.after:
        text = line.strip()
        if loss := _LOSS.search(text):
            reading.promises.append(PacketLoss(text, int(loss[1] or loss[2])))
        elif reply := _REPLY.search(text):
            ttl = _TTL.search(text)
            reading.promises.append(Reply(text, reply[1], int(ttl[1]) if ttl else None))
        elif names := _shown_names(text):
            reading.promises.append(ShowsNames(text, names))
        elif _KEY_VALUE.match(text):
            reading.promises.append(ShowsLine(text, text))
        elif text and text.strip(".") and not _FAILURE.search(text):
            reading.examples.append(text)
    return reading


def _shown_names(note: str) -> tuple[str, ...]:
    for pattern in _SHOWS:
        if match := pattern.search(note.strip()):
            tokens = [t.strip("`'\" ") for t in _TOKEN_SPLIT.split(match[1])]
            names = tuple(t for t in tokens if t and _NAME_TOKEN.match(t))
            if names and len(names) == len(tokens):
                return names
    return ()


def read_prose(prose: Prose) -> list[Promise]:
    """Promises stated in a paragraph after a block (about that block's last command)."""
    text = " ".join(prose.text.split())
    pairs = tuple(_ADDRESS_PAIR.findall(text))
    if pairs and _ADDRESS_PROSE.search(text):
        sentence = next(
            (s for s in re.split(r"(?<=[。.])\s+", text) if _ADDRESS_PAIR.search(s)), text
        )
        return [AddressesOn(sentence, pairs)]
    return []


def expected_block(prose: Prose, fence: Fence) -> Promise | None:
    """An "Expected result" paragraph followed by a plain block: that block is the output."""
    if _EXPECTED.search(prose.text) and not fence.is_shell:
        return ExactOutput(f"{prose.text.strip()} {fence.text.strip()}", fence.text)
    return None


def running_containers(paragraphs: Sequence[Prose]) -> tuple[str, ...]:
    """Containers a prerequisite says must be running."""
    for prose in paragraphs:
        text = " ".join(prose.text.split())
        for pattern in _RUNNING:
            if match := pattern.search(text):
                return tuple(re.findall(r"`([^`]+)`", match[1]))
    return ()
