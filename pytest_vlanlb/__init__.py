"""pytest-vlanlb: the 'K8s Service (LoadBalancer) with iptables' workshop as a self-building lab.

What a test of the user's own imports from here: the probes (ping, curl, their results as
facts), the router's counters around a probe, and netfilter's trace of a probe's packets.
They are loaded on first use, so that a run that does not use the plugin imports none of it
(nor podman-py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lab.tracing import Traced, traced
    from .observation.counters import Observation, observe
    from .observation.probes import (
        HttpOutcome,
        HttpResult,
        PingResult,
        http_expecting,
        http_get,
        http_get_negative,
        http_many,
        ping,
        ping_lost,
        run_together,
    )

__version__ = "0.1.0"

_PUBLIC = {
    "Observation": "observation.counters",
    "observe": "observation.counters",
    "Traced": "lab.tracing",
    "traced": "lab.tracing",
    **{
        name: "observation.probes"
        for name in (
            "HttpOutcome",
            "HttpResult",
            "PingResult",
            "http_expecting",
            "http_get",
            "http_get_negative",
            "http_many",
            "ping",
            "ping_lost",
            "run_together",
        )
    },
}
__all__ = [
    "HttpOutcome",
    "HttpResult",
    "Observation",
    "PingResult",
    "Traced",
    "http_expecting",
    "http_get",
    "http_get_negative",
    "http_many",
    "observe",
    "ping",
    "ping_lost",
    "run_together",
    "traced",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
