"""Documents written as a careless author would (podman-backed, in inner pytest runs): every
command runs inside the run's sandbox, where the kernel refuses what is not the sandbox's, and
the host is exactly as it was. (Documents written to get out: test_breakout_documents.py.)

Markers only: each case, were it to escape, writes a file in a folder of this test's own,
adds a link, chain or network with a marker name, or changes a podman object of the test's
own. The published documents' verdicts are checked in test_workshop_documents.py.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_state import host_state
from podman.errors import NotFound
from test_workshop_documents import run_documents

from pytest_vlanlb.host.image import ImageRecipe, ensure_image
from pytest_vlanlb.podman.api import connect
from pytest_vlanlb.podman.lookup import container_named
from pytest_vlanlb.podman.settings import ULIMITS

USERS_CONTAINERS = ("router", "a", "b")
#: A link of the host's that the sandbox must not see (made by the test, a veth pair).
HOST_LINK = "vlbhostonly0"

HOSTILE = """# A careless workshop

## Step 1. Files on the machine

```bash
echo hi > {m}/redirect
cat > {m}/heredoc <<END
written by a document
END
printf 'echo vlanlb-hostile\\n' >> /root/.bashrc
touch /usr/bin/vlanlb-hostile
rm -rf {m}
```

## Step 2. Command substitution

```bash
echo $(touch {m}/substitution)
echo `touch {m}/backtick`
sudo podman run --rm alpine echo "$(mkdir -p {m} && touch {m}/podman-substitution)"
```

## Step 3. The environment of later commands

```bash
mkdir -p {m} && echo 'touch {m}/bash-env' > {m}/env.sh
export BASH_ENV={m}/env.sh
bash -c true
export LD_PRELOAD=/nonexistent/vlanlb-hostile.so
export PATH={m}:$PATH
cat {m}/env.sh
```

## Step 4. podman reaching for the machine

```bash
sudo podman run --rm -v /:/host alpine touch /host{m}/volume
sudo podman run --rm --mount type=bind,src=/,dst=/host alpine touch /host{m}/mount
sudo podman run -d --name victim alpine sleep infinity
sudo podman run --rm --network container:victim alpine true
sudo podman run --rm --pid=host alpine kill -0 1
sudo podman run --rm --pid host alpine true
sudo podman run --rm --network host alpine ip -o link
sudo podman run --rm --privileged --network host alpine ip link
sudo podman run --rm --device /dev/vda alpine true
```

## Step 5. Every container, every image

```bash
sudo podman stop -a
sudo podman kill -a
sudo podman pause --all
sudo podman rm -af
sudo podman image prune -af
sudo podman image rm -af
sudo podman ps -a
```

## Step 6. Links, networks and the firewall

```bash
printf 'link add vlbhostile0 type veth peer name vlbhostile1\\n' > /tmp/batch
sudo ip -b /tmp/batch
sudo podman network create -d macvlan -oparent=eth0 hostile-net
sudo podman network create -d macvlan -o parent=ens5 hostile-net2
sudo iptables -N VLANLB_HOSTILE
sudo iptables -A VLANLB_HOSTILE -j DROP
sudo ip link show
```

## Step 7. Reading the machine

```bash
cat /etc/shadow
ls -a /root
sudo podman run --rm -v /etc:/host-etc alpine cat /host-etc/shadow
```

## Step 8. A folder and a pipe, as a terminal keeps them

```bash
cd /root && touch in-home
ls in-home && pwd
echo hi | tee -a {m}/tee /root/.profile
ln -sf /etc/passwd {m}/link
```

## Step 9. What no namespace contains

```bash
sudo modprobe vlanlb_hostile
sudo sysctl -w vm.max_map_count=262144
sudo sysctl -w kernel.domainname=vlanlb-hostile
echo vlanlb-hostile > /proc/sys/kernel/domainname
sudo sysctl -w net.ipv4.ip_forward=1
sudo hostname vlanlb-hostile
```
"""

#: (step, a line of it, what the report says of it): what the kernel or podman refuses the
#: sandbox; every other line succeeds, in the sandbox.
REFUSED_LINES = {
    ("step-4", "--device /dev/vda", "stat /dev/vda: no such file or directory"),
    ("step-9", "vm.max_map_count", 'permission denied on key "vm.max_map_count"'),
}
#: Kernel settings a careless document changes, read on the host before and after.
SETTINGS = ("vm/max_map_count", "net/ipv4/ip_forward")


@pytest.fixture
def users_containers() -> Iterator[None]:
    """The user's own `router`, `a` and `b`, running on the host's podman during the run."""
    api = connect(None)
    client = api.client()
    image = ensure_image(client, ImageRecipe(), lambda _: None)
    made = []
    subprocess.run(
        ["ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", "vlbhostonly1"],
        check=True,
    )
    try:
        for name in USERS_CONTAINERS:
            try:
                container_named(client, name)  # a real user's: leave it, check it stays
                continue
            except NotFound:
                pass
            container = client.containers.create(
                image, name=name, ulimits=ULIMITS, stop_timeout=0, labels={"test": "users-own"}
            )
            container.start()
            made.append(container)
        yield
    finally:
        for container in made:
            container.remove(force=True)
        api.stop()
        subprocess.run(["ip", "link", "del", HOST_LINK], check=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def test_a_careless_document_cannot_touch_the_host(pytester, users_containers):
    markers = pytester.path / "markers"
    markers.mkdir()
    (markers / "keep-me").write_text("the test's own file")
    watched = [
        Path("/root/.bashrc"),
        Path("/root/.profile"),
        Path("/root/in-home"),
        Path("/usr/bin/vlanlb-hostile"),
        Path("/etc/shadow"),
    ]
    files = {p: digest(p) for p in watched}
    settings = {name: Path("/proc/sys", name).read_text() for name in SETTINGS}
    before = host_state()
    assert {f"{n} running" for n in USERS_CONTAINERS} <= set(before.containers)
    result, outcomes, reports, _ = run_documents(
        pytester, {"hostile.md": HOSTILE.format(m=markers)}, "-rA"
    )
    after = host_state()
    assert before.differences(after) == {}
    assert sorted(p.name for p in markers.iterdir()) == ["keep-me"]
    assert {p: digest(p) for p in watched} == files
    assert {name: Path("/proc/sys", name).read_text() for name in SETTINGS} == settings
    text = "\n".join(result.outlines)
    assert len(outcomes) == 9, text[-3000:]
    # Each command ran in the sandbox; the refused ones failed with the refuser's words, each
    # on its line (in the failed steps' reports: pytest repeats failures in its summary
    # under CI=true).
    for step, line, words in REFUSED_LINES:
        lines = reports[f"hostile.md::{step}"].splitlines()
        at = next(i for i, report_line in enumerate(lines) if line in report_line)
        assert lines[at].lstrip().startswith("✗"), (step, line)
        assert any(words in later for later in lines[at + 1 : at + 8]), (step, lines[at:])
    assert outcomes["hostile.md::step-4"] == outcomes["hostile.md::step-9"] == "failed"
    assert "NOT RUN" not in text
    # The folder a command changed to holds for the next command, as in a terminal.
    assert "| /root" in text
    # The sandbox saw its own machine: its files, links and processes, never the host's.
    shadow = Path("/etc/shadow").read_text().splitlines()[0]
    assert shadow not in text
    assert f"{HOST_LINK} " in "\n".join(before.links)
    assert HOST_LINK not in text
