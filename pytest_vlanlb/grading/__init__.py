"""Grading mode: a student's own lab, judged step by step without changing it.

The grader attaches to existing containers and only reads and probes: ping, curl or busybox
wget, `ip addr`/`ip route`, `/proc`, `iptables -S` and `iptables-save -c` (counters are read,
never zeroed). Each step gets a verdict with evidence and, on failure, a hint naming the
likely mistake and the fix. Steps are judged on their own wherever that is possible, so one
early mistake does not fail everything after it.

- `environments`: which labs (the command line, or a class file);
- `student`: a student's lab, attached to, with every probe made once;
- `steps`: the table of steps; `judges`: how each is judged; `hints`: the commands a hint
  gives, rendered from model/commands.py; `verdict`: a step's result;
- `items`: the pytest items (one per environment and step) and the report;
- `solving`: `vlanlb solve`, the one part that changes a lab (the workshop's commands, for a
  student who fell behind), and `lab_lock`, which keeps it from running while a lab is graded.
"""

from .environments import NODES, Environment, load_class, parse_names
from .items import GradeReport, grading_collectors
from .steps import STEP_IDS, STEPS, grade, titles
from .student import StudentLab
from .verdict import Verdict

__all__ = [
    "NODES",
    "STEPS",
    "STEP_IDS",
    "Environment",
    "GradeReport",
    "StudentLab",
    "Verdict",
    "grade",
    "grading_collectors",
    "load_class",
    "parse_names",
    "titles",
]
