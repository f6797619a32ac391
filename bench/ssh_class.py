"""Benchmark: a class on its own machines, graded over ssh:// with pytest-xdist.

Each student host is made here: its own network namespace (`unshare --net`) joined to this
machine by a veth pair of 10.253.N.0/30, its own sshd in it (Debian's, unpacked by
scripts/setup, never a service), and its own podman API service, whose socket the host's sshd
forwards to. The students' labs are student-like labs (tests/grading: typed as the workshop,
the usual mistakes and the complete lab in turn). One host is down (its address answers
nothing: the link's far end has no address), and one is slow (its podman socket is reached
through a relay that holds each request back `--slow-ms`). The class file lists every host as
`ssh://root@10.253.N.2:2222/…/podman.sock`; the class is graded with `-n 2 --dist loadscope`,
as an instructor would, and the report is read back: the down host cannot be judged (its ssh
error in one line), every other host is graded.

    .venv/bin/python bench/ssh_class.py [--hosts 20] [--slow-ms 100]

Prints the total wall time, the time per host (the sum of its steps' durations in the junit
report), and checks the outcome; exit 1 if the class was not graded as it should be. As root,
after scripts/setup. Everything it makes carries this run's link alias or dies with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pytest_vlanlb.host.naming import RunNames  # noqa: E402
from pytest_vlanlb.podman.api import PodmanApi, start_api  # noqa: E402
from pytest_vlanlb.util.processes import die_with_parent, stop_process  # noqa: E402
from pytest_vlanlb.util.waiting import wait_until  # noqa: E402

SSHD_ROOT = ROOT / ".cache" / "openssh-server"
SSHD = SSHD_ROOT / "usr" / "sbin" / "sshd"
PORT = 2222
DOWN, SLOW = 1, 2  # host numbers


def _bench_grading():  # bench/grading.py's student labs (its name clashes with tests/grading)
    spec = importlib.util.spec_from_file_location("bench_grading", ROOT / "bench" / "grading.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ip(*args: str, netns_pid: int | None = None) -> None:
    prefix = ["nsenter", "-t", str(netns_pid), "-n"] if netns_pid else []
    done = subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def own_netns(pid: int) -> bool:
    """Whether the process has left this machine's network namespace (unshare has run)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    except OSError:
        return False


class Relay:
    """A unix socket in front of a podman socket that holds each client chunk back: a slow
    machine's podman, as the grader meets it through ssh."""

    def __init__(self, path: Path, target: str, delay: float) -> None:
        self.path, self.target, self.delay = path, target, delay
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _pump(self, reader, writer, delay: float) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        await asyncio.gather(
            self._pump(reader, up_writer, self.delay), self._pump(up_reader, writer, 0)
        )

    def start(self) -> None:
        async def listen() -> None:
            await asyncio.start_unix_server(self._serve, path=str(self.path))

        self.thread.start()
        asyncio.run_coroutine_threadsafe(listen(), self.loop).result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class Host:
    """One student machine: a network namespace with an sshd, a veth to this machine, and a
    podman API service of its own (none for the down host)."""

    def __init__(self, number: int, names: RunNames, work: Path) -> None:
        self.number, self.names, self.work = number, names, work
        self.address = f"10.253.{number}.2"
        self.link = names.link(f"s{number}")
        self.sshd: subprocess.Popen[bytes] | None = None
        self.api: PodmanApi | None = None
        self.relay: Relay | None = None
        self.socket = ""

    def start(self, slow_ms: int) -> None:
        if self.number == DOWN:  # the far end exists but holds no address: nobody answers
            ip("link", "add", self.link, "type", "veth", "peer", "name", f"{self.link}p")
            self._host_side()
            self.socket = "/run/podman/podman.sock"
            return
        self.api = start_api(network_backend="netavark")
        self.socket = self.api.url.removeprefix("unix://")
        if self.number == SLOW:
            self.relay = Relay(self.work / f"slow{self.number}.sock", self.socket, slow_ms / 1000)
            self.relay.start()
            self.socket = str(self.relay.path)
        libs = [str(p) for p in (SSHD_ROOT / "usr" / "lib").glob("*-linux-gnu*")]
        self.sshd = subprocess.Popen(
            ["unshare", "--net", "--", str(SSHD), "-D", "-e", "-f", str(self.work / "sshd_config")],
            env={"LD_LIBRARY_PATH": ":".join(libs), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        # unshare execs sshd: its pid holds the namespace, which goes when sshd does. The
        # link goes in only once the namespace is its own, under a name no host link has.
        if not wait_until(lambda: own_netns(self.sshd.pid), timeout=10, interval=0.01):
            raise RuntimeError(f"host {self.number}: unshare did not make its namespace")
        peer = f"{self.link}p"
        ip(
            "link",
            "add",
            self.link,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            str(self.sshd.pid),
        )
        ip("link", "set", peer, "name", "eth0", netns_pid=self.sshd.pid)
        self._host_side()
        for args in (
            ("link", "set", "lo", "up"),
            ("addr", "add", f"{self.address}/30", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
        ):
            ip(*args, netns_pid=self.sshd.pid)

    def _host_side(self) -> None:
        ip("link", "set", "dev", self.link, "alias", self.names.link_alias)
        ip("addr", "add", f"10.253.{self.number}.1/30", "dev", self.link)
        ip("link", "set", self.link, "up")

    def url(self) -> str:
        return f"ssh://root@{self.address}:{PORT}{self.socket}"

    def stop(self) -> None:
        if self.sshd is not None:
            stop_process(self.sshd, 5)
        if self.relay is not None:
            self.relay.stop()
        if self.api is not None:
            self.api.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", self.link)


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def sshd_config(work: Path) -> None:
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    keygen(work / "host_key")
    lines = [
        f"Port {PORT}",
        f"HostKey {work / 'host_key'}",
        f"AuthorizedKeysFile {work / 'authorized_keys'}",
        "PidFile none",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "AllowStreamLocalForwarding yes",
        "MaxStartups 100",
    ]
    (work / "sshd_config").write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def hosts(count: int, names: RunNames, work: Path, slow_ms: int) -> Iterator[list[Host]]:
    made: list[Host] = []
    privsep = Path("/run/sshd")  # sshd insists on its privilege separation folder
    made_privsep = not privsep.exists()
    privsep.mkdir(mode=0o755, exist_ok=True)
    try:
        for number in range(1, count + 1):
            made.append(Host(number, names, work))
            made[-1].start(slow_ms)
        reachable = [h for h in made if h.number != DOWN]

        def listening() -> bool:
            return all(
                subprocess.run(
                    ["nsenter", "-t", str(h.sshd.pid), "-n", "ss", "-Hltn", f"sport = :{PORT}"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout.strip()
                for h in reachable
                if h.sshd is not None
            )

        if not wait_until(listening, timeout=20):
            sys.exit("the hosts' sshd did not listen within 20 s")
        yield made
    finally:
        for host in made:
            host.stop()
        if made_privsep:
            with contextlib.suppress(OSError):
                privsep.rmdir()


def per_host_seconds(junit: Path) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").lstrip(".").removeprefix("grade-")
        seconds[name] = seconds.get(name, 0.0) + float(case.get("time", 0))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--slow-ms", type=int, default=100, help="the slow host's delay")
    args = parser.parse_args()
    if not SSHD.exists():
        sys.exit(f"{SSHD} is missing: run scripts/setup")
    bench = _bench_grading()
    names = RunNames.new()
    build_api = start_api(network_backend="netavark")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            keygen(work / "client_key")
            sshd_config(work)
            (work / "bin").mkdir()
            wrapper = work / "bin" / "ssh"  # the machine's known_hosts stays untouched
            wrapper.write_text(
                "#!/bin/sh\nexec /usr/bin/ssh -o UserKnownHostsFile=/dev/null "
                '-o LogLevel=ERROR "$@"\n'
            )
            wrapper.chmod(0o755)
            print(f"building {args.hosts} student-like labs ...", flush=True)
            with (
                bench.student_labs(build_api, args.hosts) as labs,
                hosts(args.hosts, names, work, args.slow_ms) as made,
            ):
                lines = ["environments:"]
                for host, (name, lab) in zip(made, labs.items(), strict=True):
                    lines += [
                        f"  - name: {name}",
                        f"    prefix: {lab.prefix}",
                        f"    url: {host.url()}",
                    ]
                (work / "class.yaml").write_text("\n".join(lines) + "\n")
                env = {
                    **os.environ,
                    "PATH": f"{work / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LC_ALL": "C.UTF-8",
                }
                command = [
                    str(ROOT / ".venv" / "bin" / "pytest"),
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    "-n",
                    "2",
                    "--dist",
                    "loadscope",
                    "--vlanlb-class",
                    "class.yaml",
                    f"--vlanlb-identity={work / 'client_key'}",
                    "--vlanlb-report",
                    "reports",
                    "--junitxml",
                    "junit.xml",
                ]
                print(f"grading {args.hosts} hosts over ssh:// with -n 2 ...", flush=True)
                start = time.perf_counter()
                run = subprocess.run(
                    command, cwd=work, env=env, capture_output=True, text=True, check=False
                )
                total = time.perf_counter() - start
                return report(run, work, list(labs), total, args)
    finally:
        build_api.stop()


def report(
    run: subprocess.CompletedProcess[str],
    work: Path,
    students: list[str],
    total: float,
    args: argparse.Namespace,
) -> int:
    if run.returncode not in (0, 1) or not (work / "junit.xml").exists():
        print(f"grading failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
        return 1
    seconds = per_host_seconds(work / "junit.xml")
    if set(seconds) != set(students):
        print(f"junit's environments: {sorted(seconds)}; the class: {students}")
        return 1
    grades = {s: json.loads((work / "reports" / f"{s}.json").read_text()) for s in students}
    down, slow = students[DOWN - 1], students[SLOW - 1]
    problems = []
    statuses = {s: {step["status"] for step in g["steps"]} for s, g in grades.items()}
    if statuses[down] != {"cannot-judge"}:
        problems.append(f"the down host {down} was {statuses[down]}, not cannot-judge")
    said = grades[down]["steps"][0]["evidence"]
    if not said or "\n" in said[0] or "ssh" not in said[0]:
        problems.append(f"the down host's evidence is not one ssh line: {said}")
    for page in ("class.csv", "index.html"):
        if not (work / "reports" / page).exists():
            problems.append(f"no {page} in the report folder")
    for student, found in statuses.items():
        if student != down and "cannot-judge" in found:
            problems.append(f"{student} could not be judged: {grades[student]['steps']}")
    others = [seconds[s] for s in students if s not in (down, slow)]
    print(f"\n{args.hosts} hosts over ssh:// (one down, one {args.slow_ms} ms slow), -n 2:")
    print(f"  total {total:.1f} s ({total / args.hosts:.2f} s per host)")
    print(
        f"  per host (its 7 steps): median {statistics.median(others):.2f} s, "
        f"max {max(others):.2f} s; the slow host {seconds[slow]:.2f} s; "
        f"the down host {seconds[down]:.2f} s"
    )
    print(f"  the down host said: {said[0] if said else '(nothing)'}")
    scores = sorted((g["score"], s) for s, g in grades.items())
    print(f"  scores: {', '.join(f'{s} {score:g}' for score, s in scores)}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    shutil.which("unshare") or sys.exit("unshare is missing (util-linux)")
    sys.exit(main())
