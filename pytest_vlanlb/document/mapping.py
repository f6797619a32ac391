"""How each typed command of a document runs here, and what had to be rewritten for it.

A command runs as written, by bash, with the podman CLI, except for what must change so that
it runs in a lab of its own on a machine without registry or internet, and says so:
- `sudo` is dropped (the run is root already);
- container and network names become this run's (`router` -> `vlb-1a2b3c-router`), so a
  user's own containers are never touched; new ones carry this run's labels for cleanup;
- `$IF` is this run's trunk, a veth link, never a real NIC; `ip link add ... type vlan` is
  emulated with a veth wire where the kernel has no 8021q;
- `alpine` is the offline stand-in image; `apk add PKG` becomes a check that the image has
  PKG's tools; commands that reach the internet are skipped with that reason;
- whatever the runner does not know how to run safely is reported, never run or dropped.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..naming import RunNames
from .shell import Command, Simple, Word

#: What `apk add PKG` brings that the workshop uses (alpine package -> commands).
APK_TOOLS: dict[str, tuple[str, ...]] = {
    "iptables": ("iptables", "iptables-save"),
    "curl": ("curl",),
    "busybox-extras": ("nc",),
    "iproute2": ("ip",),
    "iputils": ("ping",),
    "bind-tools": ("dig",),
}
#: Networks podman itself provides; a `--network` of these is not renamed.
PODMAN_NETWORK_MODES = {"podman", "host", "none", "bridge", "private", "slirp4netns", "pasta"}
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
#: Commands that only filter what a pipeline gives them.
FILTERS = {
    "grep",
    "egrep",
    "head",
    "tail",
    "wc",
    "sort",
    "uniq",
    "cut",
    "awk",
    "tr",
    "cat",
    "column",
}
#: Commands that only read (files or a here-document) and print.
READERS = {"cat", "grep", "head", "tail", "wc"}
HARMLESS = {"echo", "true", "false", "printf", "sleep"}
_ALPINE = re.compile(r"^(?:(?:docker\.io/)?(?:library/)?)alpine(?::[\w.-]+)?$")
_IPV4 = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")
_HOSTNAME = re.compile(r"(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?![\w.-]*=)", re.IGNORECASE)

# podman options that take a value (the rest are flags), per subcommand family.
_RUN_VALUE_OPTIONS = {
    "--name",
    "--network",
    "--net",
    "--ip",
    "--ip6",
    "--cap-add",
    "--cap-drop",
    "--sysctl",
    "-e",
    "--env",
    "--env-file",
    "-v",
    "--volume",
    "-l",
    "--label",
    "-p",
    "--publish",
    "-h",
    "--hostname",
    "--entrypoint",
    "-u",
    "--user",
    "-w",
    "--workdir",
    "--mac-address",
    "--dns",
    "--stop-timeout",
    "--restart",
    "--pod",
    "--ulimit",
    "--mount",
    "--add-host",
    "--device",
    "--security-opt",
    "--tmpfs",
    "-m",
    "--memory",
    "--cpus",
    "--pull",
    "--platform",
    "--arch",
    "--stop-signal",
    "--log-driver",
    "--network-alias",
    "--annotation",
    "--init-path",
}
_EXEC_VALUE_OPTIONS = {
    "-e",
    "--env",
    "--env-file",
    "-u",
    "--user",
    "-w",
    "--workdir",
    "--detach-keys",
    "--preserve-fds",
}
_NETWORK_CREATE_VALUE_OPTIONS = {
    "-d",
    "--driver",
    "--subnet",
    "--gateway",
    "--ip-range",
    "-o",
    "--opt",
    "--label",
    "--ipam-driver",
    "--dns",
    "--interface-name",
}
_NETWORK_CONNECT_VALUE_OPTIONS = {"--ip", "--ip6", "--alias", "--mac-address"}
_CONTAINER_VERBS = {
    "rm",
    "stop",
    "start",
    "restart",
    "kill",
    "logs",
    "inspect",
    "port",
    "top",
    "pause",
    "unpause",
    "wait",
}
_CONTAINER_VERB_VALUE_OPTIONS = {
    "-t",
    "--time",
    "-s",
    "--signal",
    "--tail",
    "--since",
    "-f",
    "--format",
}
_READ_ONLY_PODMAN = {"info", "version", "ps", "images", "image"}


class Action(enum.Enum):
    RUN = "run"  # run the (rewritten) source with bash
    EMULATE = "emulate"  # the runner does it itself (export, modprobe, a VLAN link here)
    SKIP = "skip"  # not run, for a stated reason (the internet)
    UNMAPPED = "unmapped"  # not run: the runner cannot run it safely; the step fails


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
    emulate: str = ""  # what to emulate: "export", "modprobe", "vlan"
    emulate_args: tuple[str, ...] = ()
    rule: RuleWrite | None = None
    probe_from: str | None = None  # the document's name of the container sending traffic
    new_links: list[str] = field(default_factory=list)  # host links a successful run adds


@dataclass
class RunContext:
    """What one document run knows: its names, its links, the lab's networks so far."""

    names: RunNames
    trunk: str
    dot1q: bool
    image: str
    env: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)  # document name -> run name
    networks: dict[str, str] = field(default_factory=dict)
    links: set[str] = field(default_factory=set)
    subnets: list[ipaddress.IPv4Network] = field(
        default_factory=lambda: [ipaddress.IPv4Network("10.88.0.0/16")]  # podman's default
    )
    routers: list[str] = field(default_factory=list)  # containers run with ip_forward=1

    def __post_init__(self) -> None:
        self.env.setdefault("IF", self.trunk)
        self.links.add(self.trunk)

    def container(self, name: str) -> str:
        return self.containers.setdefault(name, self.names.container(name))

    def network(self, name: str) -> str:
        if name in PODMAN_NETWORK_MODES or ":" in name:
            return name
        return self.networks.setdefault(name, self.names.network(name))

    def resolve(self, token: str) -> str:
        """A document's word as this run has it: `$IF.10` -> trunk.10, `net-vlan10` -> ..."""
        expanded = re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: self.env.get(m[1], m[0]), token)
        return self.containers.get(expanded) or self.networks.get(expanded) or expanded

    def in_lab(self, address: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return False
        return ip.is_loopback or ip.is_unspecified or any(ip in net for net in self.subnets)


@dataclass
class _Edits:
    """Replacements of word spans in the block, applied to one command's source."""

    edits: list[tuple[int, int, str]] = field(default_factory=list)

    def replace(self, word: Word, text: str) -> None:
        self.edits.append((word.start, word.end, text))

    def drop(self, word: Word, following: Word | None) -> None:
        self.edits.append((word.start, following.start if following else word.end, ""))

    def insert_after(self, word: Word, text: str) -> None:
        self.edits.append((word.end, word.end, f" {text}"))

    def replace_range(self, first: Word, last: Word, text: str) -> None:
        self.edits.append((first.start, last.end, text))

    def apply(self, block: str, command: Command) -> str:
        source = block[command.start : command.end]
        for start, end, text in sorted(self.edits, reverse=True):
            source = source[: start - command.start] + text + source[end - command.start :]
        return source.rstrip()


class Unmapped(Exception):
    pass


class Skip(Exception):
    pass


def plan_command(block: str, command: Command, context: RunContext, needs_internet: bool) -> Plan:
    plan = Plan(Action.RUN)
    edits = _Edits()
    try:
        if needs_internet:
            raise Skip("the document says it needs the internet (there is none here)")
        if command.background:
            raise Unmapped("a command put in the background with `&` would outlive its step")
        for index, simple in enumerate(command.parts):
            _plan_simple(simple, index, command, context, plan, edits)
    except Skip as reason:
        return Plan(Action.SKIP, reason=str(reason), notes=plan.notes)
    except Unmapped as reason:
        return Plan(Action.UNMAPPED, reason=str(reason), notes=plan.notes)
    if plan.action is Action.RUN:
        plan.script = edits.apply(block, command)
    return plan


def _plan_simple(
    simple: Simple, index: int, command: Command, context: RunContext, plan: Plan, edits: _Edits
) -> None:
    words = list(simple.words)
    if words and words[0].literal == "sudo":
        if len(words) > 1 and (words[1].literal or "").startswith("-"):
            raise Unmapped("sudo with options")
        edits.drop(words[0], words[1] if len(words) > 1 else None)
        plan.notes.append("`sudo` dropped (the run is root)")
        words = words[1:]
    if not words:
        return
    program = words[0].literal
    values = [w.value(context.env) for w in words]
    for name in dict.fromkeys(v for w in words for v in w.variables):
        if name in context.env:
            plan.notes.append(
                f"${name} is {context.env[name]}"
                + (" (this run's trunk)" if context.env[name] == context.trunk else "")
            )
    if program is None:
        raise Unmapped(f"the command name {values[0]!r} is only known when it runs")
    if index > 0 and program in FILTERS and not (program == "sed" and "-i" in values):
        return
    if program in READERS:  # reading text changes nothing
        return
    if program == "export" and len(command.parts) == 1:
        _plan_export(words, context, plan)
    elif program == "modprobe" and len(command.parts) == 1:
        plan.action, plan.emulate, plan.emulate_args = Action.EMULATE, "modprobe", tuple(values[1:])
    elif program == "podman":
        _plan_podman(words, values, context, plan, edits)
    elif program == "ip":
        _plan_ip(words, values, context, plan)
    elif program in HARMLESS:
        return
    else:
        raise Unmapped(f"`{program}` on the host is not a command the runner knows to be safe")


def _plan_export(words: Sequence[Word], context: RunContext, plan: Plan) -> None:
    plan.action, plan.emulate = Action.EMULATE, "export"
    assignments = []
    for word in words[1:]:
        name, _, value = word.value(context.env).partition("=")
        if name == "IF":
            plan.notes.append(
                f"IF={value} mapped to IF={context.trunk}: this run's trunk link, never a real NIC"
            )
            value = context.trunk
        assignments.append(f"{name}={value}")
    plan.emulate_args = tuple(assignments)


# --- podman -------------------------------------------------------------------------------


def _options(
    words: Sequence[Word], values: Sequence[str], start: int, with_value: set[str]
) -> tuple[dict[str, list[tuple[int, str]]], int]:
    """Options from `start` on: name -> [(index of its value word, value)], and the index of
    the first positional word."""
    found: dict[str, list[tuple[int, str]]] = {}
    i = start
    while i < len(values) and values[i].startswith("-") and values[i] != "-":
        name, eq, inline = values[i].partition("=")
        if eq:
            found.setdefault(name, []).append((i, inline))
        elif name in with_value:
            if i + 1 >= len(values):
                raise Unmapped(f"podman option {name} has no value")
            found.setdefault(name, []).append((i + 1, values[i + 1]))
            i += 1
        else:
            found.setdefault(name, []).append((i, ""))
        i += 1
    return found, i


def _rename(word: Word, value: str, new: str, edits: _Edits, notes: list[str]) -> None:
    if new != value:
        prefix = (
            word.value().split("=", 1)[0] + "="
            if "=" in word.value() and word.value().startswith("-")
            else ""
        )
        edits.replace(word, shlex.quote(prefix + new) if prefix else shlex.quote(new))
        notes.append(f"{value} -> {new}")


def _labels(context: RunContext) -> str:
    return " ".join(f"--label {shlex.quote(f'{k}={v}')}" for k, v in context.names.labels().items())


def _plan_podman(
    words: Sequence[Word], values: Sequence[str], context: RunContext, plan: Plan, edits: _Edits
) -> None:
    if len(values) < 2 or values[1].startswith("-"):
        raise Unmapped("podman without a subcommand, or with global options")
    verb = values[1]
    notes: list[str] = []
    if verb == "network":
        sub = values[2] if len(values) > 2 else "ls"
        if sub in ("ls", "list"):
            pass
        elif sub == "create":
            options, first = _options(words, values, 3, _NETWORK_CREATE_VALUE_OPTIONS)
            if first >= len(values):
                raise Unmapped("podman network create without a name")
            for _, opt in options.get("-o", []) + options.get("--opt", []):
                if opt.startswith("parent=") and not _ours(opt[7:], context):
                    raise Unmapped(
                        f"macvlan parent {opt[7:]!r} is not a link of this run: it would put the "
                        "lab on a real NIC (use $IF, which is this run's trunk)"
                    )
            for _, subnet in options.get("--subnet", []):
                with contextlib.suppress(ValueError):  # podman itself will say what is wrong
                    context.subnets.append(ipaddress.IPv4Network(subnet, strict=False))
            _rename(words[first], values[first], context.network(values[first]), edits, notes)
            edits.insert_after(words[2], _labels(context))
            notes.append("labelled with this run's id (for cleanup)")
        elif sub in ("connect", "disconnect"):
            _, first = _options(words, values, 3, _NETWORK_CONNECT_VALUE_OPTIONS)
            if first + 1 >= len(values):
                raise Unmapped(f"podman network {sub} needs a network and a container")
            _rename(words[first], values[first], context.network(values[first]), edits, notes)
            name = values[first + 1]
            _rename(words[first + 1], name, context.container(name), edits, notes)
        elif sub in ("rm", "remove", "inspect", "exists"):
            _, first = _options(words, values, 3, {"-t", "--time", "-f", "--format"} - {"-f"})
            for i in range(first, len(values)):
                _rename(words[i], values[i], context.network(values[i]), edits, notes)
        else:
            raise Unmapped(f"podman network {sub} is not supported")
    elif verb == "run":
        _plan_podman_run(words, values, context, plan, edits, notes)
    elif verb == "exec":
        options, first = _options(words, values, 2, _EXEC_VALUE_OPTIONS)
        if first + 1 >= len(values):
            raise Unmapped("podman exec needs a container and a command")
        name = values[first]
        _rename(words[first], name, context.container(name), edits, notes)
        _plan_inside(words[first + 1 :], values[first + 1 :], name, context, plan, edits)
    elif verb in _CONTAINER_VERBS:
        _, first = _options(words, values, 2, _CONTAINER_VERB_VALUE_OPTIONS - {"-f"})
        for i in range(first, len(values)):
            _rename(words[i], values[i], context.container(values[i]), edits, notes)
    elif verb in ("pull", "push", "login", "search"):
        raise Skip(f"podman {verb} needs a registry (there is none here)")
    elif verb not in _READ_ONLY_PODMAN:
        raise Unmapped(f"podman {verb} is not supported")
    if notes:
        plan.notes.append("names mapped to this run's: " + ", ".join(dict.fromkeys(notes)))


def _plan_podman_run(
    words: Sequence[Word],
    values: Sequence[str],
    context: RunContext,
    plan: Plan,
    edits: _Edits,
    notes: list[str],
) -> None:
    options, first = _options(words, values, 2, _RUN_VALUE_OPTIONS)
    if first >= len(values):
        raise Unmapped("podman run without an image")
    names = options.get("--name", [])
    for index, name in names:
        _rename(words[index], name, context.container(name), edits, notes)
    for index, network in options.get("--network", []) + options.get("--net", []):
        mapped = ",".join(context.network(n) for n in network.split(","))
        _rename(words[index], network, mapped, edits, notes)
    if any(s.replace(" ", "") == "net.ipv4.ip_forward=1" for _, s in options.get("--sysctl", [])):
        context.routers.extend(n for _, n in names)
    image = values[first]
    if _ALPINE.match(image):
        edits.replace(words[first], shlex.quote(context.image))
        plan.notes.append(
            f"image {image} -> {context.image} (offline stand-in: no registry here; busybox sh, "
            "ping and nc as on alpine)"
        )
    edits.insert_after(words[1], _labels(context))
    plan.notes.append("labelled with this run's id (for cleanup)")
    if first + 1 < len(values):
        _check_traffic(values[first + 1 :], context)


def _plan_inside(
    words: Sequence[Word],
    values: Sequence[str],
    container: str,
    context: RunContext,
    plan: Plan,
    edits: _Edits,
) -> None:
    """A command run in a container: apk becomes a tool check, the internet is skipped."""
    program = values[0]
    if program == "apk":
        packages = [v for v in values[1:] if not v.startswith("-")]
        if not packages or packages[0] != "add":
            raise Skip(f"`{' '.join(values)}` needs alpine's package registry (there is none here)")
        tools: list[str] = []
        for package in packages[1:]:
            if package not in APK_TOOLS:
                raise Unmapped(f"apk package {package!r}: the runner does not know its tools")
            tools += APK_TOOLS[package]
        check = (
            "for t in "
            + " ".join(tools)
            + '; do command -v "$t" || { echo "no $t in this image" >&2; exit 1; }; done'
        )
        edits.replace_range(words[0], words[-1], f"sh -c {shlex.quote(check)}")
        plan.notes.append(
            f"`{' '.join(values)}` -> a check that the image has {', '.join(tools)} "
            "(no package registry here)"
        )
        return
    _check_traffic(values, context)
    if program == "iptables":
        plan.rule = _rule_write(values)
    if program in TRAFFIC_TOOLS or (
        program in ("sh", "ash", "bash") and any(t in v for v in values for t in TRAFFIC_TOOLS)
    ):
        plan.probe_from = container


def _check_traffic(values: Sequence[str], context: RunContext) -> None:
    """Skip a command that would send traffic outside the lab."""
    words = (
        [w for v in values for w in shlex.split(v, posix=True) if v]
        if values[0] in ("sh", "ash", "bash")
        else list(values)
    )
    if not any(w in TRAFFIC_TOOLS for w in words):
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


# --- ip on the host ------------------------------------------------------------------------

_IP_READ_VERBS = {"show", "list", "ls", "lst", "sh"}


def _plan_ip(words: Sequence[Word], values: Sequence[str], context: RunContext, plan: Plan) -> None:
    args = list(values[1:])
    while args and args[0].startswith("-"):
        args.pop(0)
    if not args or len(args) == 1 or args[1] in _IP_READ_VERBS:
        return  # reading the host's links changes nothing
    obj, verb, rest = args[0], args[1], args[2:]
    if obj not in ("link", "l"):
        raise Unmapped(f"`ip {obj} {verb}` on the host would change the host's own network")
    if verb == "add":
        _plan_link_add(rest, context, plan)
        return
    if verb in ("delete", "del", "set"):
        device = rest[rest.index("dev") + 1] if "dev" in rest else (rest[0] if rest else "")
        if not _ours(device, context):
            raise Unmapped(
                f"`ip link {verb} {device}`: {device!r} is not a link of this run "
                "(a real NIC is never touched)"
            )
        return
    raise Unmapped(f"`ip link {verb}` is not supported")


def _ours(device: str, context: RunContext) -> bool:
    return device in context.links or device.startswith(f"{context.trunk}.")


def _plan_link_add(rest: list[str], context: RunContext, plan: Plan) -> None:
    def after(key: str) -> str:
        return rest[rest.index(key) + 1] if key in rest and rest.index(key) + 1 < len(rest) else ""

    parent, name, kind = after("link"), after("name"), after("type")
    if kind != "vlan" or parent not in context.links:
        raise Unmapped(
            f"`ip link add` of a {kind or 'link'} on {parent or 'nothing'}: only VLAN links on "
            "this run's trunk ($IF) are made here"
        )
    vlan = after("id")
    if not name.startswith(f"{context.trunk}.") or not vlan.isdigit():
        raise Unmapped(f"VLAN link name {name!r} must be $IF.<id> (this run's trunk)")
    if context.dot1q:
        plan.new_links.append(name)
        plan.notes.append(f"a real 802.1Q link on this run's trunk {context.trunk}")
    else:
        plan.action, plan.emulate, plan.emulate_args = Action.EMULATE, "vlan", (name, vlan)
        plan.notes.append(
            f"emulated: this kernel has no 8021q, so {name} is one end of a veth wire (an "
            "isolated L2 segment, as VLAN {vlan} would be)".replace("{vlan}", vlan)
        )
