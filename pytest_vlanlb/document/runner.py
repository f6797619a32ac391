"""Running a document's steps in a sandbox of their own, and judging each step by its words.

One `DocumentRun` serves every document of a pytest session, in the order given (the second
builds on the first, as k8s_lb_ja.md builds on vlan_ja.md), in one throwaway host
(`sandbox`). Commands run as typed, through bash and the podman CLI, after the few rewrites
of `mapping`; each is bounded in time. A step
passes when every command did what the document says (exit status, and every promise its
words make); a failed network probe is repeated once between two readings of the routers'
packet counters, to say where the packets went and which step's rule took them.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import selectors
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import podman
from podman.errors import APIError, NotFound

from ..errors import PreflightError
from ..host.naming import RunNames, kept_message
from ..host.wires import kernel_supports_8021q
from ..podman.lookup import container_named
from .bash import ShellSyntaxError, split_commands
from .diagnosis import diagnose, read_counters, walks
from .launcher import SandboxEnded, Started
from .mapping import Action, Plan, RunContext, interface_vocabulary, plan_command
from .markdown import Document, Element, Fence, Prose, Section
from .model import Outcome, StepVerdict, Typed, Written, judge
from .promises import (
    Check,
    Observed,
    expected_block,
    read_command,
    read_prose,
    running_containers,
)
from .sandbox import WIRE_NETNS, start_sandbox
from .settling import Settled, Watch
from .tolerance import Allowance, allowance, first_allowance

Progress = Callable[[str], None]
# Each command runs in a fresh bash in the sandbox, as a terminal would run it: the variables
# the earlier commands exported and the folder they left are restored first, and saved (and
# sent to the runner after a marker on stderr) whatever way the command ends. Builtins only:
# a document may have changed PATH.
_TERMINAL = r"""
__vlanlb_command=$1
shift
if [ -r /run/vlanlb/session ]; then . /run/vlanlb/session; fi
cd "${__vlanlb_cwd:-$HOME}" 2>/dev/null || cd /
__vlanlb_save() {
    [ -d /run/vlanlb ] || mkdir -p /run/vlanlb
    { export -p; printf '__vlanlb_cwd=%q\n' "$PWD"; } > /run/vlanlb/session
    printf '\n%s\n' "$VLANLB_MARKER" >&2
    for __vlanlb_name in $(compgen -e); do
        printf '%s=%s\0' "$__vlanlb_name" "${!__vlanlb_name}" >&2
    done
}
trap __vlanlb_save EXIT
eval "$__vlanlb_command"
"""


def typed_commands(document: Document, section: Section) -> list[Typed]:
    """The section's commands with what the text says of them: promises in their comments,
    in the prose after a block and in an "expected result" block (about the block's last
    command), and the tolerance announced around them (see `tolerance`)."""
    typed: list[Typed] = []
    last: Typed | None = None
    elements = section.elements
    vocabulary = document_interfaces(document)
    heading = allowance(section.title)
    for index, element in enumerate(elements):
        if isinstance(element, Fence) and element.is_shell:
            try:
                commands = split_commands(element.text)
            except ShellSyntaxError as exc:
                raise PreflightError(
                    f"{document.name} line {element.line}: cannot read this block: {exc}"
                ) from None
            around = _block_allowances(elements, index)
            for command in commands:
                reading = read_command(command)
                own = [
                    a
                    for a in (allowance(command.comment), first_allowance(command.lead))
                    if a is not None
                ]
                last = Typed(
                    document.name,
                    section.id,
                    element.line + command.line - 1,
                    element,
                    command,
                    reading.promises,
                    reading.examples,
                    reading.needs_internet,
                    reading.not_understood,
                    [*own, *around, *([heading] if heading else [])],
                )
                typed.append(last)
        elif isinstance(element, Prose) and last is not None:
            last.promises += read_prose(element, vocabulary)
            following = elements[index + 1] if index + 1 < len(elements) else None
            if isinstance(following, Fence) and (promise := expected_block(element, following)):
                last.promises.append(promise)
    return typed


def _block_allowances(elements: list[Element], index: int) -> list[Allowance]:
    """Tolerance in the paragraph right before a block and the one right after it."""
    found = []
    if index > 0 and isinstance(before := elements[index - 1], Prose):
        found.append(allowance(paragraphs(before.text)[-1], quoting=True))
    if index + 1 < len(elements) and isinstance(after := elements[index + 1], Prose):
        found.append(allowance(paragraphs(after.text)[0], quoting=True))
    return [a for a in found if a is not None]


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()] or [""]


def document_interfaces(document: Document) -> frozenset[str]:
    """The interface words of the whole document (a few dozen commands: read each time)."""
    commands = []
    for section in document.sections:
        for fence in section.shell_blocks:
            with contextlib.suppress(ShellSyntaxError):
                commands += split_commands(fence.text)
    return interface_vocabulary(commands)


def is_runnable(section: Section) -> bool:
    return bool(section.shell_blocks) or bool(prerequisite_containers(section))


def prerequisite_containers(section: Section) -> tuple[str, ...]:
    if section.id != "prerequisites":
        return ()
    return running_containers([e for e in section.elements if isinstance(e, Prose)])


#: How often a running command's output is looked at (for `settling`).
_TICK = 0.05


def _collect(
    process: Started, started: float, limit: float, watch: Watch | None
) -> tuple[bytes, bytes, bool, Settled | None]:
    """Read a command's output until it ends, its time limit passes (True) or its watch
    settles it. Whatever comes after a stop is read by the caller."""
    out, err = bytearray(), bytearray()
    assert process.stdout is not None
    assert process.stderr is not None
    streams = {process.stdout.fileno(): out, process.stderr.fileno(): err}
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            elapsed = time.monotonic() - started
            if elapsed >= limit:
                return bytes(out), bytes(err), True, None
            for key, _ in selector.select(timeout=min(_TICK, limit - elapsed)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    streams[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
            if watch is not None and selector.get_map():
                shown = out.decode(errors="replace")
                if settled := watch.poll(shown, time.monotonic() - started):
                    return bytes(out), bytes(err), False, settled
    return bytes(out), bytes(err), False, None


class DocumentRun:
    """The sandbox of one session's documents, and what their steps did in it."""

    def __init__(
        self,
        store: Path,
        network_backend: str | None,
        *,
        nics: tuple[str, ...] = ("eth0",),
        timeout: float = 15.0,
        keep: bool = False,
        progress: Progress = print,
    ) -> None:
        self.timeout = timeout
        self.keep = keep
        self.progress = progress
        self.names = RunNames.new(keep=keep)
        self.sandbox = start_sandbox(
            self.names.run_id, store, nics, network_backend=network_backend, keep=keep
        )
        self.client: podman.PodmanClient = self.sandbox.client()
        self.context = RunContext(kernel_supports_8021q())
        self.written: list[Written] = []
        self._marker = f"vlanlb-env-{secrets.token_hex(8)}"

    # --- running ---------------------------------------------------------------------------

    def run_section(self, document: Document, section: Section) -> StepVerdict:
        verdict = StepVerdict(document.name, section)
        for name in prerequisite_containers(section):
            verdict.prerequisites.append((name, self._running(name)))
        for typed in typed_commands(document, section):
            verdict.outcomes.append(self._run(typed))
        return verdict

    def _running(self, name: str) -> Check:
        try:
            container = container_named(self.client, name)
        except NotFound:
            return Check(False, f"no container {name} (run the earlier document first)")
        except APIError as exc:  # e.g. a half-connected container podman cannot inspect
            return Check(False, f"podman cannot inspect {name}: {exc.explanation or exc}")
        state = container.attrs.get("State", {})
        status = state.get("Status") if isinstance(state, dict) else str(state)
        return Check(status == "running", f"{name} is {status}")

    def _run(self, typed: Typed) -> Outcome:
        plan = plan_command(typed.block.text, typed.command, self.context, typed.needs_internet)
        outcome = Outcome(typed, plan)
        if plan.action in (Action.SKIP, Action.REFUSED):
            return outcome
        watch: Watch | None = None
        routers = list(dict.fromkeys(self.context.routers))
        if plan.action is Action.EMULATE:
            observed = self._emulate(plan)
        else:
            if len(typed.command.parts) == 1:  # a pipeline's status is its last command's
                probing = plan.probe_from is not None and bool(routers)
                watch = Watch(
                    typed.command.parts[0].argv(self.context.env),
                    typed.promises,
                    # A probe the text lets fail is never stopped as failed: it ends itself.
                    expects_success=not (typed.command.may_fail or typed.allowances),
                    read_counters=(lambda: read_counters(self.client, routers))
                    if probing
                    else None,
                    before=read_counters(self.client, routers) if probing else None,
                )
            observed = self.execute(plan.script, watch=watch)
        outcome.observed = observed
        if observed.status == 0 and plan.rule is not None:
            where = f"{typed.document}::{typed.section} line {typed.line}"
            self.written.append(Written(plan.rule, where, typed.source))
        judge(outcome, self.context.resolve)
        if outcome.failed and watch is not None and watch.before:
            after = watch.after or read_counters(self.client, routers)
            outcome.diagnosis = diagnose(watch.before, after, self.written)
            answered = observed.status == 0  # a reply, or an answer that said the wrong thing
            outcome.walks = walks(watch.before, after, typed.source, answered)
        return outcome

    def _emulate(self, plan: Plan) -> Observed:
        if plan.emulate == "modprobe":
            module = next((a for a in plan.emulate_args[1:] if not a.startswith("-")), "")
            if module == "8021q":
                kernel = (
                    "has 8021q"
                    if self.context.dot1q
                    else "has no 8021q, so VLAN links are emulated with veth wires"
                )
                plan.notes.append(f"not run (kernel modules are the host's): this kernel {kernel}")
                return Observed(0, "", "", 0.0)
            plan.notes.append("not run: kernel modules are the host's, not the sandbox's")
            return Observed(0, "", "", 0.0)
        name, _vlan = plan.emulate_args
        script = (
            f"ip link add {shlex.quote(name)} type veth peer name {shlex.quote(name)} "
            f"netns {WIRE_NETNS} && ip -n {WIRE_NETNS} link set {shlex.quote(name)} up"
        )
        return self.execute(script)

    def execute(
        self, script: str, limit: float | None = None, *, watch: Watch | None = None
    ) -> Observed:
        """Run one command in the sandbox's shell, as a student's terminal would: the
        variables it exports and the folder it changes to hold for the next command. With a
        `watch`, it is stopped as soon as its output settles its result."""
        limit = self.timeout if limit is None else limit
        started = time.monotonic()
        argv = ["bash", "--noprofile", "--norc", "-c", _TERMINAL, "bash", script]
        try:
            # A session of its own: a time-out ends the whole pipeline.
            process = self.sandbox.run(argv, VLANLB_MARKER=self._marker)
        except SandboxEnded as exc:
            return Observed(125, "", f"{exc}\n", time.monotonic() - started)
        with process:
            out, err, timed_out, settled = _collect(process, started, limit, watch)
            status: int | None
            if timed_out or settled is not None:
                status = settled.status if settled is not None else None
                process.kill()
                if watch is not None and watch.probe:
                    # Its podman exec is gone; the probe it started in the container must
                    # go too, or it would keep sending into the next steps.
                    self.sandbox.kill_processes(watch.probe)
                rest_out, rest_err = process.communicate()
                out, err = out + rest_out, err + rest_err
            else:
                status = process.wait()
        text_err = err.decode(errors="replace")
        text_err, found, exported = text_err.partition(f"\n{self._marker}\n")
        if found:
            self.context.env = dict(
                entry.split("=", 1) for entry in exported.split("\0") if "=" in entry
            )
        return Observed(
            status,
            out.decode(errors="replace"),
            text_err,
            time.monotonic() - started,
            settled.reason if settled is not None else "",
        )

    # --- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """End the sandbox: every container, network, link and file of the run goes with it."""
        if self.keep:
            enter = f"vlanlb enter {self.names.run_id}"
            self.progress(
                kept_message("document sandbox", self.names.run_id, f"enter it with `{enter}`")
            )
            return
        self.sandbox.close()
