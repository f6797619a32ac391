"""Benchmark: document mode against a plain bash script of the same commands.

Both in one invocation, alternating, so the ratio compares like with like on a noisy host:
  - "document mode": `pytest --vlanlb-doc DOC1 --vlanlb-doc DOC2` (every check, the report,
    the diagnosis of a failed step, the podman service it starts, the final cleanup);
  - "plain script": the same commands, rewritten the same way (names, $IF, the alpine
    stand-in, apk as a tool check, internet commands left out) and typed one after another
    into one bash script, each with the same time limit, with no checks at all. It is
    generated from the documents here, at run time, so the project holds no copy of them.
Usage (as root, after scripts/setup):

    .venv/bin/python bench/documents.py [--rounds N] [DOC.md ...]

Prints wall times per round, the medians and the ratio (target: document mode < 2x plain).
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

from pytest_vlanlb.document.mapping import Action, RunContext, plan_command  # noqa: E402
from pytest_vlanlb.document.markdown import load_document  # noqa: E402
from pytest_vlanlb.document.runner import is_runnable, typed_commands  # noqa: E402
from pytest_vlanlb.image import ImageRecipe, standin_tag  # noqa: E402
from pytest_vlanlb.lab import remove_run  # noqa: E402
from pytest_vlanlb.naming import RunNames  # noqa: E402
from pytest_vlanlb.podman_service import connect, containers_conf  # noqa: E402
from pytest_vlanlb.wires import WireKind, create_wires, kernel_supports_8021q  # noqa: E402

TARGET = 2.0
LIMIT = 15  # seconds per command, as document mode's default --vlanlb-doc-timeout
WORKSHOP = ROOT.parent / "shared" / "workshop"


def plain_script(paths: list[Path], context: RunContext, conf: Path) -> str:
    documents = [load_document(p) for p in paths]
    sections = [
        (d, s) for d in documents for s in d.sections if is_runnable(s) and not s.is_cleanup
    ]
    sections += [
        (d, s) for d in reversed(documents) for s in d.sections if is_runnable(s) and s.is_cleanup
    ]
    lines = [f"export CONTAINERS_CONF={shlex.quote(str(conf))}", f"export IF={context.trunk}"]
    for document, section in sections:
        for typed in typed_commands(document, section):
            plan = plan_command(typed.block.text, typed.command, context, typed.needs_internet)
            if plan.action is Action.RUN:
                lines.append(f"timeout -s KILL {LIMIT} bash -c {shlex.quote(plan.script)}")
            elif plan.action is Action.EMULATE and plan.emulate == "vlan":
                name, vlan = plan.emulate_args
                peer = f"{context.trunk[:-1]}w{vlan}"
                lines.append(
                    f"ip link add {name} type veth peer name {peer} && ip link set {peer} up"
                )
            elif plan.action is Action.EMULATE and plan.emulate == "export":
                lines += [f"export {shlex.quote(a)}" for a in plan.emulate_args]
    return "\n".join(lines) + "\n"


def run_plain(paths: list[Path], client) -> float:
    names = RunNames.new()
    trunk = names.link("t")
    context = RunContext(names, trunk, kernel_supports_8021q(), standin_tag(ImageRecipe().tag))
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "containers.conf"
        conf.write_text(containers_conf(None, stop_timeout=0))
        script = Path(tmp) / "plain.sh"
        script.write_text(plain_script(paths, context, conf))
        create_wires(WireKind.DOT1Q, names, [])  # "the NIC": the trunk, as document mode has it
        try:
            start = time.perf_counter()
            subprocess.run(["bash", str(script)], capture_output=True, check=False)
            return time.perf_counter() - start
        finally:
            remove_run(client, names.run_id)  # containers, networks and the run's links


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
    service = connect(None, backend="default")
    client = service.client()
    documents, plain = [], []
    try:
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}:")
            documents.append(run_documents(args.documents))
            print(f"  document mode {documents[-1]:6.1f} s")
            plain.append(run_plain(args.documents, client))
            print(f"  plain script  {plain[-1]:6.1f} s")
    finally:
        service.stop()
    doc, base = statistics.median(documents), statistics.median(plain)
    ratio = doc / base
    print(f"medians: document mode {doc:.1f} s, plain script {base:.1f} s")
    print(f"ratio {ratio:.2f} (target < {TARGET}): {'met' if ratio < TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
