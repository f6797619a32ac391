"""`vlanlb`: housekeeping outside a test run (set a host up, build the node image, remove
leftovers)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .document.sandbox import enter_kept, remove_stale_sandboxes
from .document.store import ensure_image_store, image_store, ready_store
from .errors import PreflightError, VlanlbError
from .grading.environments import chosen_environment
from .grading.messages import Speaker
from .grading.platform import check_step
from .grading.solving import solve
from .grading.steps import STEP_IDS
from .host.graphviz import render_svg
from .host.image import ImageRecipe, ensure_alpine_standin, ensure_image, standin_tag
from .host.preflight import preflight
from .host.setup import (
    Progress,
    check_tools,
    install_packages,
    podman_chooses_its_network_backend,
    sandbox_crun,
    unpack_crun,
)
from .host.sweep import remove_leftovers
from .model.topology import load_topology, resolve_topology, topology_dirs
from .observation.drawing import topology_dot
from .observation.words import LANGUAGES, default_language
from .podman.api import (
    NETWORK_BACKENDS,
    api_facts,
    connect,
    installed_network_backends,
    podman_api,
    start_api,
)

#: The commands `vlanlb --help` lists (old names it still takes are not listed).
COMMANDS = (
    "setup",
    "build-image",
    "network-backends",
    "enter",
    "cleanup",
    "graph",
    "check",
    "solve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlanlb", description=__doc__)
    parser.add_argument("--url", help="podman API URL (default: local, started if needed)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{" + ",".join(COMMANDS) + "}",  # not the old names
    )
    setup = commands.add_parser(
        "setup",
        help="make this host ready: system packages (apt), then the node image, document "
        "mode's alpine stand-in and its image store",
    )
    setup.add_argument(
        "--no-packages",
        action="store_true",
        help="install no packages (the host's administrator does): only check the tools",
    )
    commands.add_parser(
        "build-image",
        help="build the built-in node image (and document mode's alpine stand-in) if missing",
    )
    commands.add_parser(
        "network-backends", help="check that podman works with each installed network backend"
    )
    commands.add_parser("backends")  # its old name, kept for one release (not listed)
    enter = commands.add_parser(
        "enter", help="a shell (or COMMAND) in a kept document sandbox (--vlanlb-keep)"
    )
    enter.add_argument("run", help="the run's id, as the keep message names it")
    enter.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    cleanup = commands.add_parser(
        "cleanup", help="remove labs left by runs that died (kept labs only with --kept/--run)"
    )
    cleanup.add_argument("--run", help="remove this run's lab (e.g. one kept with --vlanlb-keep)")
    cleanup.add_argument("--kept", action="store_true", help="also remove kept labs")
    cleanup.add_argument("--dry-run", action="store_true", help="list, do not remove")
    graph = commands.add_parser(
        "graph", help="draw a topology as SVG: VLANs, nodes, interfaces, addresses, the VIP"
    )
    graph.add_argument(
        "--vlanlb-topology",
        dest="topology",
        default="basic",
        metavar="NAME",
        help="a topology name (this folder's topologies/ first) or a YAML file (default: basic)",
    )
    graph.add_argument(
        "--vlanlb-lang",
        dest="lang",
        choices=LANGUAGES,
        default=None,
        help="the picture's language (default: ja where the locale is Japanese, else en)",
    )
    graph.add_argument(
        "-o", dest="output", metavar="FILE", help="where to write the SVG (default: NAME.svg)"
    )
    check = commands.add_parser(
        "check",
        help="grade one step of a student's lab: one line (PASS ... or FAIL: hint), exit 0 or 1, "
        "for a lab platform's verify/check script",
    )
    check.add_argument("step", choices=STEP_IDS, metavar="STEP", help=", ".join(STEP_IDS))
    solve = commands.add_parser(
        "solve",
        help="bring a student's lab to the workshop's state after STEP, printing each command "
        "it runs (for a student who fell behind); never while the lab is being graded",
    )
    solve.add_argument(
        "--upto", required=True, choices=STEP_IDS, metavar="STEP", help=", ".join(STEP_IDS)
    )
    solve.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    for command in (check, solve):
        _student_options(command)
    return parser


def _student_options(command: argparse.ArgumentParser) -> None:
    """Which lab, as grading mode's options say it."""
    command.add_argument(
        "--vlanlb-names",
        dest="names",
        metavar="router=R,a=A,b=B",
        help="the student's container names (default router, a, b)",
    )
    command.add_argument(
        "--vlanlb-class",
        dest="class_file",
        metavar="FILE",
        help="a class file (with --environment)",
    )
    command.add_argument("--environment", metavar="NAME", help="the class file's entry to use")
    command.add_argument(
        "--vlanlb-topology",
        dest="topology",
        default="basic",
        metavar="NAME",
        help="the workshop's topology (default: basic)",
    )
    command.add_argument(
        "--vlanlb-lang", dest="lang", choices=LANGUAGES, default=None, help="ja or en"
    )
    command.add_argument(
        "--vlanlb-identity", dest="identity", metavar="KEY", help="ssh key for an ssh:// --url"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "setup":
            for made in set_up(packages=not args.no_packages, progress=_say):
                print(made)
            return 0
        if args.command == "graph":
            return draw(args.topology, args.lang or default_language(), args.output)
        if args.command in ("check", "solve"):
            return on_student_lab(args)
        if args.command == "enter":
            enter_kept(args.run, args.argv)  # returns only when there is no such sandbox
        preflight()
        if args.command in ("network-backends", "backends"):
            return check_network_backends()
        if args.command == "build-image":
            with podman_api(args.url) as api:
                client = api.client()
                node = ensure_image(client, ImageRecipe())
                print(node)
                standin = ensure_alpine_standin(client, node)  # document mode's `alpine`
                print(standin)
                # ... in its sandboxes' read-only image store
                print(ensure_image_store(client, standin, image_store(standin)))
            return 0
        # Networks live in one backend's configuration: without --url, sweep each installed
        # backend (containers and host links are found by the first).
        network_backends = ["auto"] if args.url else installed_network_backends() or ["auto"]
        items = []
        for network_backend in network_backends:
            with podman_api(args.url, network_backend) as api:
                items += remove_leftovers(
                    api.client(), include_kept=args.kept, run_id=args.run, dry_run=args.dry_run
                )
        verb = "found" if args.dry_run else "removed"
        sandboxes = remove_stale_sandboxes(
            include_kept=args.kept, run_id=args.run, dry_run=args.dry_run
        )
        for name in sandboxes:
            print(f"{verb} document sandbox {name}")
        for item in dict.fromkeys(items):
            kept = " (kept)" if item.kept else ""
            print(f"{verb} {item.kind} {item.name} of run {item.run_id}{kept}")
        if not items and not sandboxes:
            print("nothing to remove")
        return 0
    except VlanlbError as exc:
        print(f"vlanlb: {exc}", file=sys.stderr)
        return 2


def on_student_lab(args: argparse.Namespace) -> int:
    """`vlanlb check STEP` and `vlanlb solve --upto STEP` on one student's lab."""
    environment = chosen_environment(
        args.url, STEP_IDS, args.names, args.class_file, args.environment
    )
    topology = load_topology(resolve_topology(args.topology, topology_dirs(Path.cwd())))
    speaker = Speaker(args.lang or default_language())
    api = connect(environment.url, network_backend="default", identity=args.identity)
    try:
        client = api.client(timeout=60)
        if args.command == "check":
            return check_step(environment, topology, client, args.step, speaker)
        outcome = solve(
            environment, topology, client, args.upto, dry_run=args.dry_run, speaker=speaker
        )
        for verdict in outcome.verdicts or ():
            print(f"{speaker.status(verdict.status.value)} {verdict.id}: {verdict.title}")
        return 0 if (outcome.solved or (args.dry_run and not outcome.unfixable)) else 1
    finally:
        api.stop()


def draw(name: str, language: str, output: str | None) -> int:
    """`vlanlb graph`: the topology drawn by graphviz, written as SVG."""
    topology = load_topology(resolve_topology(name, topology_dirs(Path.cwd())))
    svg = render_svg(topology_dot(topology, language))
    target = Path(output or f"{topology.name}.svg")
    target.write_text(svg, encoding="utf-8")
    print(f"wrote {target}: topology {topology.name} ({topology.source})")
    return 0


def _say(message: str) -> None:
    print(f"vlanlb setup: {message}", file=sys.stderr)


def check_network_backends() -> int:
    """Start a private podman API per network backend (and one with podman's own choice); 1 if
    any fails."""
    installed = installed_network_backends()
    failed = 0
    for network_backend in (None, *NETWORK_BACKENDS):
        label = network_backend or "podman's own choice"
        if network_backend is not None and network_backend not in installed:
            print(f"{label}: not installed")
            failed += network_backend == "netavark"  # the default backend must be there
            continue
        api = start_api(network_backend=network_backend)
        try:
            version, seen = api_facts(api.url)
        finally:
            api.stop()
        ok = network_backend in (None, seen)
        failed += not ok
        print(f"{label}: podman {version} uses {seen}" + ("" if ok else " (NOT what was asked)"))
    if failed:
        print("vlanlb: a network backend is missing or broken: run `vlanlb setup`", file=sys.stderr)
    return 1 if failed else 0


def set_up(*, packages: bool, progress: Progress = print) -> list[str]:
    """Packages (unless told not to), document mode's crun, the tools' check, podman's own
    choice of network backend, then the images. Returns what it did and found, a line each:
    the host's changes first, the images last (node image, alpine stand-in, image store),
    each said as built now or present."""
    if os.geteuid() != 0:
        raise PreflightError("`vlanlb setup` needs root: run it with sudo")
    done = [install_packages(progress), unpack_crun(progress)] if packages else []
    check_tools()
    if not packages:
        crun = sandbox_crun()
        done.append(f"document mode's crun: {crun or 'none (install crun for document mode)'}")
    done.append(podman_chooses_its_network_backend())
    done.append("podman's default OCI runtime: left as it was (setup installs no crun)")
    with podman_api(None) as api:
        client = api.client()
        recipe = ImageRecipe()
        fresh = not client.images.exists(recipe.tag)
        node = ensure_image(client, recipe, progress)
        done_images = [_image_line("node image", node, fresh)]
        fresh = not client.images.exists(standin_tag(node))
        standin = ensure_alpine_standin(client, node, progress)
        done_images.append(_image_line("alpine stand-in", standin, fresh))
        fresh = ready_store(image_store(standin)) is None
        store = ensure_image_store(client, standin, image_store(standin))
        done_images.append(_image_line("sandbox image store", str(store), fresh))
    return [*done, *done_images]


def _image_line(kind: str, name: str, built: bool) -> str:
    return f"{kind}: {name} ({'built now' if built else 'present'})"
