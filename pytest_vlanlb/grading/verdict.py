"""A step's verdict: pass, fail or cannot judge, the evidence that makes it so, and a hint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS = "pass"
FAIL = "fail"
#: What was seen proves neither (a probe hung, a listing was too long to read, the other
#: end is down): the hint says what to fix before grading again. It scores as not passed.
CANNOT_JUDGE = "cannot-judge"
#: After the run's checkpoint (--vlanlb-upto): not graded, not counted.
NOT_YET = "not-yet"


@dataclass
class Verdict:
    id: str
    title: str
    status: str  # PASS, FAIL or CANNOT_JUDGE
    evidence: list[str] = field(default_factory=list)
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def cannot_judge(self, hint: str) -> None:
        self.status = CANNOT_JUDGE
        self.hint = hint

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
