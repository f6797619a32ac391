"""pytest hooks, options and fixtures. The logic lives in plain modules beside this one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from .errors import VlanlbError

# Only what a run that never uses the plugin needs is imported here: podman-py, YAML, the lab
# and the modes are imported when first used (a project with the plugin installed pays
# nothing for it in its other runs).
if TYPE_CHECKING:
    from .document.items import DocumentSession
    from .grading import Environment, GradeReport
    from .lab.build import Lab
    from .lab.layers import LayerStack
    from .lab.node import Node
    from .lab.run import LabConfig
    from .model.topology import Topology
    from .podman.api import PodmanService

# What a run keeps on its config (pytest's stash), each set once.
_TOPOLOGY: pytest.StashKey[Topology] = pytest.StashKey()
_DOCUMENTS: pytest.StashKey[DocumentSession] = pytest.StashKey()
_GRADE: pytest.StashKey[GradeReport] = pytest.StashKey()
_WATCH: pytest.StashKey[LabWatch] = pytest.StashKey()

OPTIONS: list[tuple[str, dict[str, object]]] = [
    ("topology", {"default": "basic", "help": "topology name from topologies/ or a YAML path"}),
    (
        "image",
        {
            "default": None,
            "help": "container image for the nodes instead of the "
            "built-in Debian node image (needs ip, iptables, ping, curl, busybox nc)",
        },
    ),
    (
        "url",
        {
            "default": None,
            "help": "podman API URL (unix:// or ssh://); default: a running "
            "local service, else one started for the session",
        },
    ),
    (
        "wire",
        {
            "default": "auto",
            "choices": ("auto", "8021q", "veth"),
            "help": "VLAN segments as 802.1Q sub-interfaces or veth pairs (auto: 8021q "
            "where the kernel has it)",
        },
    ),
    (
        "identity",
        {
            "default": None,
            "help": "ssh key for an ssh:// --vlanlb-url (default: $CONTAINER_SSHKEY, else "
            "ssh's own defaults)",
        },
    ),
    (
        "network-backend",
        {
            "default": "auto",
            "choices": ("auto", "netavark", "cni"),
            "help": "podman network backend for the lab (auto: a running service's own, "
            "else netavark if installed; netavark/cni: a private service with that backend)",
        },
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vlanlb", "workshop lab (pytest-vlanlb)")
    for name, spec in OPTIONS:
        help_text = str(spec["help"])
        choices = spec.get("choices")
        key = name.replace("-", "_")
        group.addoption(
            f"--vlanlb-{name}",
            dest=f"vlanlb_{key}",
            default=None,
            choices=choices,
            help=f"{help_text} (ini: vlanlb_{key})",
        )
        parser.addini(f"vlanlb_{key}", help_text, default=spec["default"])
    group.addoption(
        "--vlanlb-keep",
        action="store_true",
        dest="vlanlb_keep",
        help="keep the lab after the run for debugging; prints how to remove it",
    )
    documents = parser.getgroup("vlanlb-doc", "running the workshop's documents (pytest-vlanlb)")
    documents.addoption(
        "--vlanlb-doc",
        action="append",
        dest="vlanlb_doc",
        default=None,
        metavar="PATH.md",
        help="run this workshop document's steps as tests, as written (repeat: in that order, "
        "e.g. vlan_ja.md then k8s_lb_ja.md) (ini: vlanlb_doc)",
    )
    parser.addini("vlanlb_doc", "workshop documents to run, in order", type="paths", default=[])
    documents.addoption(
        "--vlanlb-doc-timeout",
        dest="vlanlb_doc_timeout",
        default=None,
        type=float,
        metavar="SECONDS",
        help="time limit of each document command; a command still running then counts as "
        "timed out (default 15) (ini: vlanlb_doc_timeout)",
    )
    parser.addini("vlanlb_doc_timeout", "time limit of each document command", default="15")
    grading = parser.getgroup("vlanlb-grade", "grading a student's lab (pytest-vlanlb)")
    grading.addoption(
        "--vlanlb-attach",
        action="store_true",
        dest="vlanlb_attach",
        help="grade existing containers step by step instead of building a lab; read-only",
    )
    grading.addoption(
        "--vlanlb-names",
        dest="vlanlb_names",
        default=None,
        help="container names, e.g. router=R,a=A,b=B (default router, a, b)",
    )
    grading.addoption(
        "--vlanlb-class",
        dest="vlanlb_class",
        default=None,
        help="YAML file listing several environments to grade (implies --vlanlb-attach)",
    )
    grading.addoption(
        "--vlanlb-report",
        dest="vlanlb_report",
        default=None,
        help="write the grade as JSON here (a folder, one file per environment, "
        "with --vlanlb-class)",
    )
    grading.addoption(
        "--vlanlb-lang",
        dest="vlanlb_lang",
        default=None,
        metavar="ja|en",
        help="the language of every title, verdict, evidence line and hint, and of the class "
        "report (default: ja where LC_ALL or LANG starts with ja, else en) (ini: vlanlb_lang)",
    )
    parser.addini("vlanlb_lang", "the grading report's language (ja or en)", default="")
    grading.addoption(
        "--vlanlb-upto",
        dest="vlanlb_upto",
        default=None,
        metavar="STEP",
        help="grade the steps up to this one (env, web-server, firewall, vip, dnat, snat, "
        "vip-curl); later ones are 'not yet' and do not count (a class file's `upto` wins)",
    )


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"vlanlb_{name}")
    if value is None:
        value = config.getini(f"vlanlb_{name}")
    return str(value) if value else None


def _check_ini_choices(config: pytest.Config) -> None:
    """An ini value outside an option's choices is a usage error, as on the command line."""
    for name, spec in OPTIONS:
        choices = cast(tuple[str, ...], spec.get("choices", ()))
        key = f"vlanlb_{name.replace('-', '_')}"
        if choices and config.getoption(key) is None:
            value = config.getini(key)
            if value not in choices:
                raise VlanlbError(f"ini {key} = {value!r}: must be one of {', '.join(choices)}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vlanlb(layers=[...], topology=NAME): tests that need the podman-built lab (applied "
        "automatically to tests that use a lab fixture); layers to apply; the topology the "
        "test is written for (skipped, with the reason, under another --vlanlb-topology)",
    )
    # A bad topology is a usage error: report it before any test runs or anything is built.
    try:
        _check_ini_choices(config)
        if _explicit(config, "topology"):
            _topology(config)  # a bad topology is a usage error before anything runs
        if _option(config, "network_backend") == "cni" and not _option(config, "url"):
            from .podman.api import check_cni_built

            check_cni_built()  # podman 5 usually has none: one line, not an error per test
        documents = _documents(config)
        if documents:
            _configure_documents(config, documents)
        grading = config.getoption("vlanlb_attach") or config.getoption("vlanlb_class")
        for option in ("upto", "lang"):
            if config.getoption(f"vlanlb_{option}") and not grading:
                raise VlanlbError(
                    f"--vlanlb-{option} is a grading option: add --vlanlb-attach or --vlanlb-class"
                )
        if grading:
            from .grading import GradeReport

            grade = GradeReport(
                _environments(config),
                _topology(config),
                config.getoption("vlanlb_report"),
                several=bool(config.getoption("vlanlb_class")),
                identity=_option(config, "identity"),
                language=_language(config),
            )
            config.stash[_GRADE] = grade
            config.pluginmanager.register(grade, GradeReport.PLUGIN_NAME)
            config.args = []  # the steps are the tests: the project's own are not collected
    except VlanlbError as exc:
        raise pytest.UsageError(f"pytest-vlanlb: {exc}") from None


def _documents(config: pytest.Config) -> list[str]:
    given = config.getoption("vlanlb_doc")
    if given:
        return list(given)
    return [str(p) for p in config.getini("vlanlb_doc")]


def _configure_documents(config: pytest.Config, paths: list[str]) -> None:
    if config.getoption("vlanlb_attach") or config.getoption("vlanlb_class"):
        raise VlanlbError("--vlanlb-doc builds its own lab: it cannot grade (--vlanlb-attach)")
    if _option(config, "url"):
        raise VlanlbError(
            "--vlanlb-doc runs the documents' commands with this machine's podman: drop "
            "--vlanlb-url"
        )
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        raise VlanlbError(
            "--vlanlb-doc runs the documents' steps only: run test files in another pytest call"
        )
    from .document.items import DocumentSession, check_not_distributed, load_documents

    check_not_distributed(config)
    timeout = config.getoption("vlanlb_doc_timeout")
    if timeout is None:
        written = config.getini("vlanlb_doc_timeout")
        try:
            timeout = float(written)
        except ValueError:
            raise VlanlbError(
                f"ini vlanlb_doc_timeout = {written!r}: give a number of seconds"
            ) from None
    if timeout <= 0:
        raise VlanlbError(f"--vlanlb-doc-timeout {timeout:g}: give a positive number of seconds")
    documents = load_documents(paths)
    config.args = []  # the documents are the tests: do not collect the test folders too
    session = DocumentSession(
        documents,
        network_backend=_option(config, "network_backend") or "auto",
        image=_option(config, "image"),
        timeout=timeout,
        keep=bool(config.getoption("vlanlb_keep")),
        progress=_progress(config),
    )
    config.pluginmanager.register(session, DocumentSession.PLUGIN_NAME)
    config.stash[_DOCUMENTS] = session


def _language(config: pytest.Config) -> str:
    from .grading.messages import LANGUAGES, default_language

    given = _option(config, "lang")
    if given is None:
        return default_language()
    if given not in LANGUAGES:
        raise VlanlbError(f"--vlanlb-lang {given}: must be one of {', '.join(LANGUAGES)}")
    return given


def _environments(config: pytest.Config) -> list[Environment]:
    from .grading import STEP_IDS, Environment, load_class, parse_names

    url = _option(config, "url")
    upto = config.getoption("vlanlb_upto")
    if upto is not None and upto not in STEP_IDS:
        raise VlanlbError(f"--vlanlb-upto {upto}: not a step; the steps are {', '.join(STEP_IDS)}")
    class_file = config.getoption("vlanlb_class")
    if class_file:
        return load_class(Path(class_file), url, STEP_IDS, upto)
    names = parse_names(config.getoption("vlanlb_names"))
    return [Environment("default", url, names, upto)]


def _topology(config: pytest.Config) -> Topology:
    """The run's topology, read when first needed (YAML is not imported otherwise)."""
    if _TOPOLOGY not in config.stash:
        from .model.topology import load_topology, resolve_topology, topology_dirs

        dirs = topology_dirs(Path(config.rootpath))
        name = _option(config, "topology") or "basic"
        config.stash[_TOPOLOGY] = load_topology(resolve_topology(name, dirs))
    return config.stash[_TOPOLOGY]


def _explicit(config: pytest.Config, name: str) -> bool:
    """Whether the user set this option, on the command line or (to other than its
    default) in the ini file."""
    key = f"vlanlb_{name.replace('-', '_')}"
    default = dict(OPTIONS)[name]["default"]
    return config.getoption(key) is not None or (config.getini(key) or "") != (default or "")


def pytest_report_header(config: pytest.Config) -> str | None:
    if _DOCUMENTS in config.stash:
        documents = config.stash[_DOCUMENTS]
        names = ", ".join(str(d.path) for d in documents.documents)
        return (
            f"vlanlb: documents {names}; network backend {documents.network_backend}, "
            f"{documents.timeout:g} s per command"
        )
    if not any(_explicit(config, name) for name, _ in OPTIONS):
        return None  # silent in runs that do not ask for the plugin (the lab says its own)
    topology = _topology(config)
    return (
        f"vlanlb: topology {topology.name} ({topology.source}), "
        f"image {_option(config, 'image') or 'built-in'}, wire {_option(config, 'wire')}, "
        f"network backend {_option(config, 'network_backend')}"
    )


_LAB_FIXTURES = {
    "vlanlb_lab",
    "vlanlb_router",
    "vlanlb_routers",
    "vlanlb_client",
    "vlanlb_backend",
    "vlanlb_backends",
    "vlanlb_layers",
}


@pytest.hookimpl(tryfirst=True)  # before -m/-k deselection, which then applies to steps too
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if _DOCUMENTS in config.stash:
        from .document.items import document_items

        if items:
            config.hook.pytest_deselected(items=list(items))
        items[:] = document_items(session, config.stash[_DOCUMENTS].documents)
        return
    if _GRADE in config.stash:
        # Grading mode builds nothing: the test items are the steps of each environment.
        if items:
            config.hook.pytest_deselected(items=list(items))
        from .grading import grading_collectors

        environments = list(config.stash[_GRADE].environments.values())
        items[:] = grading_collectors(session, environments, _topology(config))
        return
    for item in items:
        if _uses_lab(item):  # so that -m "not vlanlb" leaves podman alone
            item.add_marker("vlanlb")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Not being root where the selected tests need the lab is one usage error, before any
    test runs (rather than one error per test)."""
    config = session.config
    if config.option.collectonly or _DOCUMENTS in config.stash or _GRADE in config.stash:
        return
    if any(_uses_lab(item) for item in session.items):
        from .host.preflight import preflight

        try:
            preflight()
        except VlanlbError as exc:
            raise pytest.UsageError(f"pytest-vlanlb: {exc}") from None


@dataclass
class LabWatch:
    """The session's lab and service, and what broke, once something did."""

    lab: Lab
    service: PodmanService
    broken: str | None = None

    def message(self) -> str:
        return (
            f"pytest-vlanlb: the lab broke: {self.broken}. The remaining lab tests fail "
            "with this line; the lab is torn down at the end."
        )


def _uses_lab(item: pytest.Item) -> bool:
    return bool((_LAB_FIXTURES | {"vlanlb_podman"}) & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("vlanlb"):
        wanted = marker.kwargs.get("topology")
        if wanted is not None and _DOCUMENTS not in item.config.stash:
            current = _topology(item.config).name
            if wanted != current:
                pytest.skip(
                    f"written for topology {wanted}; this run uses {current} "
                    f"(pytest --vlanlb-topology={wanted} runs it)"
                )
    watch = item.config.stash.get(_WATCH, None)
    if watch is not None and watch.broken and _uses_lab(item):
        pytest.fail(watch.message(), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield  # type: ignore[assignment]
    # Our errors name their fix; a traceback through fixtures would only bury it.
    if call.excinfo is not None and call.excinfo.errisinstance(VlanlbError):
        report.longrepr = f"pytest-vlanlb: {call.excinfo.value}"
    watch = item.config.stash.get(_WATCH, None)
    if report.failed and watch is not None and _uses_lab(item):
        # A failure may be the lab breaking (a node killed, the service gone): ask once.
        if watch.broken is None:
            from .lab.health import lab_breakage

            watch.broken = lab_breakage(watch.lab, watch.service)
        if watch.broken:
            report.longrepr = watch.message()
    return report  # type: ignore[return-value]


def _progress(config: pytest.Config) -> Callable[[str], None]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def write(message: str) -> None:
        if reporter is None or capture is None:
            print(f"[vlanlb] {message}")
            return
        with capture.global_and_fixture_disabled():
            for line in message.splitlines():
                reporter.write_line(f"[vlanlb] {line}")

    return write


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vlanlb_topology(pytestconfig: pytest.Config) -> Topology:
    """The topology model (segments, nodes, service) chosen with --vlanlb-topology."""
    return _topology(pytestconfig)


@pytest.fixture(scope="session")
def vlanlb_config(pytestconfig: pytest.Config, vlanlb_topology: Topology) -> LabConfig:
    """How the lab is built: topology, image, podman URL, wire kind, keep."""
    from .lab.run import LabConfig

    return LabConfig(
        topology=vlanlb_topology,
        image=_option(pytestconfig, "image"),
        url=_option(pytestconfig, "url"),
        wire=_option(pytestconfig, "wire") or "auto",
        keep=bool(pytestconfig.getoption("vlanlb_keep")),
        network_backend=_option(pytestconfig, "network_backend") or "auto",
        identity=_option(pytestconfig, "identity"),
    )


@pytest.fixture(scope="session")
def vlanlb_podman(vlanlb_config: LabConfig) -> Iterator[PodmanService]:
    """The podman API service (its `.url`, `.client()`); started for the session if needed."""
    from .host.preflight import preflight
    from .podman.api import podman_service

    preflight()
    config = vlanlb_config
    with podman_service(config.url, config.network_backend, config.identity) as service:
        yield service


@pytest.fixture(scope="session")
def vlanlb_lab(
    pytestconfig: pytest.Config, vlanlb_config: LabConfig, vlanlb_podman: PodmanService
) -> Iterator[Lab]:
    """The whole lab, built once per session and removed at its end (unless --vlanlb-keep)."""
    from .lab.run import running_lab

    with running_lab(vlanlb_config, vlanlb_podman, _progress(pytestconfig)) as lab:
        pytestconfig.stash[_WATCH] = LabWatch(lab, vlanlb_podman)
        try:
            yield lab
        finally:
            del pytestconfig.stash[_WATCH]


@pytest.fixture(scope="session")
def vlanlb_router(vlanlb_lab: Lab) -> Node:
    """The router node (`.container`, `.host` for testinfra, `.interface_on(segment)`)."""
    return vlanlb_lab.router


@pytest.fixture(scope="session")
def vlanlb_client(vlanlb_lab: Lab) -> Node:
    """The client on the VIP's segment: `a` in the basic topology."""
    return vlanlb_lab.client_node


@pytest.fixture(scope="session")
def vlanlb_backend(vlanlb_lab: Lab) -> Node:
    """The service's backend pod: `b` in the basic topology."""
    return vlanlb_lab.backend


@pytest.fixture(scope="session")
def vlanlb_routers(vlanlb_lab: Lab) -> list[Node]:
    """Every router node, the VIP's first holder (MetalLB's leader at start) first."""
    return vlanlb_lab.routers


@pytest.fixture(scope="session")
def vlanlb_backends(vlanlb_lab: Lab) -> list[Node]:
    """Every backend pod of the Service, in the topology's order (b1, b2, b3 in service)."""
    return vlanlb_lab.backends


@pytest.fixture
def vlanlb_layers(request: pytest.FixtureRequest, vlanlb_lab: Lab) -> Iterator[LayerStack]:
    """Layers on the lab for one test, reverted after it (lab back to base).

    Layers come from ``@pytest.mark.vlanlb(layers=[...])``, from indirect parametrization
    (``parametrize("vlanlb_layers", [[...]], indirect=True)``) and from ``.apply(name)``.
    Names: webserver, firewall:workshop, firewall:dnat-aware, firewall:none, vip, dnat, snat,
    and kube-proxy's service, service:local, service:nftables, service:nftables:local,
    affinity. ``.set_endpoints(["b1", "b2"])``
    makes only those backends ready (kube-proxy rewrites its rules); ``[]`` for none.
    """
    names: list[str] = []
    for marker in request.node.iter_markers("vlanlb"):
        names += list(marker.kwargs.get("layers", ()))
    names += list(getattr(request, "param", None) or ())
    from .lab.layers import LayerStack

    stack = LayerStack(vlanlb_lab)
    try:
        stack.apply(*names)
        yield stack
    finally:
        stack.revert()


def _layer_fixture(name: str, doc: str) -> Callable[..., LayerStack]:
    def fixture(vlanlb_layers: LayerStack) -> LayerStack:
        if name not in vlanlb_layers.names():
            vlanlb_layers.apply(name)
        return vlanlb_layers

    fixture.__doc__ = doc
    fixture.__name__ = f"vlanlb_{name}"
    return pytest.fixture(name=f"vlanlb_{name}")(fixture)


vlanlb_webserver = _layer_fixture("webserver", "Step 1: b answers the greeting on port 80.")
vlanlb_vip = _layer_fixture("vip", "Step 3: the VIP /32 on the router's public interface.")
vlanlb_dnat = _layer_fixture("dnat", "Step 4: DNAT VIP:80 -> b:80 in nat PREROUTING.")
vlanlb_snat = _layer_fixture("snat", "Step 5: MASQUERADE toward b:80 in nat POSTROUTING.")


@pytest.fixture
def vlanlb_service(request: pytest.FixtureRequest, vlanlb_layers: LayerStack) -> str:
    """kube-proxy's rules for the Service; parametrize indirectly with service (iptables mode,
    Cluster; the default), service:local, service:nftables or service:nftables:local."""
    from .lab.layers import SERVICE_VARIANTS

    name = str(getattr(request, "param", "service"))
    if name not in SERVICE_VARIANTS:
        raise VlanlbError(f"unknown service layer {name!r}; known: {', '.join(SERVICE_VARIANTS)}")
    if name not in vlanlb_layers.names():
        vlanlb_layers.apply(name)
    return name


@pytest.fixture
def vlanlb_firewall(request: pytest.FixtureRequest, vlanlb_layers: LayerStack) -> str:
    """Step 2's firewall; parametrize indirectly with workshop, dnat-aware (default) or none."""
    from .lab.layers import FIREWALL_VARIANTS

    variant = str(getattr(request, "param", "dnat-aware"))
    if variant not in FIREWALL_VARIANTS:
        raise VlanlbError(f"unknown firewall variant {variant!r}; known: {FIREWALL_VARIANTS}")
    vlanlb_layers.apply(f"firewall:{variant}")
    return variant
