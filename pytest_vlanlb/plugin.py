"""pytest hooks, options and fixtures. The logic lives in plain modules beside this one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import VlanlbError
from .util.options import (
    BY_NAME,
    OPTIONS,
    add_options,
    drawings_folder,
    on_command_line,
    option,
    progress_writer,
)

# Only what a run that never uses the plugin needs is imported here: podman-py, YAML, the lab
# and the modes are imported when first used (a project with the plugin installed pays
# nothing for it in its other runs).
if TYPE_CHECKING:
    from .document.items import DocumentMode
    from .grading import GradeReport
    from .lab.build import Lab
    from .lab.health import LabWatch
    from .lab.layers import LayerStack
    from .lab.node import Node
    from .lab.run import LabConfig
    from .model.topology import Topology
    from .podman.api import PodmanApi

# What a run keeps on its config (pytest's stash), each set once.
_TOPOLOGY: pytest.StashKey[Topology] = pytest.StashKey()
_DOCUMENTS: pytest.StashKey[DocumentMode] = pytest.StashKey()
_GRADE: pytest.StashKey[GradeReport] = pytest.StashKey()
_WATCH: pytest.StashKey[LabWatch] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _check_ini_choices(config: pytest.Config) -> None:
    """An ini value outside an option's choices is a usage error, as on the command line."""
    for o in OPTIONS:
        if o.choices and o.ini and config.getoption(o.dest) is None:
            value = config.getini(o.dest)
            if value not in o.choices:
                raise VlanlbError(
                    f"ini {o.dest} = {value!r}: must be one of {', '.join(o.choices)}"
                )


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
        if option(config, "network_backend") == "cni" and not option(config, "url"):
            from .podman.api import check_cni_built

            check_cni_built()  # podman 5 usually has none: one line, not an error per test
        # Each mode reads and checks its own options, imported only where one is given;
        # the plugin registers what the mode makes.
        documenting = bool(on_command_line(config, "doc") or config.getini("vlanlb_doc"))
        if documenting:
            from .document import mode as document_mode

            documents = document_mode.configure(config)
            config.pluginmanager.register(documents, documents.PLUGIN_NAME)
            config.stash[_DOCUMENTS] = documents
            config.args = []  # the documents are the tests: do not collect test folders too
        # --vlanlb-report and --vlanlb-lang serve document mode too
        if on_command_line(config, "grade", besides="doc" if documenting else None):
            from .grading import mode as grading_mode

            grade = grading_mode.configure(config, lambda: _topology(config))
            config.pluginmanager.register(grade, grade.PLUGIN_NAME)
            config.stash[_GRADE] = grade
            config.args = []  # the steps are the tests: the project's own are not collected
    except VlanlbError as exc:
        raise pytest.UsageError(f"pytest-vlanlb: {exc}") from None


def _topology(config: pytest.Config) -> Topology:
    """The run's topology, read when first needed (YAML is not imported otherwise)."""
    if _TOPOLOGY not in config.stash:
        from .model.topology import load_topology, resolve_topology, topology_dirs

        dirs = topology_dirs(Path(config.rootpath))
        name = option(config, "topology") or "basic"
        config.stash[_TOPOLOGY] = load_topology(resolve_topology(name, dirs))
    return config.stash[_TOPOLOGY]


def _explicit(config: pytest.Config, name: str) -> bool:
    """Whether the user set this option, on the command line or (to other than its
    default) in the ini file."""
    o = BY_NAME[name]
    return config.getoption(o.dest) is not None or (
        o.ini and (config.getini(o.dest) or "") != (o.default or "")
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    if _DOCUMENTS in config.stash:
        documents = config.stash[_DOCUMENTS]
        names = ", ".join(str(d.path) for d in documents.documents)
        return (
            f"vlanlb: documents {names}; network backend {documents.network_backend}, "
            f"{documents.timeout:g} s per command"
        )
    if not any(_explicit(config, o.name) for o in OPTIONS if o.group == "lab" and not o.flag):
        return None  # silent in runs that do not ask for the plugin (the lab says its own)
    topology = _topology(config)
    return (
        f"vlanlb: topology {topology.name} ({topology.source}), "
        f"image {option(config, 'image') or 'built-in'}, wire {option(config, 'wire')}, "
        f"network backend {option(config, 'network_backend')}"
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
    if _uses_lab(item):
        from .observation.counters import forget_observed

        forget_observed()  # a failure's walks are drawn from this test's observations only


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
            watch.broken = watch.check()
        if watch.broken:
            report.longrepr = watch.message()
        elif report.when == "call" and hasattr(report.longrepr, "addsection"):
            _add_walks(item, report)
    return report  # type: ignore[return-value]


def _add_walks(item: pytest.Item, report: pytest.TestReport) -> None:
    """A failing lab test's observations drawn (where its packets went), paths in its text:
    beside the junit XML where there is one, else in pytest's temporary folder."""
    from .observation.drawing import walks_drawn
    from .observation.walk import recent_walks
    from .observation.words import default_language

    walks = recent_walks()
    if walks:
        said = walks_drawn(walks, drawings_folder(item.config), item.nodeid, default_language())
        report.longrepr.addsection("where the packets went", said)  # type: ignore[union-attr]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vlanlb_topology(pytestconfig: pytest.Config) -> Topology:
    """The topology model (segments, nodes, api) chosen with --vlanlb-topology."""
    return _topology(pytestconfig)


@pytest.fixture(scope="session")
def vlanlb_config(pytestconfig: pytest.Config, vlanlb_topology: Topology) -> LabConfig:
    """How the lab is built: topology, image, podman URL, wire kind, keep."""
    from .lab.run import LabConfig

    return LabConfig(
        topology=vlanlb_topology,
        image=option(pytestconfig, "image"),
        url=option(pytestconfig, "url"),
        wire=option(pytestconfig, "wire") or "auto",
        keep=bool(pytestconfig.getoption("vlanlb_keep")),
        network_backend=option(pytestconfig, "network_backend") or "auto",
        identity=option(pytestconfig, "identity"),
    )


@pytest.fixture(scope="session")
def vlanlb_podman(vlanlb_config: LabConfig) -> Iterator[PodmanApi]:
    """The podman API (its `.url`, `.client()`); started for the session if needed."""
    from .host.preflight import preflight
    from .podman.api import podman_api

    preflight()
    config = vlanlb_config
    with podman_api(config.url, config.network_backend, config.identity) as api:
        yield api


@pytest.fixture(scope="session")
def vlanlb_lab(
    pytestconfig: pytest.Config, vlanlb_config: LabConfig, vlanlb_podman: PodmanApi
) -> Iterator[Lab]:
    """The whole lab, built once per session and removed at its end (unless --vlanlb-keep)."""
    from .lab.run import running_lab

    with running_lab(vlanlb_config, vlanlb_podman, progress_writer(pytestconfig)) as lab:
        from .lab.health import LabWatch

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
    """Every backend pod of the Service, in the topology's order (b1, b2, b3 in api)."""
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
