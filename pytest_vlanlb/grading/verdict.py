"""A step's verdict: pass or fail, the evidence that makes it so, and a hint on failure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Verdict:
    id: str
    title: str
    status: str  # "pass" or "fail"
    evidence: list[str] = field(default_factory=list)
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
