"""Grading mode configured from pytest's options: which environments (the command line or a
class file), up to which step, in which language, the report's path. The plugin only
registers what this returns (as pytest-xdist's DSession reads its own options)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ..errors import VlanlbError
from ..model.topology import Topology
from ..observation.words import chosen_language
from ..util.options import on_command_line, option, outside_mode
from .environments import Environment, load_class, parse_names
from .items import GradeReport
from .steps import STEP_IDS


def configure(config: pytest.Config, topology: Callable[[], Topology]) -> GradeReport:
    """The run's grade report (a pytest plugin object). A grading option without a lab to
    grade (--vlanlb-attach or --vlanlb-class) is a usage error."""
    if not (config.getoption("vlanlb_attach") or config.getoption("vlanlb_class")):
        given = on_command_line(config, "grade")
        if all("doc" in o.also for o in given):  # the report and its language serve both
            raise outside_mode(
                given, "grading or document mode", "--vlanlb-attach, --vlanlb-class or --vlanlb-doc"
            )
        raise outside_mode(given, "grading", "--vlanlb-attach or --vlanlb-class")
    return GradeReport(
        environments(config),
        topology(),
        config.getoption("vlanlb_report"),
        several=bool(config.getoption("vlanlb_class")),
        identity=option(config, "identity"),
        language=language(config),
    )


def language(config: pytest.Config) -> str:
    return chosen_language(option(config, "lang"))


def environments(config: pytest.Config) -> list[Environment]:
    url = option(config, "url")
    upto = config.getoption("vlanlb_upto")
    if upto is not None and upto not in STEP_IDS:
        raise VlanlbError(f"--vlanlb-upto {upto}: not a step; the steps are {', '.join(STEP_IDS)}")
    class_file = config.getoption("vlanlb_class")
    if class_file:
        return load_class(Path(class_file), url, STEP_IDS, upto)
    names = parse_names(config.getoption("vlanlb_names"))
    return [Environment("default", url, names, upto)]
