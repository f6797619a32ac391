"""Announced tolerance: where the text itself says a command may fail.

A workshop says so in many ways: a command is optional (`後片付け(任意)`, "Cleanup
(optional)"), conditional ("delete the sub-interfaces (if they exist)", `入っていない場合は追加`),
or allowed to fail ("errors can be ignored", `エラーは無視して構いません`, "`Cannot find device`
errors are fine when ..."). A careful student who reads that and sees the command fail does
not say the step failed; neither does the runner. The command still runs and its status is
reported, with the words that allowed it. Two limits keep a real defect visible: a command
that hangs is still a failure (an error was allowed, not a hang), and a text that names the
error it allows (a quoted message) allows only a failure showing that message, or the
commands it quotes.

Where the words apply, as a reader takes them:
- a comment on the command's own line: that command;
- comment lines above a run of commands (no blank line between): every command of the run;
- the paragraph right before a block, or right after it: every command of the block;
- a section heading: every command of the section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPTIONAL = "optional"
CONDITIONAL = "conditional"
MAY_FAIL = "allowed to fail"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        MAY_FAIL,
        re.compile(
            # ja: エラーは無視して構いません / エラーが出ても問題ありません / 失敗しても大丈夫
            r"(?:エラー|失敗|警告)[^。！!]*?(?:無視|問題(?:ありません|ない|は?ありません|なし|には?なりません)"
            r"|大丈夫|構いません|構わない|差し支え|気にし(?:なくて|ないで))"
            r"|失敗することがあります|失敗する(?:ことも|かも)"
            r"|(?:エラーになる|エラーが出る|失敗する)(?:場合|こと)があ(?:ります|る)"
            r"|(?:と|ば|場合は?|なら|ときは?)\s*(?:エラーに(?:なります|なる)|失敗(?:します|する))"
            # en: may fail / errors can be ignored / ignore the error / the error is harmless
            r"|\b(?:may|might|can|could|will possibly) (?:also )?fail\b"
            r"|\b(?:will|would) fail (?:if|when|unless)\b|\bfails (?:if|when|unless)\b"
            r"|\b(?:errors?|failures?|warnings?|messages?)\b[^.;!]*?\b(?:(?:can|may) be "
            r"(?:safely )?ignored|ignored|harmless|safe to ignore"
            r"|(?:is|are) (?:fine|ok|okay|expected|normal)"
            r"|no problem|not a problem|(?:does not|doesn'?t|do not|don'?t) matter)"
            r"|\bignore (?:the |any |this |these |such )?(?:errors?|failures?|warnings?)\b"
            r"|\b(?:ok|okay|fine|harmless|no problem)\b[^.;]*\bif (?:this|it|that) fails\b"
            r"|\bif (?:this|it|that) fails\b,? (?:that'?s|it'?s|this is) "
            r"(?:ok|okay|fine|harmless)\b"
            r"|\bsafe to ignore\b",
            re.IGNORECASE,
        ),
    ),
    (
        CONDITIONAL,
        re.compile(
            # ja: (存在する場合) / 既にある場合 / 入っていない場合は追加 / 残っていれば
            # Not a bare ない場合 (if not ...): "届かない場合は Step 3 を確認" is a hint about a
            # failure, not leave to fail.
            r"(?:存在する|存在しない|既に存在する|存在している|既にある|残っている|作成済みの"
            r"|入っていない|インストールされていない|未インストールの)場合"
            r"|存在すれば|残っていれば|あれば削除"
            # en: (if they exist) / if present / if missing / if not installed / if any
            r"|\bif (?:(?:it|they|one|these|those|any|the \w+(?: \w+)?) )?(?:already )?"
            r"(?:exists?|present|left over|remains?)\b"
            r"|\bif (?:(?:it|they|one) )?(?:is |are )?(?:not |isn'?t |aren'?t )?(?:already )?"
            r"(?:installed|missing|absent)\b"
            r"|\bif any\b|\bif needed\b|\bif necessary\b|\bwhen (?:it|they) exists?\b",
            re.IGNORECASE,
        ),
    ),
    (
        OPTIONAL,
        re.compile(
            r"任意|オプション|省略可|省略して(?:も|構)|必要に応じて|必要なら|必要であれば|お好みで"
            r"|\boptional(?:ly)?\b|\bif you (?:like|want|wish|prefer)\b|\bcan be skipped\b"
            r"|\bmay (?:be )?skip(?:ped)?\b",
            re.IGNORECASE,
        ),
    ),
)
#: A quoted fragment in the words: an error message the text allows, or a command it means.
_QUOTED = re.compile(r"`([^`]+)`|「([^」]+)」|\"([^\"]+)\"")


@dataclass(frozen=True)
class Allowance:
    """The document's words that let a command fail, and what they allow."""

    kind: str  # OPTIONAL, CONDITIONAL or MAY_FAIL
    words: str
    #: Fragments the words quote: only a command that shows one (in its source or its
    #: output) is allowed. Empty: every command the words are about.
    quoted: tuple[str, ...] = ()

    def covers(self, source: str, output: str) -> bool:
        if not self.quoted:
            return True
        return any(f in source or f.lower() in output.lower() for f in self.quoted)


def allowance(text: str, *, quoting: bool = False) -> Allowance | None:
    """The tolerance these words announce, if any. With `quoting`, the fragments they quote
    narrow it (prose after a block names the message it allows)."""
    flat = " ".join(text.split())
    for kind, pattern in _PATTERNS:
        if pattern.search(flat):
            quoted: tuple[str, ...] = ()
            if quoting:
                quoted = tuple(
                    q for m in _QUOTED.finditer(flat) if (q := next(g for g in m.groups() if g))
                )
            return Allowance(kind, flat.strip(), quoted)
    return None


def first_allowance(texts: list[str]) -> Allowance | None:
    for text in texts:
        if text and (found := allowance(text)):
            return found
    return None
