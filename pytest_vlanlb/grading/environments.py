"""Which labs to grade: one environment from the command line, or a class file of many."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ClassFileError, VlanlbError
from ..model.topology import unknown_key

#: The workshop's node names, the keys of --vlanlb-names and of a class file's `names`: each
#: maps to the container that plays that node in the student's lab.
NODES = ("router", "a", "b")
#: The keys a class file may have, at the top and in each environment.
CLASS_KEYS = ("environments", "weights")
ENVIRONMENT_KEYS = ("name", "url", "prefix", "names", "upto")


@dataclass(frozen=True)
class Environment:
    """One student's lab: where its podman answers, what its containers are called, the
    last step to grade (a checkpoint mid-workshop; None: all) and each step's weight."""

    name: str
    url: str | None
    names: Mapping[str, str]
    upto: str | None = None
    weights: Mapping[str, float] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "names": dict(self.names), "upto": self.upto}

    def weight(self, step: str) -> float:
        return self.weights.get(step, 1.0)

    def graded(self, step: str, steps: tuple[str, ...]) -> bool:
        """Whether `step` is graded in this run (not after the checkpoint)."""
        return self.upto is None or steps.index(step) <= steps.index(self.upto)


def check_step(step: object, steps: tuple[str, ...], source: str, field_name: str) -> str:
    if not isinstance(step, str) or step not in steps:
        raise ClassFileError(
            source, field_name, f"{step!r} is not a step; the steps are {', '.join(steps)}"
        )
    return step


def parse_names(text: str | None, prefix: str = "") -> dict[str, str]:
    """`router=R,a=A,b=B` (any subset) over the defaults, optionally prefixed."""
    names = {node: f"{prefix}{node}" for node in NODES}
    for part in filter(None, (text or "").split(",")):
        node, _, name = part.partition("=")
        if node not in NODES or not name:
            raise VlanlbError(
                f"--vlanlb-names: {part!r} is not ROLE=NAME with ROLE one of {', '.join(NODES)}"
            )
        names[node] = name
    return names


def check_keys(data: Mapping[Any, Any], keys: tuple[str, ...], source: str, where: str) -> None:
    """A misspelt key is an error: `prefx: alice-` must not grade the default containers."""
    for key in data:
        if key not in keys:
            field = f"{where}.{key}" if where else str(key)
            raise ClassFileError(source, field, unknown_key(str(key), keys))


def load_class(
    path: Path, default_url: str | None, steps: tuple[str, ...] = (), upto: str | None = None
) -> list[Environment]:
    """A class file: `environments: [{name, url?, prefix? | names?, upto?}, ...]` and
    `weights: {STEP: NUMBER}`; `upto` (--vlanlb-upto) for the environments without their own."""
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ClassFileError(source, "", f"cannot read the class file: {exc}") from exc
    if isinstance(data, dict):
        check_keys(data, CLASS_KEYS, source, "")
    entries = data.get("environments") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ClassFileError(source, "environments", "must be a non-empty list")
    weights = load_weights(data.get("weights"), steps, source)
    environments: list[Environment] = []
    for index, entry in enumerate(entries):
        where = f"environments[{index}]"
        if isinstance(entry, dict):
            check_keys(entry, ENVIRONMENT_KEYS, source, where)
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ClassFileError(source, f"{where}.name", "is required (a string)")
        names = entry.get("names") or {}
        if not isinstance(names, dict):
            raise ClassFileError(source, f"{where}.names", f"maps {', '.join(NODES)} to names")
        check_keys(names, NODES, source, f"{where}.names")
        prefix = entry.get("prefix", "")
        if not isinstance(prefix, str):
            raise ClassFileError(source, f"{where}.prefix", "must be a string (alice-)")
        for node, name in names.items():
            # A name outside the prefix says two students' labs at once: which is meant?
            if prefix and not str(name).startswith(prefix):
                raise ClassFileError(
                    source,
                    f"{where}.names.{node}",
                    f"{name!r} disagrees with prefix {prefix!r} (which gives "
                    f"{prefix}{node!s}): keep one of them, or a name that starts with it",
                )
        resolved = {node: str(names.get(node, f"{prefix}{node}")) for node in NODES}
        if entry["name"] in {e.name for e in environments}:
            raise ClassFileError(source, f"{where}.name", f"duplicate name {entry['name']!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", entry["name"]):
            raise ClassFileError(source, f"{where}.name", "letters, digits, . _ - only")
        own = entry.get("upto")
        checkpoint = check_step(own, steps, source, f"{where}.upto") if own is not None else upto
        environment = Environment(
            entry["name"], entry.get("url") or default_url, resolved, checkpoint, weights
        )
        for earlier in environments:
            if (earlier.url, dict(earlier.names)) == (environment.url, resolved):
                raise ClassFileError(
                    source,
                    where,
                    f"grades the same containers as {earlier.name!r} "
                    f"({', '.join(resolved.values())}): give it its own prefix or names",
                )
        environments.append(environment)
    return environments


def load_weights(data: object, steps: tuple[str, ...], source: str) -> dict[str, float]:
    """`weights: {vip-curl: 3}`: a step's weight in the score (default 1)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClassFileError(source, "weights", "maps steps to numbers (vip-curl: 3)")
    check_keys(data, steps, source, "weights")
    weights = {}
    for step, weight in data.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ClassFileError(source, f"weights.{step}", f"{weight!r}: a number, 0 or more")
        weights[str(step)] = float(weight)
    return weights


def chosen_environment(
    url: str | None,
    steps: tuple[str, ...],
    names: str | None = None,
    class_file: str | None = None,
    name: str | None = None,
) -> Environment:
    """The one lab a `vlanlb solve` or `vlanlb check` works on: a class file's entry by name,
    or the containers --vlanlb-names gives (default router, a, b)."""
    if class_file is None:
        if name is not None:
            raise VlanlbError("--environment NAME picks an entry of --vlanlb-class FILE: give both")
        return Environment("default", url, parse_names(names))
    if names is not None:
        raise VlanlbError(
            "--vlanlb-names and --vlanlb-class both say which containers: keep one of them"
        )
    entries = load_class(Path(class_file), url, steps)
    known = ", ".join(e.name for e in entries)
    if name is None:
        raise VlanlbError(f"{class_file}: which environment? add --environment NAME ({known})")
    for entry in entries:
        if entry.name == name:
            return entry
    raise VlanlbError(f"{class_file}: no environment named {name!r}; the class has {known}")
