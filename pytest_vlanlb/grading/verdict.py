"""A step's verdict: pass, fail or cannot judge, the evidence that makes it so, and a hint."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """A verdict's status, written as its value in the JSON, CSV and HTML reports."""

    PASS = "pass"
    FAIL = "fail"
    #: What was seen proves neither (a probe hung, a listing was too long to read, the other
    #: end is down): the hint says what to fix before grading again. It scores as not passed.
    CANNOT_JUDGE = "cannot-judge"
    #: After the run's checkpoint (--vlanlb-upto): not graded, not counted.
    NOT_YET = "not-yet"

    def __str__(self) -> str:
        return self.value


PASS, FAIL, CANNOT_JUDGE, NOT_YET = Status.PASS, Status.FAIL, Status.CANNOT_JUDGE, Status.NOT_YET


@dataclass
class Verdict:
    id: str
    title: str
    status: Status
    evidence: list[str] = field(default_factory=list)
    hint: str = ""
    #: Where the probe's packets went through the router, said (observation/drawing.said_walk),
    #: for a step that did not pass on a probe's evidence; the class page draws it.
    walk: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def cannot_judge(self, hint: str) -> None:
        self.status = Status.CANNOT_JUDGE
        self.hint = hint

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data
