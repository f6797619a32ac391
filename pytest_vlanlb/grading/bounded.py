"""Probes in a student's container, bounded in time and output, leaving nothing behind.

A student's container may hold anything: a `ping` that is `sleep 100000`, a server that
answers forever. Every grading command therefore runs under a small POSIX sh wrapper (dash,
ash and bash alike) that

- starts the command in the background and polls it, at 2 ms, then 4, 8 ... up to 64 ms
  apart (a quick command costs a few ms, not a whole tick); past the bound it is killed (-9)
  and the wrapper says so;
- pipes stdout and stderr through `head -c`, so an endless answer ends in SIGPIPE instead of
  hundreds of megabytes read back through the API;
- waits for everything it started, so no process and no zombie of ours is left (busybox
  `timeout` leaves its watcher as a zombie under a PID 1 that does not reap).
"""

from __future__ import annotations

import math
import shlex

from podman.domain.containers import Container as PodmanContainer

from ..model.topology import NodeSpec
from ..podman.container import Container, ExecResult

BOUND_SECONDS = 4.0  # longer than any probe's own timeout (curl/wget 1 s, ping -W 1)
OUTPUT_LIMIT = 65536  # bytes of stdout, and of stderr, read back
#: The rule listings a judge reads whole (`iptables-save -c`, `iptables -S`, `nft -a list
#: ruleset`): a router may hold thousands of rules (each about 100 bytes), and a listing cut
#: short would hide the counters a verdict rests on. Still a bound: a hostile `iptables-save`
#: cannot flood us.
RULES_LIMIT = 16 * 1024 * 1024
WHOLE_OUTPUT = {"iptables-save": RULES_LIMIT, "iptables": RULES_LIMIT, "nft": RULES_LIMIT}
_RC = "@@vlanlb-rc="
_KILLED = "@@vlanlb-killed@@"

# $1...: the command. A zombie child still "exists" for kill -0, so its state is read (the
# fields after comm's closing parenthesis: comm may hold spaces). The bound is wall time, read
# from /proc/uptime (centiseconds, no fork): on a slow machine (a guest under TCG) the sleeps
# alone add up to far less than the time that passes. Poll intervals in ms.
_UPTIME = (
    "read -r up _ < /proc/uptime 2>/dev/null || up=0.00; c=${{up#*.}}; "
    "t=$(( ${{up%.*}} * 100 + ${{c#0}} ))"
)
_WRAPPER = f"""
"$@" & p=$!
{_UPTIME}; start=$t; d=2
while [ -e /proc/$p ]; do
  read -r s < /proc/$p/stat 2>/dev/null || break
  set -- ${{{{s##*) }}}}; [ "$1" = Z ] && break
  {_UPTIME}
  if [ $((t - start)) -ge {{bound_cs}} ]; then kill -9 $p 2>/dev/null; echo {_KILLED} >&2; break; fi
  if [ $d -lt 10 ]; then sleep 0.00$d; else sleep 0.0$d; fi
  [ $d -lt 50 ] && d=$((d*2))
done
wait $p; echo "{_RC}$?" >&2
"""
_BOUNDED = "{{ {{ {body} }} 2>&1 1>&3 3>&- | head -c {limit} >&2; }} 3>&1 | head -c {limit}"


def wrap(
    command: tuple[str, ...], bound: float = BOUND_SECONDS, limit: int = OUTPUT_LIMIT
) -> list[str]:
    """The argv that runs `command` bounded (for `podman exec`)."""
    body = _WRAPPER.format(bound_cs=math.ceil(bound * 100))
    script = _BOUNDED.format(body=body, limit=limit)
    return ["/bin/sh", "-c", script, "vlanlb-bounded", *command]


def unwrap(command: tuple[str, ...], raw: ExecResult, bound: float) -> tuple[ExecResult, bool]:
    """The command's own result (rc 124 if it was killed), and whether it was killed."""
    killed = _KILLED in raw.stderr
    rc = 124 if killed else -1
    lines = []
    for line in raw.stderr.splitlines():
        if line.startswith(_RC):
            rc = 124 if killed else int(line[len(_RC) :] or -1)
        elif line != _KILLED and not (killed and line.strip() == "Killed"):
            lines.append(line)
    stderr = "\n".join(lines)
    if killed:
        stderr += f"\n(killed: did not finish within {bound:g}s)"
    return ExecResult(command, rc, raw.stdout, stderr), killed


class BoundedContainer(Container):
    """A student's container whose every command is bounded (see above). A container, not a
    lab node: nothing here reaches around podman (the student's podman may be remote)."""

    def __init__(
        self, spec: NodeSpec, container: PodmanContainer, bound: float = BOUND_SECONDS
    ) -> None:
        super().__init__(container)
        self.spec = spec
        self.bound = bound
        self.unfinished: list[str] = []  # commands killed at the bound
        self.cut: list[str] = []  # listings a judge needs whole, cut short

    @property
    def label(self) -> str:
        return f"{self.spec.name} ({self.container_name})"

    def exec(self, *command: str) -> ExecResult:
        return self.exec_within(self.bound, *command)

    def exec_within(self, seconds: float, *command: str) -> ExecResult:
        """The command, killed after `seconds` if still running (rc 124)."""
        limit = WHOLE_OUTPUT.get(command[0], OUTPUT_LIMIT) if command else OUTPUT_LIMIT
        raw = super().exec(*wrap(command, seconds, limit))
        result, killed = unwrap(command, raw, seconds)
        if killed and seconds >= self.bound:  # killed at its own short limit: just slow
            self.unfinished.append(shlex.join(command))
        if limit > OUTPUT_LIMIT and len(raw.stdout.encode()) >= limit:
            self.cut.append(shlex.join(command))
        return result
