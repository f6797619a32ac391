"""The plugin as a user meets it, driven through pytester (no lab is built here)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from pytest_vlanlb.podman import api

BASIC = Path(__file__).resolve().parents[2] / "topologies" / "basic.yaml"

LAB_TEST = """
def test_uses_lab(vlanlb_lab):
    pass
"""


def test_options_are_documented(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*workshop lab (pytest-vlanlb)*",
            "*--vlanlb-topology=*",
            "*--vlanlb-image=*",
            "*--vlanlb-url=*",
            "*--vlanlb-wire=*",
            "*--vlanlb-keep*",
        ]
    )


def test_fixtures_are_documented(pytester):
    result = pytester.runpytest("--fixtures")
    docs = {
        "vlanlb_lab": "The whole lab, built once per session*",
        "vlanlb_router": "The router node*",
        "vlanlb_client": "The client on the VIP's segment*",
        "vlanlb_backend": "The service's backend pod*",
        "vlanlb_topology": "The topology model*",
        "vlanlb_podman": "The podman API (its*",
        "vlanlb_config": "How the lab is built*",
        "vlanlb_layers": "Layers on the lab for one test*",
        "vlanlb_routers": "Every router node*",
        "vlanlb_backends": "Every backend pod of the Service*",
        "vlanlb_firewall": "Step 2's firewall*",
        "vlanlb_webserver": "Step 1*",
        "vlanlb_vip": "Step 3*",
        "vlanlb_dnat": "Step 4*",
        "vlanlb_snat": "Step 5*",
    }
    for fixture, doc in docs.items():
        result.stdout.fnmatch_lines([f"{fixture}*plugin.py*", f"    {doc}"])


def test_header_names_the_topology(pytester):
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    result = pytester.runpytest("--vlanlb-topology=basic")
    result.stdout.fnmatch_lines(
        ["vlanlb: topology basic (*basic.yaml), image built-in, wire auto, network backend auto"]
    )
    assert result.ret == 0


def test_unknown_topology_is_a_usage_error_listing_known_ones(pytester):
    result = pytester.runpytest("--vlanlb-topology=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pytest-vlanlb: nope: unknown topology; known topologies: *basic*"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--vlanlb-attach", "--vlanlb-upto=step-3"],
            "*pytest-vlanlb: --vlanlb-upto step-3: not a step; the steps are env, web-server, "
            "firewall, vip, dnat, snat, vip-curl",
        ),
        (
            ["--vlanlb-upto=vip"],
            "*pytest-vlanlb: --vlanlb-upto is a grading option: add --vlanlb-attach*",
        ),
    ],
)
def test_a_bad_checkpoint_is_a_usage_error(pytester, args, message):
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--vlanlb-names", "router=x"],
            "--vlanlb-names is a grading option: add --vlanlb-attach or --vlanlb-class",
        ),
        (
            ["--vlanlb-report", "grade.json", "--vlanlb-lang", "ja"],
            "--vlanlb-report and --vlanlb-lang are grading or document mode options: add "
            "--vlanlb-attach, --vlanlb-class or --vlanlb-doc",
        ),
        (
            ["--vlanlb-report", "grade.json", "--vlanlb-upto", "vip"],
            "--vlanlb-report and --vlanlb-upto are grading options: add --vlanlb-attach or "
            "--vlanlb-class",
        ),
        (
            ["--vlanlb-doc-timeout", "5"],
            "--vlanlb-doc-timeout is a document mode option: add --vlanlb-doc",
        ),
    ],
)
def test_an_option_outside_its_mode_is_one_usage_error(pytester, args, message):
    """The one rule: on the command line, an option of a mode that does not run is a usage
    error naming the mode's option; in the ini file it waits for the mode (harmless)."""
    pytester.makeini("[pytest]\nvlanlb_lang = ja\nvlanlb_doc_timeout = 30\n")
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.strip()] == [
        f"ERROR: pytest-vlanlb: {message}"
    ]
    assert pytester.runpytest().ret == pytest.ExitCode.OK  # the same ini, no such option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--vlanlb-report", "in-the-way"],
            "--vlanlb-report in-the-way: a file is in the way; with --vlanlb-doc it is a folder "
            "(index.html is written in it)",
        ),
        (["--vlanlb-lang", "fr"], "--vlanlb-lang fr: must be one of en, ja"),
    ],
)
def test_document_modes_report_is_checked_before_anything_runs(pytester, args, message):
    pytester.path.joinpath("in-the-way").write_text("")
    pytester.path.joinpath("own.md").write_text("# own\n\n## Step 1\n\n```bash\ntrue\n```\n")
    result = pytester.runpytest("--vlanlb-doc", "own.md", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.strip()] == [
        f"ERROR: pytest-vlanlb: {message}"
    ]
    assert not any(pytester.path.glob("vlanlb-*"))


def test_ini_key_selects_the_topology(pytester):
    pytester.makeini("[pytest]\nvlanlb_topology = nope\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nope: unknown topology*"])


def test_malformed_topology_file_names_file_and_field(pytester):
    broken = pytester.path / "broken.yaml"
    broken.write_text(BASIC.read_text().replace("address: 192.168.10.10", "address: 10.1.1.1"))
    result = pytester.runpytest(f"--vlanlb-topology={broken}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = f"pytest-vlanlb: {broken}: nodes.a.interfaces[0].address: 10.1.1.1 is not in"
    assert expected in result.stderr.str()


def test_topology_from_the_projects_own_dir(pytester):
    (pytester.path / "topologies").mkdir()
    (pytester.path / "topologies" / "classroom.yaml").write_text(BASIC.read_text())
    pytester.makepyfile(
        "def test_t(vlanlb_topology):\n    assert vlanlb_topology.name == 'basic'\n"
    )
    result = pytester.runpytest("--vlanlb-topology=classroom")
    result.assert_outcomes(passed=1)


def test_not_root_is_one_usage_error_before_any_test_not_a_skip(pytester):
    # A subprocess, so pretending not to be root cannot leak into this process.
    pytester.makeconftest("import os\nos.geteuid = lambda: 1000\n")
    pytester.makepyfile(LAB_TEST + LAB_TEST.replace("def test_", "def test_other_"))
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.strip()] == [
        "ERROR: pytest-vlanlb: the lab needs root (rootful podman, host veth links): run "
        f"pytest as root, e.g. `sudo {sys.executable} -m pytest`"
    ]
    result.stdout.no_fnmatch_line("*def vlanlb_podman*")  # a message, not a traceback
    # Tests that need no lab still run as any user; so does collecting.
    assert pytester.runpytest_subprocess("--co", "-q").ret == pytest.ExitCode.OK
    pytester.makepyfile(LAB_TEST + "\ndef test_plain():\n    pass\n")
    pytester.runpytest_subprocess("-m", "not vlanlb").assert_outcomes(passed=1, deselected=1)


def test_a_test_using_only_podman_is_a_lab_test_for_deselection(pytester):
    pytester.makepyfile(
        "def test_podman(vlanlb_podman):\n    pass\n\ndef test_plain():\n    pass\n"
    )
    result = pytester.runpytest("-m", "not vlanlb", "-q")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_bad_ini_value_is_a_usage_error_naming_the_key(pytester):
    pytester.makeini("[pytest]\nvlanlb_wire = token-ring\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pytest-vlanlb: ini vlanlb_wire = 'token-ring': must be one of auto, 8021q, veth*"]
    )
    pytester.makeini("[pytest]\nvlanlb_doc_timeout = soon\n")
    (pytester.path / "doc.md").write_text("# A document\n")
    result = pytester.runpytest("--vlanlb-doc", "doc.md")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pytest-vlanlb: ini vlanlb_doc_timeout = 'soon': give a number of seconds*"]
    )


def test_missing_podman_is_a_clear_error(pytester, monkeypatch):
    bin_dir = pytester.path / "bin"
    bin_dir.mkdir()
    for tool in ("ip", "nsenter"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed on the test machine"
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    pytester.makeconftest(
        "import os\nos.geteuid = lambda: 0\n"
        "import pytest_vlanlb.podman.api as s\ns.DEFAULT_SOCKETS = ()\n"
    )
    pytester.makepyfile(LAB_TEST)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-vlanlb: podman is not installed: run `vlanlb setup`*"])


def test_unreachable_podman_url_is_a_clear_error(pytester):
    pytester.makeconftest("import os\nos.geteuid = lambda: 0\n")
    pytester.makepyfile(LAB_TEST)
    sock = pytester.path / "nobody.sock"
    result = pytester.runpytest_subprocess(f"--vlanlb-url=unix://{sock}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*pytest-vlanlb: no podman API answers at unix://{sock}*"])


def test_lab_tests_are_marked(pytester):
    pytester.makepyfile(LAB_TEST + "\ndef test_plain():\n    pass\n")
    result = pytester.runpytest("-m", "not vlanlb", "-q")
    result.assert_outcomes(passed=1, deselected=1)


def test_wire_choice_is_validated(pytester):
    result = pytester.runpytest("--vlanlb-wire=token-ring")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'token-ring'*"])


def test_cni_is_used_where_this_podman_has_it_and_refused_in_one_line_where_not(pytester):
    """Real podman: on podman 4 (this host) the service runs CNI; on a podman 5 built without
    it (Debian 13: the VM tier's main check runs this test there) one usage line, no test."""
    pytester.makepyfile(
        "def test_backend(vlanlb_podman):\n    assert vlanlb_podman.network_backend == 'cni'\n"
    )
    result = pytester.runpytest_subprocess("--vlanlb-network-backend=cni")
    if not api.podman_builds_cni():
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert [line for line in result.stderr.lines if line.strip()] == [
            f"ERROR: pytest-vlanlb: --vlanlb-network-backend=cni: this podman "
            f"({api.cli_version()}) was built without CNI, as podman 5 usually is: "
            "use --vlanlb-network-backend=netavark (or auto)"
        ]
    elif "cni" in api.installed_network_backends():
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*apt-get install containernetworking-plugins*"])


def test_silent_and_light_in_a_run_that_does_not_use_it(pytester):
    """A project with the plugin installed, in a run that uses no vlanlb fixture, option or
    mode: no output of ours, and none of the lab's modules (podman-py, the lab) imported."""
    pytester.makeconftest(
        "import sys\n"
        "def pytest_unconfigure(config):\n"
        "    open('modules.txt', 'w').write('\\n'.join(sorted(sys.modules)))\n"
    )
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "vlanlb:" not in output  # no header line (pytest's own plugin list names us)
    assert "[vlanlb]" not in output
    modules = set((pytester.path / "modules.txt").read_text().split())
    assert "pytest_vlanlb.plugin" in modules  # installed and loaded, all the same
    ours = {m for m in modules if m.startswith("pytest_vlanlb")}
    # The plugin and the declaration of its options: nothing that builds or reads a lab.
    assert ours == {
        "pytest_vlanlb",
        "pytest_vlanlb.plugin",
        "pytest_vlanlb.errors",
        "pytest_vlanlb.util",
        "pytest_vlanlb.util.options",
    }
    assert "podman" not in modules


def test_grading_does_not_collect_the_projects_own_tests(pytester):
    """The steps are the tests: the project's own files are not even imported."""
    pytester.makepyfile(test_broken="import no_such_module_anywhere\n")
    result = pytester.runpytest("--vlanlb-attach", "--co", "-q")
    output = result.stdout.str()
    assert "no_such_module_anywhere" not in output
    assert "test_broken" not in output
    result.stdout.fnmatch_lines(["*grade-default::env"])
    assert result.ret == pytest.ExitCode.OK
