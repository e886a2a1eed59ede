"""pytest plugin (entry point pytest11): options, markers and fixtures for meshcert suites.

Why it exists: suites stay thin (STYLE.md §6) because everything about the target lives here —
which cluster (``--cluster kind|kwok|existing``), bringing it up lazily the first time a test
needs it and down at session end, a labelled throwaway namespace per test, skipping tests whose
markers (``dataplane``, ``multi-node``, ``disruptive``) the target lacks *with a reason naming
the provider and capability*, and forensics of the test's namespace attached to the Allure
result when a test fails (§7). It also points allure-pytest and JUnit XML at ``reports/`` when
the user did not choose a location, so a plain ``pytest conformance/`` produces the report inputs.

State lives in one `MeshcertSession` object in ``config.stash`` (no module globals); nothing
happens at import time. A test session that never asks for a cluster never starts one.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from meshcert.cluster.base import Capability, Cluster, ClusterInfo
from meshcert.cluster.factory import make_cluster
from meshcert.errors import ConfigError, MeshcertError, WaitTimeout
from meshcert.kube.client import new_api_client
from meshcert.kube.forensics import collect_forensics
from meshcert.kube.namespaces import NamespaceFactory
from meshcert.lanes import EXCLUSIVE, exclusive_last, parse_done_files, wait_for_lanes_done, write_lane_done
from meshcert.runid import new_run_id
from meshcert.runs import RunStore
from meshcert.settings import Provider, Settings, load_settings

#: Marker name → the capability it requires. Each capability is registered under its own name
#: (``multi-node``, as in pyproject) and, for names with a hyphen, an underscore alias
#: (``multi_node``), because ``@pytest.mark.multi-node`` is not valid Python.
MARKER_CAPABILITIES: dict[str, Capability] = {
    **{c.value: c for c in (Capability.DATAPLANE, Capability.MULTI_NODE, Capability.DISRUPTIVE)},
    **{c.value.replace("-", "_"): c for c in (Capability.MULTI_NODE,)},
}
_MARKER_HELP = {
    Capability.DATAPLANE: "needs pods that really run and Services that carry traffic (not kwok)",
    Capability.MULTI_NODE: "needs at least two schedulable worker nodes",
    Capability.DISRUPTIVE: "changes nodes or cluster-wide state (needs a cluster we own)",
}
#: Namespace prefixes come from test names; 30 characters keep them readable and leave room for
#: the run id and counter within the 63-character limit.
_PREFIX_LENGTH = 30

_SESSION = pytest.StashKey["MeshcertSession"]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("meshcert", "meshcert: target cluster and reports")
    group.addoption(
        "--cluster",
        dest="meshcert_cluster",
        choices=[p.value for p in Provider],
        default=None,
        help="target provider (default: settings.provider, i.e. MESHCERT_PROVIDER or kind)",
    )
    group.addoption(
        "--kubeconfig", dest="meshcert_kubeconfig", default=None, help="kubeconfig of an existing cluster"
    )
    group.addoption(
        "--keep-cluster",
        dest="meshcert_keep_cluster",
        action="store_true",
        default=None,
        help="leave the cluster up after the session (`meshcert gc` removes it later)",
    )
    group.addoption(
        "--keep-on-failure",
        dest="meshcert_keep_on_failure",
        action="store_true",
        default=None,
        help="keep the namespace of a failed test for debugging",
    )
    group.addoption("--kind-config", dest="meshcert_kind_config", default=None, help="kind cluster config")
    group.addoption(
        "--exclusive-after",
        dest="meshcert_exclusive_after",
        default="",
        metavar="FILE[,FILE...]",
        help="run tests marked exclusive last, once every FILE exists (other lanes write them when done)",
    )
    group.addoption(
        "--lane-done",
        dest="meshcert_lane_done",
        default="",
        metavar="FILE",
        help="write FILE when this session ends, pass or fail, after its cluster is down",
    )


def settings_from_options(config: pytest.Config) -> Settings:
    """Settings with the command-line layer taken from our options (None = not given)."""
    opt = config.option
    return load_settings(
        pyproject=config.rootpath / "pyproject.toml",
        cli={
            "provider": opt.meshcert_cluster,
            "kubeconfig": opt.meshcert_kubeconfig,
            "keep_cluster": opt.meshcert_keep_cluster,
            "keep_on_failure": opt.meshcert_keep_on_failure,
            "kind_config": opt.meshcert_kind_config,
        },
    )


def _report_name(config: pytest.Config) -> str:
    """JUnit file name from what was run: ``pytest conformance/dns`` → ``conformance-dns``."""
    base = config.invocation_params.dir
    parts: list[str] = []
    for arg in config.args:
        path = Path(arg.split("::")[0])
        if path.is_absolute():
            try:
                path = path.relative_to(base)
            except ValueError:
                path = Path(path.name)
        text = path.as_posix().removesuffix(".py")
        if text not in ("", "."):
            parts.append(text)
    raw = "-".join(parts) or "all"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-.")[:100] or "all"


@pytest.hookimpl(tryfirst=True)  # before allure-pytest and junitxml read their options
def pytest_configure(config: pytest.Config) -> None:
    for name, cap in MARKER_CAPABILITIES.items():
        config.addinivalue_line("markers", f"{name}: {_MARKER_HELP[cap]}")
    config.addinivalue_line("markers", "e2e: needs a real cluster")
    try:
        settings = settings_from_options(config)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    reports = (
        settings.reports_dir if settings.reports_dir.is_absolute() else config.rootpath / settings.reports_dir
    )
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(reports / "allure-results")
    if hasattr(config.option, "xmlpath") and not config.option.xmlpath and not hasattr(config, "workerinput"):
        config.option.xmlpath = str(reports / "junit" / f"{_report_name(config)}.xml")
    config.stash[_SESSION] = MeshcertSession(settings=settings, config=config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    meshcert = session.config.stash.get(_SESSION, None)
    if meshcert is not None:
        meshcert.exitstatus = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None:
        return
    try:
        session.close()
    finally:
        if config.option.meshcert_lane_done:
            write_lane_done(Path(config.option.meshcert_lane_done), exitstatus=session.exitstatus)


@dataclass
class MeshcertSession:
    """Everything one pytest session knows about its target; created lazily, closed once."""

    settings: Settings
    config: pytest.Config
    _run_id: str | None = None
    _cluster: Cluster | None = None
    _info: ClusterInfo | None = None
    _failure: str | None = None
    _api: ApiClient | None = None
    _namespaces: NamespaceFactory | None = None
    kept: list[str] = field(default_factory=list)
    #: None until the first exclusive test has waited for the other lanes: then "" (they ended)
    #: or why they did not (every later exclusive test fails with it instead of waiting again).
    lanes_wait: str | None = None
    #: pytest's exit status, written to the --lane-done file (the internal-error status until
    #: the session finishes, so a lane that crashed in between is not taken for a pass).
    exitstatus: int = int(pytest.ExitCode.INTERNAL_ERROR)

    def progress(self, message: str) -> None:
        """One line on the terminal now, even while pytest captures output (a cluster coming
        up inside a fixture is a heavy step: without -s its lines were swallowed)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman is not None else nullcontext():
            reporter.write_line(f"meshcert: {message}")

    @property
    def run_id(self) -> str:
        if self._run_id is None:
            self._run_id = new_run_id()
            RunStore(self.settings.state_dir).create(self._run_id)
        return self._run_id

    def cluster_info(self) -> ClusterInfo:
        """The target, brought up on first use; a provider failure fails every test that needs it."""
        if self._failure is not None:
            pytest.fail(self._failure, pytrace=False)
        if self._info is None:
            try:
                self._cluster = make_cluster(self.settings, run_id=self.run_id, progress=self.progress)
                self._info = self._cluster.up()
            except MeshcertError as e:
                self._failure = f"{self.settings.provider} cluster unavailable: {e}"
                pytest.fail(self._failure, pytrace=False)
        return self._info

    def api(self) -> ApiClient:
        if self._api is None:
            self._api = new_api_client(self.cluster_info().kubeconfig)
        return self._api

    def connected_api(self) -> ApiClient | None:
        """The client if one exists already (forensics must never bring a cluster up)."""
        return self._api

    def namespaces(self) -> NamespaceFactory:
        if self._namespaces is None:
            self._namespaces = NamespaceFactory(self.api(), self.run_id)
        return self._namespaces

    def close(self) -> None:
        """Down the cluster (unless kept); drop the run record unless something was left behind."""
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None
        # Providers that own their cluster (kind, kwok) delete everything with it on down.
        owned = self._info is not None and self._info.provider != Provider.EXISTING
        keep = self.settings.keep_cluster
        deleted = False
        if self._cluster is not None and not keep:
            try:
                self._cluster.down()
                deleted = owned
            except MeshcertError as e:
                self.progress(f"cluster down failed ({e}); run `meshcert gc` to clean up")
                return
        if self.kept:
            self.progress(f"kept namespaces of failed tests: {', '.join(self.kept)}")
        left_behind = (keep and owned) or (bool(self.kept) and not deleted)
        if self._run_id is not None and not left_behind:
            RunStore(self.settings.state_dir).remove(self._run_id)


def _session(config: pytest.Config) -> MeshcertSession:
    return config.stash[_SESSION]


def missing_capabilities(
    item: pytest.Item, capabilities: frozenset[Capability]
) -> list[tuple[str, Capability]]:
    """(marker, capability) pairs of ``item``'s markers that ``capabilities`` lacks."""
    out: list[tuple[str, Capability]] = []
    for marker in item.iter_markers():
        cap = MARKER_CAPABILITIES.get(marker.name)
        if cap is not None and cap not in capabilities and (marker.name, cap) not in out:
            out.append((marker.name, cap))
    return out


def skip_reason(info: ClusterInfo, missing: list[tuple[str, Capability]]) -> str:
    caps = ", ".join(sorted({c.value for _, c in missing}))
    return f"{info.provider} cluster {info.name} lacks capability {caps}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.option.meshcert_exclusive_after:
        exclusive_last(items)


def _wait_for_other_lanes(item: pytest.Item) -> None:
    """Before the first exclusive test of a lane run with --exclusive-after: the other lanes end."""
    session = _session(item.config)
    value = item.config.option.meshcert_exclusive_after
    if not value or item.get_closest_marker(EXCLUSIVE) is None:
        return
    if session.lanes_wait is None:
        files = parse_done_files(value)
        session.progress(f"exclusive tests wait for the other lanes: {', '.join(map(str, files))}")
        try:
            waited = wait_for_lanes_done(files)
        except WaitTimeout as e:
            session.lanes_wait = str(e)
        else:
            session.lanes_wait = ""
            session.progress(f"other lanes done after {waited:.0f} s; exclusive tests run alone now")
    if session.lanes_wait:
        pytest.fail(session.lanes_wait, pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _wait_for_other_lanes(item)
    if not any(m.name in MARKER_CAPABILITIES for m in item.iter_markers()):
        return
    info = _session(item.config).cluster_info()
    missing = missing_capabilities(item, info.capabilities)
    if missing:
        pytest.skip(skip_reason(info, missing))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.when in ("setup", "call") and report.failed:
        namespace = getattr(item, "funcargs", {}).get("namespace")
        if isinstance(namespace, str):
            _attach_forensics(item, report, namespace)
    return report


def _attach_forensics(item: pytest.Item, report: pytest.TestReport, namespace: str) -> None:
    api = _session(item.config).connected_api()
    if api is None:
        return
    bundle = collect_forensics(api, namespace)
    import allure  # the allure-pytest dependency; imported here so nothing loads at import time

    allure.attach(
        bundle.to_text(), name=f"forensics {namespace}", attachment_type=allure.attachment_type.TEXT
    )
    allure.attach(
        bundle.to_json(), name=f"forensics {namespace}.json", attachment_type=allure.attachment_type.JSON
    )
    report.sections.append(("meshcert forensics", bundle.summary()))


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def meshcert_settings(pytestconfig: pytest.Config) -> Settings:
    """The merged settings of this session (defaults < pyproject < env < command line)."""
    return _session(pytestconfig).settings


@pytest.fixture(scope="session")
def run_id(pytestconfig: pytest.Config) -> str:
    """This session's run id (recorded in the run store, so `meshcert gc` can clean up after it)."""
    return _session(pytestconfig).run_id


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> ClusterInfo:
    """The target cluster, brought up on first use and down at session end (unless kept)."""
    return _session(pytestconfig).cluster_info()


@pytest.fixture(scope="session")
def kube(pytestconfig: pytest.Config, cluster: ClusterInfo) -> ApiClient:
    """An ApiClient for the target cluster (every request with a timeout)."""
    return _session(pytestconfig).api()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube: ApiClient) -> Iterator[str]:
    """A labelled throwaway namespace, deleted after the test (kept if it failed and
    --keep-on-failure)."""
    session = _session(request.config)
    factory = session.namespaces()
    name = factory.create(request.node.name[:_PREFIX_LENGTH])
    yield name
    reports = request.node.stash.get(_REPORTS, {})
    failed = any(r.failed for r in reports.values())
    if failed and session.settings.keep_on_failure:
        session.kept.append(name)
        return
    factory.delete(name, wait=False)  # the controller empties it in the background
