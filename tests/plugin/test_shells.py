"""The long-lived shells that carry a node's commands, checked against podman's own exec."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_vlanlb.lab.node import Node
from pytest_vlanlb.podman.container import exec_in
from pytest_vlanlb.podman.exec_shells import ShellPool, ShellTimeout, ShellUnavailable
from pytest_vlanlb.util.waiting import wait_until

#: Commands whose output and exit status must come back exactly as one API exec gives them.
SAME_AS_ONE_EXEC = [
    ("sh", "-c", "printf 'no newline'; printf 'err without one' >&2; exit 3"),
    ("sh", "-c", "printf ''"),
    ("sh", "-c", "printf '\\n\\n'; echo two >&2"),
    ("sh", "-c", "printf '\\377\\000\\001'"),
    ("sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo; head -c 70000 /dev/zero >&2"),
    ("sh", "-c", "exit 0; echo never"),
    ("cat",),  # reads stdin: gets EOF at once, does not swallow the next command
    ("sh", "-c", 'echo "$0" \'single quotes\' "$1"', "dollar $HOME", "semi;colon"),
    ("sh", "-c", "kill -TERM $$"),  # a signal's status, 128 + 15
]


@pytest.fixture
def pool(vlanlb_backend: Node):
    shells = ShellPool(vlanlb_backend.container)
    yield shells
    shells.close()


@pytest.mark.parametrize("command", SAME_AS_ONE_EXEC, ids=range(len(SAME_AS_ONE_EXEC)))
def test_output_and_status_are_exactly_those_of_one_exec(pool, vlanlb_backend, command):
    rc, out, err = pool.run(command, timeout=30)
    one = vlanlb_backend.container.exec_run(list(command), demux=True)
    assert rc == one[0]
    assert out == (one[1][0] or b"")
    assert err == (one[1][1] or b"")


def test_a_missing_command_exits_127_as_with_one_exec(pool, vlanlb_backend):
    rc, out, _ = pool.run(("no-such-command",), timeout=30)
    assert (rc, out) == (127, b"")
    assert exec_in(vlanlb_backend.container, ["no-such-command"]).rc == 127


def test_commands_at_the_same_time_get_their_own_output(pool):
    results: dict[int, tuple[int, bytes, bytes]] = {}

    def one(i: int) -> None:
        results[i] = pool.run(("sh", "-c", f"sleep 0.2; echo out{i}; echo err{i} >&2"), 30)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: (0, f"out{i}\n".encode(), f"err{i}\n".encode()) for i in range(6)}
    assert 2 <= pool.opened <= 6  # they overlapped, and no more shells than commands at once
    for i in range(20):  # afterwards the shells are reused, not multiplied
        assert pool.run(("echo", str(i)), 30) == (0, f"{i}\n".encode(), b"")
    assert pool.opened <= 6


def test_many_commands_add_no_exec_session_per_command(pool, vlanlb_backend):
    container = vlanlb_backend.container
    pool.run(("true",), 30)
    container.reload()
    before = set(container.attrs.get("ExecIDs") or [])
    for _ in range(100):
        assert pool.run(("true",), 30)[0] == 0
    container.reload()
    assert set(container.attrs.get("ExecIDs") or []) - before == set()


def test_a_late_command_is_killed_with_its_shell_and_the_next_one_runs(pool, vlanlb_backend):
    start = time.monotonic()
    with pytest.raises(ShellTimeout, match="did not end in time"):
        pool.run(("sh", "-c", "sleep 31.5; echo too late"), timeout=0.5)
    assert time.monotonic() - start < 5
    assert pool.run(("echo", "next"), 30) == (0, b"next\n", b"")
    # Nothing of the late command is left running in the container.
    left = exec_in(vlanlb_backend.container, ["sh", "-c", "cat /proc/[0-9]*/cmdline"])
    assert "sleep\x0031.5" not in left.stdout


def test_a_shell_killed_from_outside_is_replaced(pool, vlanlb_backend):
    assert pool.run(("true",), 30)[0] == 0
    (shell,) = pool._idle
    exec_in(vlanlb_backend.container, ["sh", "-c", f"kill -9 {shell.pid}"]).check()
    # podman closes the session's stream a moment after the shell dies (seen: 1 run in ~5
    # reused it before); once it has, the pool must see the shell is gone and replace it.
    assert wait_until(lambda: not shell.idle_and_alive(), timeout=10)
    assert pool.run(("echo", "again"), 30) == (0, b"again\n", b"")
    assert pool.opened == 2


def test_a_container_without_the_shell_falls_back_to_one_exec_each(vlanlb_backend):
    node = Node(vlanlb_backend.spec, vlanlb_backend.container)
    node._shells = ShellPool(vlanlb_backend.container, shell="/no/such/sh")
    with pytest.raises(ShellUnavailable):
        node._shells.run(("true",), 30)
    result = node.exec("echo", "still works")
    assert (result.rc, result.stdout) == (0, "still works\n")
    assert node._one_exec_each
