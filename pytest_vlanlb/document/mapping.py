"""How each typed command of a document runs in the run's sandbox, and what had to change.

Commands run as written, by bash, inside a throwaway host of the run's own (`sandbox`):
names, `$IF`, `sudo`, `rm`, redirections and every host command need no rewriting or
refusing there. What the sandbox must not do (a kernel setting, a device, a module), the
kernel refuses to its root, and the report shows the kernel's own words. Nothing is refused
here for safety; what still changes, reported per command:
- `apk add PKG` becomes a check that the image has PKG's tools (no package registry);
- commands that would reach the internet, or a registry, are skipped with that reason (the
  sandbox has no route out either: the skip only says why nothing answered);
- `ip link add ... type vlan` is emulated with a veth wire where the kernel lacks 8021q;
- `modprobe` is answered, not run: whether the kernel has 8021q is the runner's to say;
- a command put in the background, or an apk package whose tools are not known, is not run.

The rest of the reading is for the checks: which containers forward (the routers, whose
counters explain a failed probe), which command sends traffic from which container, and which
iptables rule a command writes.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model.commands import alpine_tools
from .bash import Command, Simple, Word

#: Commands that send traffic: their targets must be inside the lab.
TRAFFIC_TOOLS = {
    "ping",
    "curl",
    "wget",
    "dig",
    "nslookup",
    "host",
    "nc",
    "telnet",
    "ssh",
    "traceroute",
    "apk",
    "apt",
    "apt-get",
    "pip",
}
SHELLS = {"sh", "ash", "bash", "dash"}
#: Commands that run the command after them (their options are not the command's).
PREFIX_COMMANDS = {"sudo", "env", "command", "exec", "time", "nohup"}
#: Kernel modules are the host kernel's: no namespace holds them.
MODULE_TOOLS = {"modprobe", "insmod", "rmmod"}
_IPV4 = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")
_HOSTNAME = re.compile(r"(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?![\w.-]*=)", re.IGNORECASE)


class Action(enum.Enum):
    RUN = "run"  # run the source (with the rewrites) in the sandbox
    EMULATE = "emulate"  # the runner does it itself (a VLAN link here, modprobe)
    SKIP = "skip"  # not run, for a stated reason (the internet)
    REFUSED = "refused"  # not run: it cannot run as the text means it; the step fails


@dataclass(frozen=True)
class RuleWrite:
    """An iptables rule a command writes: (table, chain, spec) as the command gave them."""

    table: str
    chain: str
    spec: tuple[str, ...]
    verb: str  # -A, -I, -D


@dataclass
class Plan:
    action: Action
    script: str = ""
    notes: list[str] = field(default_factory=list)
    reason: str = ""
    emulate: str = ""  # what to emulate: "modprobe", "vlan"
    emulate_args: tuple[str, ...] = ()
    rule: RuleWrite | None = None
    probe_from: str | None = None  # the container sending traffic


@dataclass
class RunContext:
    """What one document run knows: the kernel, the sandbox shell's variables, the lab so far."""

    dot1q: bool
    env: dict[str, str] = field(default_factory=dict)  # exported in the sandbox's shell
    subnets: list[ipaddress.IPv4Network] = field(
        default_factory=lambda: [ipaddress.IPv4Network("10.88.0.0/16")]  # podman's default
    )
    routers: list[str] = field(default_factory=list)  # containers run with ip_forward=1

    def resolve(self, token: str) -> str:
        """A document's word with the shell's variables: `$IF.10` -> ens5.10."""
        return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: self.env.get(m[1], m[0]), token)

    def in_lab(self, address: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return False
        return ip.is_loopback or ip.is_unspecified or any(ip in net for net in self.subnets)


class Refused(Exception):
    pass


class Skip(Exception):
    pass


def plan_command(block: str, command: Command, context: RunContext, needs_internet: bool) -> Plan:
    plan = Plan(Action.RUN)
    edits: list[tuple[int, int, str]] = []
    try:
        if needs_internet:
            raise Skip("the document says it needs the internet (there is none here)")
        if command.background:
            raise Refused("a command put in the background with `&` would outlive its step")
        for simple in command.parts:
            _plan_simple(simple, context, plan, edits)
    except Skip as reason:
        return Plan(Action.SKIP, reason=str(reason), notes=plan.notes)
    except Refused as reason:
        return Plan(Action.REFUSED, reason=str(reason), notes=plan.notes)
    source = block[command.start : command.end]
    for start, end, text in sorted(edits, reverse=True):
        source = source[: start - command.start] + text + source[end - command.start :]
    plan.script = source.rstrip()
    return plan


def _plan_simple(
    simple: Simple, context: RunContext, plan: Plan, edits: list[tuple[int, int, str]]
) -> None:
    words = list(simple.words)
    while words and words[0].literal in PREFIX_COMMANDS:  # `sudo podman ...` is podman's
        words = words[1:]
        while words and (words[0].literal or "").startswith("-"):
            words = words[1:]
    if not words:
        return
    values = [w.value(context.env) for w in words]
    program = values[0].rsplit("/", 1)[-1]
    if program in MODULE_TOOLS:
        plan.action, plan.emulate, plan.emulate_args = Action.EMULATE, "modprobe", tuple(values)
    elif program == "podman":
        _plan_podman(words, values, context, plan, edits)
    elif program == "ip":
        _plan_ip(values, context, plan)
    elif program in TRAFFIC_TOOLS:
        _check_traffic(values, context)


# --- podman ---------------------------------------------------------------------------------


def _plan_podman(
    words: Sequence[Word],
    values: Sequence[str],
    context: RunContext,
    plan: Plan,
    edits: list[tuple[int, int, str]],
) -> None:
    verb = next((v for v in values[1:] if not v.startswith("-")), "")
    if verb in ("pull", "push", "login", "search"):
        raise Skip(f"podman {verb} needs a registry (there is none here)")
    if verb == "network":
        for subnet in _option_values(values).get("--subnet", []):
            with contextlib.suppress(ValueError):  # podman itself will say what is wrong
                context.subnets.append(ipaddress.IPv4Network(subnet, strict=False))
        return
    if verb == "run":
        options = _option_values(values)
        forwarding = [s.replace(" ", "") for s in options.get("--sysctl", [])]
        if "net.ipv4.ip_forward=1" in forwarding:
            context.routers += options.get("--name", [])
        return
    if verb != "exec":
        return
    i = exec_container_index(values)
    if i + 1 >= len(values):
        return
    _plan_inside(words[i + 1 :], values[i + 1 :], values[i], context, plan, edits)


def exec_container_index(values: Sequence[str]) -> int:
    """In `podman exec [options] CONTAINER COMMAND...`, where the container is: the first
    word after the options (those that take a value are the ones workshops use)."""
    i = values.index("exec") + 1
    while i < len(values) and values[i].startswith("-"):
        i += 2 if values[i] in ("-e", "--env", "-u", "--user", "-w", "--workdir") else 1
    return i


def _option_values(values: Sequence[str]) -> dict[str, list[str]]:
    """`--name router`, `--name=router`: the values of the options the checks read."""
    found: dict[str, list[str]] = {}
    for i, value in enumerate(values):
        name, eq, inline = value.partition("=")
        if name in ("--name", "--sysctl", "--subnet"):
            given = inline if eq else (values[i + 1] if i + 1 < len(values) else "")
            found.setdefault(name, []).append(given)
    return found


def _plan_inside(
    words: Sequence[Word],
    values: Sequence[str],
    container: str,
    context: RunContext,
    plan: Plan,
    edits: list[tuple[int, int, str]],
) -> None:
    """A command run in a container: apk becomes a tool check, the internet is skipped."""
    program = values[0]
    if program == "apk":
        packages = [v for v in values[1:] if not v.startswith("-")]
        if not packages or packages[0] != "add":
            raise Skip(f"`{' '.join(values)}` needs alpine's package registry (there is none here)")
        tools: list[str] = []
        for package in packages[1:]:
            if not alpine_tools(package):
                raise Refused(f"apk package {package!r}: the runner does not know its tools")
            tools += alpine_tools(package)
        check = (
            "for t in "
            + " ".join(tools)
            + '; do command -v "$t" || { echo "no $t in this image" >&2; exit 1; }; done'
        )
        edits.append((words[0].start, words[-1].end, f"sh -c {shlex.quote(check)}"))
        plan.notes.append(
            f"`{' '.join(values)}` -> a check that the image has {', '.join(tools)} "
            "(no package registry here)"
        )
        return
    _check_traffic(values, context)
    if program in ("iptables", "ip6tables"):
        plan.rule = _rule_write(values)
    if program in TRAFFIC_TOOLS or (
        program in SHELLS and any(t in v for v in values for t in TRAFFIC_TOOLS)
    ):
        plan.probe_from = container


def _check_traffic(values: Sequence[str], context: RunContext) -> None:
    """Skip a command that would send traffic outside the lab (nothing would answer)."""
    words = (
        [w for v in values for w in shlex.split(v, posix=True) if v]
        if values[0] in SHELLS
        else list(values)
    )
    if not any(w.rsplit("/", 1)[-1] in TRAFFIC_TOOLS for w in words):
        return
    for word in words:
        for address in _IPV4.findall(word):
            if not context.in_lab(address):
                raise Skip(
                    f"it would send traffic to {address}, outside the lab (no internet here)"
                )
        host = _HOSTNAME.search(word)
        if host and not _IPV4.fullmatch(host[1]) and not word.startswith("-"):
            raise Skip(f"it would reach {host[1]} on the internet (there is none here)")


def _rule_write(values: Sequence[str]) -> RuleWrite | None:
    table, verb, chain, spec = "filter", "", "", []
    i = 1
    while i < len(values):
        word = values[i]
        if word == "-t" and i + 1 < len(values):
            table, i = values[i + 1], i + 2
            continue
        if word in ("-A", "-I", "-D") and not verb and i + 1 < len(values):
            verb, chain, i = word, values[i + 1], i + 2
            if word == "-I" and i < len(values) and values[i].isdigit():
                i += 1
            continue
        spec.append(word)
        i += 1
    return RuleWrite(table, chain, tuple(spec), verb) if verb else None


# --- ip ---------------------------------------------------------------------------------------


def _plan_ip(values: Sequence[str], context: RunContext, plan: Plan) -> None:
    args = [v for v in values[1:] if not v.startswith("-")]
    if len(args) < 2 or args[0] not in ("link", "l") or args[1] != "add" or context.dot1q:
        return

    def after(key: str) -> str:
        return args[args.index(key) + 1] if key in args[:-1] else ""

    if after("type") != "vlan":
        return
    name, vlan = after("name"), after("id")
    if not name or not vlan.isdigit():
        return  # ip itself will say what is wrong
    plan.action, plan.emulate, plan.emulate_args = Action.EMULATE, "vlan", (name, vlan)
    plan.notes.append(
        f"emulated: this kernel has no 8021q, so {name} is one end of a veth wire (an "
        f"isolated L2 segment, as VLAN {vlan} would be)"
    )


def document_nics(commands: Sequence[Command]) -> tuple[str, ...]:
    """The NICs a document expects the machine to have: `export IF=ens5`, a literal macvlan
    parent or VLAN link parent (without its `.10`); `eth0` (the workshops' own example)."""
    names: dict[str, None] = {"eth0": None}
    for command in commands:
        for simple in command.parts:
            literals = [w.literal or "" for w in simple.words]
            for i, word in enumerate(literals):
                candidate = ""
                if re.match(r"^IF=", word) and (i == 0 or literals[0] == "export"):
                    candidate = word[3:]
                elif word.startswith("parent="):
                    candidate = word[7:]
                elif word == "link" and i >= 3 and literals[i - 1] == "add":
                    candidate = literals[i + 1] if i + 1 < len(literals) else ""
                candidate = candidate.split(".", 1)[0]
                if re.fullmatch(r"[A-Za-z][\w-]{0,14}", candidate) and candidate != "lo":
                    names[candidate] = None
    return tuple(names)


#: Options and words after which a command names an interface.
_INTERFACE_OPTIONS = {"-i", "-o", "--in-interface", "--out-interface", "dev"}
_NOT_INTERFACES = {"default", "up", "down", "dev", "all", "type", "link", "addr"}


def interface_vocabulary(commands: Sequence[Command]) -> frozenset[str]:
    """The words a document uses as interface names (`-i eth1`, `dev eth1`, `ip addr show
    eth0`, `$IF.10`), to tell `` `192.168.10.1` (eth1) `` from `` `10.88.x.x` (podman) ``."""
    words: set[str] = set()
    for command in commands:
        for simple in command.parts:
            argv = [w.value() if w.literal is None else w.literal for w in simple.words]
            raw = [
                "".join(p if isinstance(p, str) else f"${p.name}" for p in w.parts)
                for w in simple.words
            ]
            for i, word in enumerate(argv[:-1]):
                if word in _INTERFACE_OPTIONS or (
                    word in ("show", "set", "delete", "del") and "ip" in argv[:i]
                ):
                    words.add(raw[i + 1])
                if word == "name" and "link" in argv[:i]:
                    words.add(raw[i + 1])
            for shell in (a for a in argv if "\n" in a or " " in a):  # sh -c '...' bodies
                words.update(re.findall(r"(?:-[io]|dev)\s+([\w$.{}-]+)", shell))
    return frozenset(w for w in words - _NOT_INTERFACES if w and not w.startswith("-"))
