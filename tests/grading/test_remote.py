"""Remote podman over ssh://, end to end, against an sshd of the test's own on loopback.

The sshd is Debian's, unpacked into .cache by scripts/setup (never installed as a service),
listening on 127.0.0.1 on a free port, with a host key and a client key made here. A small
`ssh` wrapper first on PATH keeps the machine's known_hosts untouched (podman-py's tunnel
runs plain `ssh` with StrictHostKeyChecking=no, which would otherwise record our host key).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pytest_vlanlb.util.waiting import wait_until

from .conftest import run_pytest

ROOT = Path(__file__).resolve().parents[2]
SSHD_ROOT = ROOT / ".cache" / "openssh-server"
SSHD = SSHD_ROOT / "usr" / "sbin" / "sshd"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def port_open(port):
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: run scripts/setup")
    work = tmp_path_factory.mktemp("sshd")
    client_key = keygen(work / "client_key")
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    keygen(work / "host_key")
    port = free_port()
    (work / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {work / 'host_key'}",
                f"AuthorizedKeysFile {work / 'authorized_keys'}",
                f"PidFile {work / 'sshd.pid'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "AllowStreamLocalForwarding yes",
            ]
        )
        + "\n"
    )
    bin_dir = work / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(
        '#!/bin/sh\nexec /usr/bin/ssh -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"\n'
    )
    wrapper.chmod(0o755)
    privsep = Path("/run/sshd")  # sshd insists on its privilege separation folder
    made_privsep = not privsep.exists()
    privsep.mkdir(mode=0o755, exist_ok=True)
    libs = [str(p) for p in (SSHD_ROOT / "usr" / "lib").glob("*-linux-gnu*")]
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(work / "sshd_config")],
        env={"LD_LIBRARY_PATH": ":".join(libs), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_until(
            lambda: port_open(port), timeout=10, give_up=lambda: process.poll() is not None
        ):
            said = process.stdout.read().decode() if process.poll() is not None else "no port"
            pytest.fail(f"sshd did not start: {said} (run scripts/setup)")
        yield {
            "port": port,
            "key": client_key,
            "path": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
            "other_key": keygen(work / "other_key"),
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
        if made_privsep:
            with contextlib.suppress(OSError):
                privsep.rmdir()


def run_over_ssh(cwd, sshd, *args, timeout=300):
    """`pytest` in a subprocess whose PATH has the ssh wrapper; with its wall time."""
    start = time.monotonic()
    env = {"PATH": sshd["path"], "HOME": os.environ.get("HOME", "/root")}
    run = run_pytest(cwd, *args, timeout=timeout, env=env)
    return run, time.monotonic() - start


def ssh_url(sshd, service_url, port=None):
    socket_path = service_url.removeprefix("unix://")
    return f"ssh://root@127.0.0.1:{port or sshd['port']}{socket_path}"


def names_of(lab):
    return ",".join(f"{role}={lab.prefix}{role}" for role in ("router", "a", "b"))


def test_grading_over_ssh(sshd, student_labs, vlanlb_podman, tmp_path):
    url = ssh_url(sshd, vlanlb_podman.url)
    run, _ = run_over_ssh(
        tmp_path,
        sshd,
        "--vlanlb-attach",
        "--vlanlb-names",
        names_of(student_labs["complete"]),
        f"--vlanlb-url={url}",
        f"--vlanlb-identity={sshd['key']}",
        "--vlanlb-report",
        "r.json",
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "vlanlb grade: default (7/7)" in run.stdout
    assert f"running at {url}" in run.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["score"] == 7
    assert report["environment"]["url"] == url


@pytest.mark.parametrize("failure", ["wrong-key", "dead-host", "no-socket"])
def test_a_bad_remote_is_one_clear_line_within_seconds(failure, sshd, vlanlb_podman, tmp_path):
    key, port, service = sshd["key"], None, vlanlb_podman.url
    if failure == "wrong-key":
        key = sshd["other_key"]
    elif failure == "dead-host":
        port = free_port()  # nothing listens there
    else:
        service = "unix:///run/vlanlb-no-such/podman.sock"
    url = ssh_url(sshd, service, port)
    run, elapsed = run_over_ssh(
        tmp_path,
        sshd,
        "--vlanlb-attach",
        f"--vlanlb-url={url}",
        f"--vlanlb-identity={key}",
        timeout=120,
    )
    output = run.stdout + run.stderr
    expected = {
        "wrong-key": f"pytest-vlanlb: {url}: the host refused the key ({key})",
        "dead-host": f"pytest-vlanlb: {url}: ssh could not connect:",
        "no-socket": f"pytest-vlanlb: {url}: the host has no podman socket at /run/vlanlb-no-such",
    }[failure]
    assert run.returncode == 1, output
    assert expected in output, output
    assert "Traceback" not in output, output
    assert elapsed < 60, f"{elapsed:.1f}s"  # ssh is checked once, not once per step
    assert "7 failed" in output, output


def test_the_lab_itself_refuses_ssh_with_one_line(sshd, vlanlb_podman, tmp_path):
    (tmp_path / "test_lab.py").write_text("def test_lab(vlanlb_lab):\n    pass\n")
    url = ssh_url(sshd, vlanlb_podman.url)
    run, _ = run_over_ssh(tmp_path, sshd, f"--vlanlb-url={url}", f"--vlanlb-identity={sshd['key']}")
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert f"pytest-vlanlb: the lab cannot be built through {url}: its VLAN wires" in output
