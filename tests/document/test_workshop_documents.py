"""The workshop's own documents, run as written (podman-backed: each test runs pytest in
document mode in a subprocess, as a workshop repository's CI would).

The documents are test data read from ../shared/workshop; edited variants are made here by
replacing the words a test is about, never by copying the text into this repository.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from grading.browser import read_walks
from host_state import host_state, sandbox_processes

from pytest_vlanlb.document.items import STEP_PROPERTY
from pytest_vlanlb.host.wires import kernel_supports_8021q

WORKSHOP = Path(__file__).resolve().parents[3] / "shared" / "workshop"

AS_WRITTEN_DROP = "-i eth1 -o eth2 -j DROP"
DNAT_AWARE_DROP = "-i eth1 -o eth2 -m conntrack ! --ctstate DNAT -j DROP"

VLAN_STEPS = ["prerequisites", *(f"step-{n}" for n in range(1, 7))]
K8S_STEPS = ["prerequisites", *(f"step-{n}" for n in range(1, 7))]


def expected(vlan: str, k8s: str, failing: set[str]) -> dict[str, str]:
    ids = [f"{vlan}::{s}" for s in VLAN_STEPS] + [f"{k8s}::{s}" for s in K8S_STEPS]
    ids.append(f"{vlan}::cleanup")  # the first document's cleanup runs last
    return {i: "failed" if i in failing else "passed" for i in ids}


@pytest.fixture(scope="module")
def workshop() -> Path:
    if not (WORKSHOP / "vlan_ja.md").is_file():
        pytest.fail(f"the workshop's documents are not in {WORKSHOP}: check out shared/ beside")
    return WORKSHOP


def run_documents(pytester, documents: dict[str, str], *args: str):
    """Run pytest --vlanlb-doc on these documents (name -> text), in order; return the
    outcome and report text of each step, and what the run changed on the host."""
    before = host_state()
    command = []
    for name, text in documents.items():
        pytester.path.joinpath(name).write_text(text, encoding="utf-8")
        command += ["--vlanlb-doc", name]
    result = pytester.runpytest_subprocess(
        *command, "--junitxml=report.xml", "-p", "no:cacheprovider", *args
    )
    outcomes: dict[str, str] = {}
    reports: dict[str, str] = {}
    for case in ET.parse(pytester.path / "report.xml").iter("testcase"):
        nodeid = f"{case.get('classname')}::{case.get('name')}"
        failure = case.find("failure")
        skipped = case.find("skipped")
        outcomes[nodeid] = (
            "failed" if failure is not None else "skipped" if skipped is not None else "passed"
        )
        reports[nodeid] = (failure.text or "") if failure is not None else ""
        # The step's verdict as data, in JSON a CI tool can read (not a Python repr).
        for prop in case.iter("property"):
            if prop.get("name") == STEP_PROPERTY:
                data = json.loads(prop.get("value") or "")
                assert data["passed"] is (outcomes[nodeid] != "failed"), (nodeid, data)
    return result, outcomes, reports, before.differences(host_state())


def step_walks(junit: Path) -> dict[str, list[dict]]:
    """Each step's walks (its failed probes'), from the verdicts' JSON in the junit XML."""
    found: dict[str, list[dict]] = {}
    for case in ET.parse(junit).iter("testcase"):
        for prop in case.iter("property"):
            if prop.get("name") == STEP_PROPERTY:
                data = json.loads(prop.get("value") or "")
                nodeid = f"{case.get('classname')}::{case.get('name')}"
                found[nodeid] = [w for c in data["commands"] for w in c["walks"]]
    return found


def read(workshop: Path, name: str) -> str:
    return (workshop / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("language", ["ja", "en"])
def test_documents_as_published(pytester, workshop, language, monkeypatch):
    """Every step passes but k8s_lb's Step 6: its curl gets no answer, because Step 2's DROP
    also takes the DNAT'ed traffic; the report names that rule, its step, and the fix. A CI
    job's summary page (GitHub's $GITHUB_STEP_SUMMARY, appended to) says the same."""
    summary = pytester.path / "summary.md"
    summary.write_text("earlier steps of the job\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    vlan, k8s = f"vlan_{language}.md", f"k8s_lb_{language}.md"
    result, outcomes, reports, left = run_documents(
        pytester,
        {vlan: read(workshop, vlan), k8s: read(workshop, k8s)},
        "-rA",
        "--vlanlb-report",
        "page",
        "--vlanlb-lang",
        language,
    )
    walks = step_walks(pytester.path / "report.xml")
    # Step 1's `type vlan` runs as written where the kernel has 8021q (the VM tier's guests),
    # and is emulated, saying so, where it has not (this host).
    emulated = "emulated: this kernel has no 8021q" in "\n".join(result.outlines)
    assert emulated is not kernel_supports_8021q()
    assert outcomes == expected(vlan, k8s, {f"{k8s}::step-6"}), result.outlines[-30:]
    report = reports[f"{k8s}::step-6"]
    assert "curl http://192.168.10.100" in report
    # Stopped once the counters showed its SYNs dropped, not at the 15 s limit.
    assert re.search(r"stopped after \d+\.\d s: \d+ packets dropped by filter FORWARD", report)
    assert "it cannot succeed while that rule stands (no result) — expected exit status 0" in report
    assert "dropped by filter FORWARD rule 1 `-i eth1 -o eth2 -j DROP` after DNAT" in report
    assert f"written by {k8s}::step-2 line 86" in report
    assert f"iptables -I FORWARD {DNAT_AWARE_DROP}`" in report
    # Where the curl's packets went: DNAT'ed in PREROUTING, dropped by FORWARD rule 1.
    drawn = report.split("where the packets went:\n", 1)[1].split()
    if shutil.which("dot"):
        assert len(drawn) == 1, report
        svg = Path(drawn[0]).read_text(encoding="utf-8")
        assert {"ja": "✗ ここで破棄", "en": "✗ DROPPED HERE"}[language] in svg  # --vlanlb-lang
        assert "filter FORWARD" in svg
        assert "-i eth1 -o eth2 -j DROP" in html.unescape(svg)  # graphviz writes - as &#45;
        assert "curl http://192.168.10.100" in svg
    else:  # a VM guest has no graphviz: one line naming it, the failure itself unchanged
        assert " ".join(drawn).startswith("not drawn:"), report
        assert "graphviz" in report
    assert [s["hook"] for s in walks[f"{k8s}::step-6"][0]["stations"]] == [
        "PREROUTING",
        "ROUTING",
        "FORWARD",
    ]
    assert not left
    # The run's page: every step, and Step 6's walk drawn where a person looks at it.
    report_page = pytester.path / "page" / "index.html"
    assert f"vlanlb: report written to page{os.sep}index.html" in result.outlines
    shown = report_page.read_text(encoding="utf-8")
    assert f'<html lang="{language}">' in shown
    assert shown.count('<section class="step"') == 15
    assert shown.count('data-verdict="failed"') == 1
    if shutil.which("dot"):  # the host; a VM guest has neither graphviz nor a browser
        drawn = [w for w in read_walks(report_page, pytester.path) if w["step"] == "step-6"]
        assert [w["student"] for w in drawn] == [k8s]
        texts = drawn[0]["texts"]
        hooks = [t for t in texts if t.split()[0] in ("PREROUTING", "ROUTING", "FORWARD")]
        assert [t.split()[0] for t in hooks] == ["PREROUTING", "ROUTING", "FORWARD"], texts
        assert any("filter FORWARD" in t for t in texts), texts
        assert any("-i eth1 -o eth2 -j DROP" in t for t in texts), texts
    else:  # the page is whole; the figure says why it has no picture
        assert "<figcaption>" in shown
        assert "missing: dot: install graphviz" in shown
    page = summary.read_text(encoding="utf-8")
    assert page.startswith("earlier steps of the job\n## vlanlb documents: 14 of 15 steps")
    assert f"| `{k8s}::step-6` |" in page
    assert page.count("**FAILED**") == 1
    assert f"### `{k8s}::step-6`" in page
    assert "- line 153, `sudo podman exec a curl http://192.168.10.100`: stopped after" in page
    assert f"written by {k8s}::step-2 line 86" in page
    assert DNAT_AWARE_DROP in page


def test_on_cni_the_router_cannot_take_the_gateway_address(pytester, workshop):
    """The sandbox's podman on its other backend: CNI's IPAM refuses a subnet's gateway as a
    static address, so vlan_ja.md's Step 3 fails with CNI's own words, and so does what
    needs the router there; nothing is left on the host."""
    result, outcomes, reports, left = run_documents(
        pytester,
        {"vlan_ja.md": read(workshop, "vlan_ja.md")},
        "--vlanlb-network-backend=cni",
    )
    assert outcomes["vlan_ja.md::step-3"] == "failed", result.outlines[-30:]
    assert "requested ip 192.168.10.1 is subnet's gateway" in reports["vlan_ja.md::step-3"]
    assert outcomes["vlan_ja.md::step-2"] == outcomes["vlan_ja.md::step-1"] == "passed"
    assert not left


def dnat_aware(text: str) -> str:
    assert text.count(AS_WRITTEN_DROP) == 2  # Step 2 and Step 6's cleanup
    return text.replace(AS_WRITTEN_DROP, DNAT_AWARE_DROP)


def test_dnat_aware_drop_passes_every_step(pytester, workshop):
    _, outcomes, _, left = run_documents(
        pytester,
        {
            "vlan_ja.md": read(workshop, "vlan_ja.md"),
            "k8s_lb_ja.md": dnat_aware(read(workshop, "k8s_lb_ja.md")),
        },
    )
    assert outcomes == expected("vlan_ja.md", "k8s_lb_ja.md", set())
    assert not left


def test_a_changed_greeting_fails_the_step_that_checks_it(pytester, workshop):
    k8s = dnat_aware(read(workshop, "k8s_lb_ja.md"))
    server = "\\n\\nHello from Pod B'"
    assert k8s.count(server) == 1
    _, outcomes, reports, _ = run_documents(
        pytester,
        {
            "vlan_ja.md": read(workshop, "vlan_ja.md"),
            "k8s_lb_ja.md": k8s.replace(server, "\\n\\nHello from Pod C'"),
        },
    )
    assert outcomes == expected("vlan_ja.md", "k8s_lb_ja.md", {"k8s_lb_ja.md::step-6"})
    assert (
        "output 'Hello from Pod C' instead of 'Hello from Pod B'" in reports["k8s_lb_ja.md::step-6"]
    )


def test_a_changed_interface_fails_the_step_that_shows_it(pytester, workshop):
    """The documents' history: Step 2 written with eth0 for VLAN 10 (an older router wiring).
    The DROP then never matches, and Step 2's own ping says so."""
    k8s = dnat_aware(read(workshop, "k8s_lb_ja.md")).replace("-i eth1 -o eth2", "-i eth0 -o eth2")
    _, outcomes, reports, _ = run_documents(
        pytester, {"vlan_ja.md": read(workshop, "vlan_ja.md"), "k8s_lb_ja.md": k8s}
    )
    assert outcomes == expected("vlan_ja.md", "k8s_lb_ja.md", {"k8s_lb_ja.md::step-2"})
    report = reports["k8s_lb_ja.md::step-2"]
    assert (
        "the document says: '結果: パケットロス 100% (通信不能)' — seen: 0% packet loss" in report
    )


OWN = """# Own

## Step 1. Fails

```bash
false
```

## Step 2. Runs anyway

```bash
grep -c 'fine' <<EOF
fine, from a here-document
EOF
```

## Step 3. Internet only

```bash
# (Internet connection required)
sudo podman exec a apk update
```

## Step 4. Something that would outlive its step

```bash
rm -rf /tmp/vlanlb-never-removed
sleep 30 &
```
"""


def test_failed_steps_do_not_stop_later_ones_unless_x(pytester):
    _, outcomes, reports, left = run_documents(pytester, {"own.md": OWN})
    assert outcomes == {
        "own.md::step-1": "failed",
        "own.md::step-2": "passed",
        "own.md::step-3": "skipped",
        "own.md::step-4": "failed",
    }
    assert "exit status 1 after" in reports["own.md::step-1"]
    assert "rm -rf /tmp/vlanlb-never-removed\n      exit status 0" in reports["own.md::step-4"]
    assert "NOT RUN: a command put in the background" in reports["own.md::step-4"]
    assert not left
    _, outcomes, _, _ = run_documents(pytester, {"own.md": OWN}, "-x")
    assert outcomes == {"own.md::step-1": "failed"}


CRASHING = """# Crashing

## Step 1. A container and a network of the run

```bash
sudo podman network create --driver macvlan --subnet 192.168.30.0/24 -o parent=$IF net-crash
sudo podman run -d --name crash --network net-crash alpine sleep infinity
export IF=eth0
```

## Step 2. Killed here

```bash
sleep 60
```
"""


def sleeping() -> bool:
    """The document's `sleep 60` runs (in the sandbox; the host sees its processes)."""
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == b"sleep\x0060\x00":
                return True
    return False


def test_a_killed_document_run_leaves_nothing_once_the_next_run_swept(pytester):
    """Killed: the kernel ends the sandbox with it (every process, mount, link, container);
    its host folder alone is left, and the next run removes it."""
    import signal

    from pytest_vlanlb.util.waiting import wait_until

    before = host_state()
    pytester.path.joinpath("crash.md").write_text(CRASHING, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--vlanlb-doc", "crash.md"]
    with subprocess.Popen(
        command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as run:
        assert wait_until(sleeping, timeout=60)  # Step 1 done: Step 2 sleeps
        run.send_signal(signal.SIGKILL)
    assert wait_until(lambda: not sleeping() and not sandbox_processes(), timeout=10)
    left = before.differences(host_state())
    assert set(left) <= {"sandboxes", "cgroups"}, left  # its folder and cgroups: nothing else
    assert "sandboxes" in left
    _, outcomes, _, left = run_documents(pytester, {"own.md": OWN}, "-k", "step-2")
    assert outcomes == {"own.md::step-2": "passed"}
    assert before.differences(host_state()) == {}
