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

from ..observation.addresses import parse_ip_addr
from .bash import Command
from .markdown import Fence, Prose

Resolve = Callable[[str], str]  # a document's word -> this run's (names, $IF)

_LOSS = re.compile(
    r"(\d+)\s*%\s*(?:の\s*)?(?:packet loss|パケットロス)"
    r"|(?:packet loss|パケットロス)\s*(?:率|rate)?\s*(?:of|[:：は]|が)?\s*(\d+)\s*%",
    re.IGNORECASE,
)
_REPLY = re.compile(r"bytes from (\d+\.\d+\.\d+\.\d+)")
_TTL = re.compile(r"\bttl=(\d+)")
_KEY_VALUE = re.compile(r"^[A-Za-z][\w.-]*: [^\sx.][^\s]*$")
_SHOWS = (
    re.compile(
        r"^(?:確認[:：]?\s*)?(.+?)\s*が(?:一覧に)?(?:表示|出力|列挙)(?:されること|されれば|されます"
        r"|されるはず)|^(?:確認[:：]?\s*)?(.+?)\s*が(?:一覧に)?(?:出る|ある|含まれる)こと"
    ),
    re.compile(
        r"^(?:verify|check|confirm)?\s*(?:that\s+)?(.+?)\s+(?:should be|are|is|must be) "
        r"(?:displayed|shown|listed|present|in the (?:list|output))|^(?:verify|check|confirm)?"
        r"\s*(?:that\s+)?(.+?)\s+(?:should |must )?(?:appear|show up)",
        re.I,
    ),
)
_FAILURE = re.compile(
    # Not "失敗する場合" (if it fails) nor "失敗することがあります" (it may fail): those are a
    # hint and a tolerance, not a promise that it fails.
    r"失敗することを確認|失敗する(?!場合|こと[がも]|かも)|失敗します|通らなくな|通らない(?:こと|はず)"
    r"|届かない(?:こと|はず)|通信不能|confirm failure|(?:should|must|will) fail"
    r"|^(?:this |it )?fails[.!]*$",
    re.IGNORECASE,
)
#: "存在しないと失敗します", "this will fail if it does not exist": a failure under a
#: condition is leave to fail (see `tolerance`), not a promise that it fails.
_CONDITIONAL_FAILURE = re.compile(
    r"(?:と|ば|場合は?|なら|ときは?)\s*(?:エラーに|失敗)|\bfail(?:s|ed)?\s+(?:if|when|unless)\b",
    re.IGNORECASE,
)
_INTERNET = re.compile(
    r"インターネット接続が必要|インターネットが必要|internet connection required|"
    r"requires? (?:an? )?internet|needs? (?:an? )?internet",
    re.IGNORECASE,
)
#: A backquoted address, and the parenthesis after it if there is one (an interface, or not).
_ADDRESS = re.compile(r"`(\d+\.[\dx]+\.[\dx]+\.[\dx]+)(?:/\d+)?`(?:\s*[（(]\s*([^)）]*?)\s*[)）])?")
_ADDRESS_PROSE = re.compile(r"見え|表示|成功|should show|shows?\b|appear", re.IGNORECASE)
_EXPECTED = re.compile(
    r"期待される(?:結果|出力)|期待する(?:結果|出力)|期待値|expected (?:result|output|response)",
    re.IGNORECASE,
)
_RUNNING = (
    re.compile(r"コンテナ\s*((?:`[^`]+`\s*[,、]?\s*(?:と|および)?\s*)+)が起動している"),
    re.compile(
        r"containers?\s*((?:`[^`]+`\s*,?\s*(?:and\s*)?)+)(?:must be|are|is|should be) running",
        re.IGNORECASE,
    ),
    re.compile(
        r"((?:`[^`]+`\s*,?\s*(?:and\s*)?)+)containers?\s*(?:must be|are|is|should be) running",
        re.IGNORECASE,
    ),
    re.compile(r"((?:`[^`]+`\s*[,、]?\s*(?:と|および)?\s*)+)(?:の)?(?:コンテナ)?が起動している"),
)
#: "`Hello from Pod B` と出れば成功", "-> Should output "Hello from Pod B"": that text is shown.
_SHOWS_TEXT = re.compile(
    r"[「\"“`]([^」\"”`]+)[」\"”`]\s*(?:と|が)?\s*(?:出れば|出力され|表示され|返れば|返って|返る|出る)"
    r"|(?:should|will|must) (?:output|print|show|display|return|say)\s*"
    r"[「\"“`]([^」\"”`]+)[」\"”`]",
    re.IGNORECASE,
)
#: Words of a statement about the result (not sample output): what the runner cannot read
#: of such a line is reported as not understood, never silently passed or failed.
_JUDGEMENT = re.compile(
    r"成功|正解|OK|はず|であること|されること|になること|こと$|should|expect|must|success|correct",
    re.IGNORECASE,
)
_TOKEN_SPLIT = re.compile(r"\s*(?:,|、|\band\b|と|および)\s*")
_NAME_TOKEN = re.compile(r"^[\w${}.-]+$")


@dataclass(frozen=True)
class Observed:
    """What one command did."""

    status: int | None  # None: it was killed at the time limit (or stopped as if it were)
    stdout: str
    stderr: str
    seconds: float
    #: Why the runner stopped it before its end (see `settling`): then `status` is the one
    #: its output settled.
    stopped: str = ""

    @property
    def timed_out(self) -> bool:
        return self.status is None

    @property
    def no_result(self) -> str:
        return "it was stopped (see above)" if self.stopped else "the command timed out"

    def describe_status(self, limit: float) -> str:
        if self.stopped:
            settled = "no result" if self.status is None else f"exit status {self.status}"
            return f"stopped after {self.seconds:.1f} s: {self.stopped} ({settled})"
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
            return Check(True, f"no result ({observed.no_result})")
        return Check(observed.status != 0, f"exit status {observed.status}")

    @property
    def expects_failure(self) -> bool:
        return True


@dataclass(frozen=True)
class PacketLoss(Promise):
    percent: int

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        found = _LOSS.search(observed.stdout)
        if found is None and observed.stopped and self.expects_failure:
            # Stopped once every request had gone unanswered: that is the 100%.
            return Check("bytes from " not in observed.stdout, "0 replies (stopped: see above)")
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
    """Addresses `ip addr` shows (`` `192.168.10.1` (eth1) ``, `` `10.88.x.x` (podman) ``).

    A parenthesis is an interface only when it names one: an interface of the output, one of
    the same shape (`eth7` beside `eth0`), or one the document itself uses as an interface
    (`-i eth1`, `dev $IF.10`). Anything else is context (`podman's default`, `NAT 用`): the
    address is then checked to be on some interface, as a reader would."""

    items: tuple[tuple[str, str], ...]  # (address pattern with x wildcards, parenthesis or "")
    vocabulary: frozenset[str] = frozenset()  # the document's own interface words

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        found = {
            name: [str(a.ip) for a in addresses]
            for name, addresses in parse_ip_addr(observed.stdout).items()
        }
        shapes = {re.sub(r"\d+", "#", name) for name in found}
        known = {resolve(word) for word in self.vocabulary}
        wrong: list[str] = []
        seen: list[str] = []
        for pattern, aside in self.items:
            regex = re.compile("^" + re.escape(pattern).replace("x", r"\d+") + "$")
            holders = [i for i, addrs in found.items() if any(regex.match(a) for a in addrs)]
            if not found:  # not an `ip addr` listing: the address as text, then
                shown = re.search(
                    regex.pattern.strip("^$").join([r"(?<![\d.])", r"(?![\d])"]), observed.stdout
                )
                (seen if shown else wrong).append(
                    f"{pattern} {'in' if shown else 'not in'} the output"
                )
                continue
            interface = resolve(aside)
            if aside and (
                interface in found or re.sub(r"\d+", "#", interface) in shapes or interface in known
            ):
                here = found.get(interface, [])
                if interface in holders:
                    seen.append(f"{pattern} on {interface}")
                    continue
                where = f"it is on {', '.join(holders)}" if holders else "no interface has it"
                wrong.append(
                    f"{pattern} not on {interface} ({interface}: {here or 'absent'}; {where})"
                )
            elif holders:
                context = f" ('{aside}' is context, not an interface)" if aside else ""
                seen.append(f"{pattern} on {', '.join(holders)}{context}")
            else:
                wrong.append(f"{pattern}: no interface has it")
        if wrong:
            return Check(False, "; ".join(wrong))
        return Check(True, "; ".join(seen))


@dataclass(frozen=True)
class ShowsText(Promise):
    """A text the document says the output shows (`-> "Hello from Pod B" と出れば成功`)."""

    text: str

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        if self.text in observed.stdout:
            return Check(True, f"shown: {self.text!r}")
        if observed.timed_out and not observed.stdout:
            return Check(False, f"no output: {observed.no_result}")
        return Check(False, f"not in the output ({observed.stdout.strip()[:200]!r})")


@dataclass(frozen=True)
class ExactOutput(Promise):
    """The document's "expected result" block: the output, exactly."""

    expected: str

    def check(self, observed: Observed, resolve: Resolve) -> Check:
        want, got = self.expected.strip("\n"), observed.stdout.strip("\n")
        if got == want:
            return Check(True, f"output {got!r}")
        if observed.timed_out and not got:
            return Check(False, f"no output: {observed.no_result}")
        return Check(False, f"output {got[:300]!r} instead of {want!r}")


@dataclass
class Reading:
    """What the runner takes from a command's comments."""

    promises: list[Promise] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # sample output lines, not checked
    #: Statements about the result that no reader here understands: reported, not judged.
    not_understood: list[str] = field(default_factory=list)
    needs_internet: bool = False


def read_command(command: Command) -> Reading:
    """What the comments say of a command: lines above say what it does (and may say it
    fails), its own line's comment and the lines below say what it shows."""
    reading = Reading()
    notes = [*command.before, command.comment]
    if any(_INTERNET.search(note) for note in notes if note):
        reading.needs_internet = True
    # "結果: パケットロス 100% (通信不能)" says it once, as a loss: not twice.
    failure = [n for n in [*notes, *command.after] if n and _says_it_fails(n)]
    if failure:
        reading.promises.append(Fails("; ".join(failure)))
    for note in command.before:
        if shown := _shown_text(note):
            reading.promises.append(ShowsText(note, shown))
        elif names := _shown_names(note):
            reading.promises.append(ShowsNames(note, names))
    if command.comment:  # `ping ... # 結果: パケットロス 100%`: a result, if it states one
        _read_result(command.comment.strip(), reading, trailing=True)
    for line in command.after:
        _read_result(line.strip(), reading)
    return reading


def _read_result(text: str, reading: Reading, *, trailing: bool = False) -> None:
    """One comment line about what the command shows."""
    if shown := _shown_text(text):
        reading.promises.append(ShowsText(text, shown))
    elif loss := _LOSS.search(text):
        reading.promises.append(PacketLoss(text, int(loss[1] or loss[2])))
    elif reply := _REPLY.search(text):
        ttl = _TTL.search(text)
        reading.promises.append(Reply(text, reply[1], int(ttl[1]) if ttl else None))
    elif names := _shown_names(text):
        reading.promises.append(ShowsNames(text, names))
    elif _KEY_VALUE.match(text) and not trailing:
        reading.promises.append(ShowsLine(text, text))
    elif _says_it_fails(text) or not text.strip("."):
        return
    elif _JUDGEMENT.search(text):
        reading.not_understood.append(text)
    elif not trailing:  # a trailing remark that is not a result is just a remark
        reading.examples.append(text)


def _says_it_fails(note: str) -> bool:
    return bool(
        _FAILURE.search(note) and not _LOSS.search(note) and not _CONDITIONAL_FAILURE.search(note)
    )


def _shown_text(note: str) -> str:
    match = _SHOWS_TEXT.search(note)
    return (match[1] or match[2]) if match else ""


def _shown_names(note: str) -> tuple[str, ...]:
    for pattern in _SHOWS:
        if match := pattern.search(note.strip()):
            listed = next(g for g in match.groups() if g)
            tokens = [t.strip("`'\" ") for t in _TOKEN_SPLIT.split(listed)]
            names = tuple(t for t in tokens if t and _NAME_TOKEN.match(t))
            if names and len(names) == len(tokens):
                return names
    return ()


def read_prose(prose: Prose, vocabulary: frozenset[str] = frozenset()) -> list[Promise]:
    """Promises stated in a paragraph after a block (about that block's last command): the
    addresses a sentence says the output shows, each on the interface it names, if any."""
    text = " ".join(prose.text.split())
    for sentence in re.split(r"(?<=[。.!！])\s+", text):
        items = tuple((m[1], m[2] or "") for m in _ADDRESS.finditer(sentence))
        if items and _ADDRESS_PROSE.search(sentence):
            return [AddressesOn(sentence, items, vocabulary)]
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
