"""Benchmark: document mode against a plain bash script of the same commands.

Both in one invocation, alternating, so the ratio compares like with like on a noisy host:
  - "document mode": `pytest --vlanlb-doc DOC1 --vlanlb-doc DOC2` (every check, the report,
    the diagnosis of a failed step, the podman API it starts, the final cleanup);
  - "plain script": the same commands, with the same rewrites (apk as a tool check, internet
    commands left out, VLAN links emulated where the kernel lacks 8021q) typed one after
    another into one bash script, each with the same time limit, with no checks at all, run
    in a machine made ready beforehand (a sandbox started before the clock starts: the
    reader's own VM). It is generated from the documents here, at run time, so the project
    holds no copy of them. Document mode's time includes making its sandbox.
Usage (as root, after scripts/setup):

    .venv/bin/python bench/documents.py [--rounds N] [DOC.md ...]

Prints wall times per round, each round's verdicts (pytest's summary line: the same in every
round), the medians and the ratio (target: document mode <= 0.3x the plain script).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_vlanlb.document.mapping import Action, RunContext, document_nics, plan_command  # noqa: E402
from pytest_vlanlb.document.markdown import Document, Section, load_document  # noqa: E402
from pytest_vlanlb.document.runner import is_runnable, typed_commands  # noqa: E402
from pytest_vlanlb.document.sandbox import WIRE_NETNS, start_sandbox  # noqa: E402
from pytest_vlanlb.document.store import document_image_store  # noqa: E402
from pytest_vlanlb.host.naming import RunNames  # noqa: E402
from pytest_vlanlb.host.wires import kernel_supports_8021q  # noqa: E402

TARGET = 0.3  # document mode at most 0.3 of the plain script (its waits settled early)
LIMIT = 15  # seconds per command, as document mode's default --vlanlb-doc-timeout
WORKSHOP = ROOT.parent / "shared" / "workshop"


def in_order(paths: list[Path]) -> list[tuple[Document, Section]]:
    documents = [load_document(p) for p in paths]
    sections = [
        (d, s) for d in documents for s in d.sections if is_runnable(s) and not s.is_cleanup
    ]
    sections += [
        (d, s) for d in reversed(documents) for s in d.sections if is_runnable(s) and s.is_cleanup
    ]
    return sections


def plain_script(paths: list[Path], context: RunContext) -> str:
    lines = []
    for document, section in in_order(paths):
        for typed in typed_commands(document, section):
            plan = plan_command(typed.block.text, typed.command, context, typed.needs_internet)
            words = typed.command.parts[0].words
            if plan.action is Action.RUN and words[0].literal == "export":
                lines.append(plan.script)  # in the script's own shell, as typed
                for word in words[1:]:  # and known to the planner, as the runner learns it
                    name, _, value = word.value(context.env).partition("=")
                    context.env[name] = value
            elif plan.action is Action.RUN:
                lines.append(f"timeout -s KILL {LIMIT} bash -c {shlex.quote(plan.script)}")
            elif plan.action is Action.EMULATE and plan.emulate == "vlan":
                name = shlex.quote(plan.emulate_args[0])
                lines.append(
                    f"ip link add {name} type veth peer name {name} netns {WIRE_NETNS} && "
                    f"ip -n {WIRE_NETNS} link set {name} up"
                )
    return "\n".join(lines) + "\n"


def run_plain(paths: list[Path], store: Path) -> float:
    commands = [t.command for d, s in in_order(paths) for t in typed_commands(d, s)]
    sandbox = start_sandbox(RunNames.new().run_id, store, document_nics(commands))
    try:
        script = plain_script(paths, RunContext(kernel_supports_8021q()))
        start = time.perf_counter()
        with sandbox.popen(
            ["bash", "-c", script],
            env=sandbox.environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as plain:
            plain.wait()
        return time.perf_counter() - start
    finally:
        sandbox.close()


def run_documents(paths: list[Path]) -> float:
    command = [str(ROOT / ".venv/bin/pytest"), "-q", "-p", "no:cacheprovider"]
    for path in paths:
        command += ["--vlanlb-doc", str(path)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):  # 1: a step failed, as k8s_lb's Step 6 does
        sys.exit(f"document mode did not run ({result.returncode}):\n{result.stdout[-3000:]}")
    print(f"    {result.stdout.strip().splitlines()[-1]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "documents",
        nargs="*",
        type=Path,
        default=[WORKSHOP / "vlan_ja.md", WORKSHOP / "k8s_lb_ja.md"],
    )
    args = parser.parse_args()
    store = document_image_store(None, print)
    documents, plain = [], []
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}:")
        documents.append(run_documents(args.documents))
        print(f"  document mode {documents[-1]:6.1f} s")
        plain.append(run_plain(args.documents, store))
        print(f"  plain script  {plain[-1]:6.1f} s")
    doc, base = statistics.median(documents), statistics.median(plain)
    ratio = doc / base
    print(f"medians: document mode {doc:.1f} s, plain script {base:.1f} s")
    print(f"ratio {ratio:.2f} (target <= {TARGET}): {'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
