"""The plugin's options, declared once (`OPTIONS`: the command line, the ini file, the
reference docs' table), read from pytest's config (the command line first, then the ini
file), and progress lines written where pytest prints (past its output capture)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..errors import VlanlbError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Option:
    """One --vlanlb-NAME option; `ini` also makes it the ini key vlanlb_NAME (with `default`
    there: the command line's default is always None, so that an ini value shows through)."""

    name: str
    group: str  # "lab", "doc" or "grade": the options of one mode
    help: str
    default: str | None = None
    choices: tuple[str, ...] = ()
    ini: bool = False
    flag: bool = False  # store_true
    metavar: str | None = None
    type: type | None = None
    also: tuple[str, ...] = ()  # other modes that read it too ("doc")

    @property
    def dest(self) -> str:
        return f"vlanlb_{self.name.replace('-', '_')}"


GROUPS = {
    "lab": "workshop lab (pytest-vlanlb)",
    "doc": "running the workshop's documents (pytest-vlanlb)",
    "grade": "grading a student's lab (pytest-vlanlb)",
}
OPTIONS = (
    Option("topology", "lab", "topology name from topologies/ or a YAML path", "basic", ini=True),
    Option(
        "image",
        "lab",
        "container image for the nodes instead of the built-in Debian node image (needs ip, "
        "iptables, ping, curl, busybox nc)",
        ini=True,
    ),
    Option(
        "url",
        "lab",
        "podman API URL (unix:// or ssh://); default: a running local service, else one "
        "started for the session",
        ini=True,
    ),
    Option(
        "wire",
        "lab",
        "VLAN segments as 802.1Q sub-interfaces or veth pairs (auto: 8021q where the kernel "
        "has it)",
        "auto",
        ("auto", "8021q", "veth"),
        ini=True,
    ),
    Option(
        "identity",
        "lab",
        "ssh key for an ssh:// --vlanlb-url (default: $CONTAINER_SSHKEY, else ssh's own defaults)",
        ini=True,
    ),
    Option(
        "network-backend",
        "lab",
        "podman network backend for the lab (auto: a running service's own, else netavark if "
        "installed; netavark/cni: a private service with that backend)",
        "auto",
        ("auto", "netavark", "cni"),
        ini=True,
    ),
    Option(
        "keep",
        "lab",
        "keep the lab after the run for debugging; prints how to remove it",
        flag=True,
    ),
    Option(
        "doc",
        "doc",
        "run this workshop document's steps as tests, as written (repeat: in that order, e.g. "
        "vlan_ja.md then k8s_lb_ja.md)",
        metavar="PATH.md",
    ),
    Option(
        "doc-timeout",
        "doc",
        "time limit of each document command; a command still running then counts as timed "
        "out (default 15)",
        "15",
        ini=True,
        metavar="SECONDS",
        type=float,
    ),
    Option(
        "attach",
        "grade",
        "grade existing containers step by step instead of building a lab; read-only",
        flag=True,
    ),
    Option("names", "grade", "container names, e.g. router=R,a=A,b=B (default router, a, b)"),
    Option(
        "class",
        "grade",
        "YAML file listing several environments to grade (implies --vlanlb-attach)",
    ),
    Option(
        "report",
        "grade",
        "write the grade as JSON here (a folder, one file per environment, with --vlanlb-class); "
        "with --vlanlb-doc, a folder: index.html, every step's verdict, diagnosis and walk",
        also=("doc",),
    ),
    Option(
        "lang",
        "grade",
        "the language of every title, verdict, evidence line and hint, and of the class "
        "report (default: ja where LC_ALL or LANG starts with ja, else en)",
        "",
        ini=True,
        metavar="ja|en",
        also=("doc",),
    ),
    Option(
        "upto",
        "grade",
        "grade the steps up to this one (env, web-server, firewall, vip, dnat, snat, "
        "vip-curl); later ones are 'not yet' and do not count (a class file's `upto` wins)",
        metavar="STEP",
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    groups = {key: parser.getgroup(f"vlanlb-{key}", title) for key, title in GROUPS.items()}
    for o in OPTIONS:
        kind: dict[str, object] = {"action": "store_true"} if o.flag else {"default": None}
        if o.name == "doc":
            kind["action"] = "append"
        for key in ("choices", "metavar", "type"):
            if getattr(o, key):
                kind[key] = getattr(o, key)
        ini = f" (ini: {o.dest})" if o.ini or o.name == "doc" else ""
        groups[o.group].addoption(f"--vlanlb-{o.name}", dest=o.dest, help=o.help + ini, **kind)
        if o.ini:
            parser.addini(o.dest, o.help, default=o.default)
    parser.addini("vlanlb_doc", "workshop documents to run, in order", type="paths", default=[])


def option(config: pytest.Config, name: str) -> str | None:
    """--vlanlb-NAME, else the ini key vlanlb_NAME; None when neither is set."""
    value = config.getoption(f"vlanlb_{name}")
    if value is None:
        value = config.getini(f"vlanlb_{name}")
    return str(value) if value else None


def on_command_line(config: pytest.Config, group: str, besides: str | None = None) -> list[Option]:
    """The options of `group` given on the command line (an option outside its mode is a
    usage error there; in the ini file it is configuration for when the mode runs). With
    `besides` (a mode that runs), not the options that mode reads too."""
    return [
        o
        for o in OPTIONS
        if o.group == group
        and config.getoption(o.dest) not in (None, False, [])
        and (besides is None or besides not in o.also)
    ]


def outside_mode(given: list[Option], mode: str, fix: str) -> VlanlbError:
    """One usage error for options given without their mode."""
    names = [f"--vlanlb-{o.name}" for o in given]
    if len(names) == 1:
        return VlanlbError(f"{names[0]} is a {mode} option: add {fix}")
    return VlanlbError(f"{', '.join(names[:-1])} and {names[-1]} are {mode} options: add {fix}")


def progress_writer(config: pytest.Config) -> Progress:
    """Progress lines ("[vlanlb] ...") on pytest's terminal, even while it captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def write(message: str) -> None:
        if reporter is None or capture is None:
            print(f"[vlanlb] {message}")
            return
        with capture.global_and_fixture_disabled():
            for line in message.splitlines():
                reporter.write_line(f"[vlanlb] {line}")

    return write


def drawings_folder(config: pytest.Config) -> Path:
    """Where a run writes what it draws (the walks of failures): `vlanlb-walks` beside the
    junit XML where there is one (a CI job keeps that folder), else in pytest's temporary
    folder, else the system's."""
    junit = config.getoption("xmlpath", None)
    temporary = getattr(config, "_tmp_path_factory", None)  # absent with -p no:tmpdir
    if junit:
        base = Path(junit).parent
    elif temporary is not None:
        base = temporary.getbasetemp()
    else:
        base = Path(tempfile.gettempdir())
    return base / "vlanlb-walks"
