"""podman's settings as the plugin writes them: the one containers.conf builder, and the
ulimits every container of ours gets (rootful podman raises RLIMIT_NOFILE and RLIMIT_NPROC by
default, which fails where the host denies CAP_SYS_RESOURCE)."""

from __future__ import annotations

import json
from collections.abc import Mapping

LIMIT = 1024
LIMITED = ("nofile", "nproc")
#: The ulimits as the REST API takes them (a container's `ulimits`).
ULIMITS = [{"Name": name, "Soft": LIMIT, "Hard": LIMIT} for name in LIMITED]
#: The same as containers.conf's `default_ulimits` (and `podman run --ulimit`) write them.
DEFAULT_ULIMITS = [f"{name}={LIMIT}:{LIMIT}" for name in LIMITED]

Value = str | int | list[str]


def containers_conf(sections: Mapping[str, Mapping[str, Value]]) -> str:
    """A containers.conf: TOML tables of strings, numbers and lists of strings (empty tables
    are left out)."""
    lines = []
    for table, settings in sections.items():
        if settings:
            lines.append(f"[{table}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"
