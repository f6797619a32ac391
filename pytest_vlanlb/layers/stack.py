"""The layers applied to one lab for one test, reverted in reverse order afterwards."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import LabBuildError
from ..lab import Lab
from .catalog import Layer, ordered
from .engine import best_effort_undo, run_steps
from .state import base_state, normalise


@dataclass
class LayerStack:
    """Layers applied to a lab, reverted in reverse order, then checked back to base state."""

    lab: Lab
    applied: list[Layer] = field(default_factory=list)

    def apply(self, *names: str) -> LayerStack:
        ordered([*self.names(), *names])  # rejects a second firewall, a layer twice
        new = ordered(names)
        steps = [step for lay in new for step in lay.steps]
        try:
            run_steps(self.lab, steps, undo=False)
        except BaseException:
            best_effort_undo(self.lab, steps)
            raise
        self.applied.extend(new)
        return self

    def names(self) -> list[str]:
        return [lay.name for lay in self.applied]

    def revert(self) -> None:
        steps = [step for lay in self.applied for step in lay.steps]
        self.applied.clear()
        now = normalise(run_steps(self.lab, steps, undo=True, report_state=True))
        base = base_state(self.lab)
        if now != base:
            diff = difflib.unified_diff(
                base.splitlines(), now.splitlines(), "base", "now", lineterm=""
            )
            raise LabBuildError(
                "the lab did not return to its base state after reverting layers:\n"
                + "\n".join(diff)
            )
