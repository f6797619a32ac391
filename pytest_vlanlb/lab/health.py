"""Is the lab still there? Asked once a lab test fails, so that a lab broken mid-run (a node
killed, the podman service gone) is reported once, in one sentence, instead of as a
traceback per remaining test."""

from __future__ import annotations

from podman.errors import NotFound

from ..podman.api import PodmanService
from .build import Lab


def lab_breakage(lab: Lab, service: PodmanService) -> str | None:
    """What broke, as one sentence, or None while the service and every node are up."""
    if not service.alive():
        return f"the podman service at {service.url} stopped answering"
    for name, node in lab.nodes.items():
        try:
            node.container.reload()
        except NotFound:
            return f"node {name} (container {node.container_name}) was removed"
        except Exception as exc:  # the service died between the two calls, or worse
            return f"node {name} (container {node.container_name}) cannot be inspected: {exc}"
        state = node.container.attrs.get("State", {})
        if state.get("Status") != "running":
            code = state.get("ExitCode")
            return f"node {name} (container {node.container_name}) is {state.get('Status')}" + (
                f" (exit code {code})" if code is not None else ""
            )
    return None
