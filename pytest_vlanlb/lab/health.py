"""Is the lab still there? Asked once a lab test fails, so that a lab broken mid-run (a node
killed, the podman API gone) is reported once, in one sentence, instead of as a
traceback per remaining test."""

from __future__ import annotations

from dataclasses import dataclass

from podman.errors import NotFound

from ..podman.api import PodmanApi
from .build import Lab


def lab_breakage(lab: Lab, api: PodmanApi) -> str | None:
    """What broke, as one sentence, or None while the podman API and every node are up."""
    if not api.alive():
        return f"the podman API at {api.url} stopped answering"
    for name, node in lab.nodes.items():
        try:
            node.container.reload()
        except NotFound:
            return f"node {name} (container {node.container_name}) was removed"
        except Exception as exc:  # the API died between the two calls, or worse
            return f"node {name} (container {node.container_name}) cannot be inspected: {exc}"
        state = node.container.attrs.get("State", {})
        if state.get("Status") != "running":
            code = state.get("ExitCode")
            return f"node {name} (container {node.container_name}) is {state.get('Status')}" + (
                f" (exit code {code})" if code is not None else ""
            )
    return None


@dataclass
class LabWatch:
    """The session's lab and podman API, and what broke, once something did."""

    lab: Lab
    api: PodmanApi
    broken: str | None = None

    def check(self) -> str | None:
        """Whether the lab broke (asked once a lab test fails: it may be why)."""
        return lab_breakage(self.lab, self.api)

    def message(self) -> str:
        return (
            f"pytest-vlanlb: the lab broke: {self.broken}. The remaining lab tests fail "
            "with this line; the lab is torn down at the end."
        )
