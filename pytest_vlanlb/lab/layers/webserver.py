"""The pod's greeting server (Step 1), and the client addresses it saw.

The workshop runs `echo -e '...' | nc -l -p 80` in a loop; between two nc processes the port
is closed and a request is refused. `nc -ll -e` keeps listening and runs the handler per
connection: the answer is the same bytes, without that gap. The handler also records the
client address it sees (from /proc/net/tcp*, busybox-only, so it works on alpine too): that is
how tests observe SNAT.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from ...model.topology import Role
from ..node import Node

#: Where the web server writes its pid, and the client addresses it saw (one per line).
WEB_PID = "/tmp/vlanlb-web.pid"
#: The pid of the server last stopped, until its process is seen gone.
WEB_STOPPED = "/tmp/vlanlb-web.stopped"
WEB_PEERS = "/tmp/vlanlb-web.peers"

_HANDLER = (
    "cr=$(printf '\\r'); while IFS= read -r l; do [ \"${{l%$cr}}\" = '' ] && break; done; "
    "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"
    " | awk '$2 ~ /:{port_hex}$/ && $4 == \"01\" {{print $3}}' >> " + WEB_PEERS + "; "
    "printf 'HTTP/1.1 200 OK\\r\\n\\r\\n{greeting}\\n'"
)


@dataclass(frozen=True)
class WebServer:
    """An HTTP server on the backend answering exactly the greeting (Step 1)."""

    node: Role = Role.POD  # every backend of the Service, each with its own greeting
    leader_only: bool = False

    def commands(self, facts: Mapping[str, str], undo: bool) -> list[list[str]]:
        if undo:
            stop = f"p=$(cat {WEB_PID}) && rm -f {WEB_PID} && kill $p && echo $p > {WEB_STOPPED}"
            return [["busybox", "sh", "-c", stop]]
        server = (
            f"rm -f {WEB_STOPPED}; echo $$ > {WEB_PID}; : > {WEB_PEERS}; "
            f"exec nc -ll -p {facts['backend_port']} -e busybox sh -c "
            f"{shlex.quote(_HANDLER.format_map(facts))}"
        )
        # In the background, detached from the exec's output, so the exec returns at once.
        start = f"busybox sh -c {shlex.quote(server)} </dev/null >/dev/null 2>&1 &"
        return [["busybox", "sh", "-c", start]]

    def settled(self, node: Node, facts: Mapping[str, str], undo: bool) -> bool:
        if undo:
            return stopped(node) or not listening(node, facts["port_hex"])
        return accepting(node) or listening(node, facts["port_hex"])

    def describe(self, facts: Mapping[str, str]) -> str:
        return f"nc -ll -p {facts['backend_port']} answering {facts['greeting']!r}"


#: What /proc/PID/wchan says of a process blocked in accept(2): it listens.
_IN_ACCEPT = {"inet_csk_accept", "inet_csk_wait_for_connect"}


def accepting(node: Node) -> bool:
    """The server's process is blocked in accept(2), so its socket listens: one read of
    /proc/PID/wchan (a millisecond), where the socket table costs 6 ms or more per file (the
    kernel walks every namespace's hash buckets). False only means "not known": the caller
    asks the table then."""
    said = node.exec("busybox", "sh", "-c", f"cat /proc/$(cat {WEB_PID})/wchan").stdout
    return said.strip() in _IN_ACCEPT


def stopped(node: Node) -> bool:
    """The last server stopped is gone, or a zombie (its sockets closed as it exited)."""
    gone = "[ ! -e /proc/$p ] || grep -q '^[0-9]* (.*) Z' /proc/$p/stat"
    script = f"p=$(cat {WEB_STOPPED}) && {{ {gone}; }}"
    return node.exec("busybox", "sh", "-c", script).ok


def listening(node: Node, port_hex: str) -> bool:
    """A TCP socket in LISTEN state (0A) on the port, read from the kernel's table."""
    table = node.exec("cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    return any(
        len(f := line.split()) > 3 and f[1].endswith(f":{port_hex}") and f[3] == "0A"
        for line in table.splitlines()
    )


def peers_seen(backend: Node) -> list[str]:
    """The client addresses the web server saw, oldest first (IPv4, from /proc hex)."""
    lines = backend.exec("cat", WEB_PEERS).stdout.split()
    return [hex_to_ipv4(line) for line in lines]


def hex_to_ipv4(entry: str) -> str:
    """'0A0AA8C0:D4F2' (or its IPv4-mapped tcp6 form) -> '192.168.10.10'."""
    address = entry.split(":")[0][-8:]
    return ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
