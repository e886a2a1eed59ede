"""Plugin options, markers, capability skips and report paths, with a stubbed cluster (pytester)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from meshcert.cluster.base import Capability

#: In-process runs: allure's own registry is process-global, so the inner runs go without it.
NO_ALLURE = ("-p", "no:allure_pytest")

STUB = """
import pytest
from pathlib import Path
from xml.etree import ElementTree
from meshcert.cluster.base import Capability, ClusterInfo
from meshcert import pytest_plugin

CAPS = frozenset([{caps}])

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    session = config.stash[pytest_plugin._SESSION]
    info = ClusterInfo("stub", "{provider}", Path("/nonexistent"), "v1.34.4", ("n1",), CAPS)
    session.cluster_info = lambda: info
"""


def skipped(junit: Path) -> dict[str, str]:
    """Test name → skip message, from a JUnit XML file."""
    return {
        case.attrib["name"]: skip.attrib["message"]
        for case in ElementTree.parse(junit).iter("testcase")
        for skip in case.iter("skipped")
    }


def stub(pytester: pytest.Pytester, provider: str, caps: set[Capability]) -> None:
    pytester.makeconftest(
        STUB.format(provider=provider, caps=", ".join(f"Capability.{c.name}" for c in caps))
    )


SUITE = """
import pytest

def test_plain():
    pass

@pytest.mark.dataplane
def test_needs_dataplane():
    pass

@pytest.mark.multi_node
def test_needs_two_nodes():
    pass

@pytest.mark.disruptive
def test_breaks_things():
    pass
"""


def test_markers_map_to_capabilities_with_reason(pytester: pytest.Pytester, tmp_path: Path) -> None:
    stub(pytester, "kwok", {Capability.MULTI_NODE, Capability.DISRUPTIVE})
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--strict-markers", *NO_ALLURE, f"--junitxml={tmp_path / 'j.xml'}")
    result.assert_outcomes(passed=3, skipped=1)
    assert skipped(tmp_path / "j.xml") == {
        "test_needs_dataplane": "kwok cluster stub lacks capability dataplane"
    }


def test_each_missing_capability_skips(pytester: pytest.Pytester, tmp_path: Path) -> None:
    stub(pytester, "existing", {Capability.DATAPLANE})
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--strict-markers", "-rs", *NO_ALLURE, f"--junitxml={tmp_path / 'j.xml'}")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*existing cluster stub lacks capability multi-node*",
            "*existing cluster stub lacks capability disruptive*",
        ]
    )


def test_unmarked_tests_never_start_a_cluster(pytester: pytest.Pytester, tmp_path: Path) -> None:
    # No stub: asking for the (kind) cluster would fail; plain tests must not ask.
    pytester.makepyfile("def test_plain():\n    pass\n")
    state = tmp_path / "state"
    result = pytester.runpytest(*NO_ALLURE, "--cluster", "kind", f"--junitxml={tmp_path / 'j.xml'}")
    result.assert_outcomes(passed=1)
    assert not (state / "runs").exists()


def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(*NO_ALLURE, "--cluster", "minikube")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cluster*invalid choice*minikube*"])


def test_bad_setting_is_a_usage_error_naming_the_field(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHCERT_KWOK_NODES", "0")
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(*NO_ALLURE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environment: kwok_nodes (MESHCERT_KWOK_NODES)*"])


def test_existing_without_kubeconfig_fails_tests_with_one_line(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHCERT_STATE_DIR", str(tmp_path / "state"))
    pytester.makepyfile("def test_a(cluster):\n    pass\n\ndef test_b(cluster):\n    pass\n")
    result = pytester.runpytest(*NO_ALLURE, "--cluster", "existing", f"--junitxml={tmp_path / 'j.xml'}")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*existing cluster unavailable: settings: kubeconfig: the existing provider needs*"]
    )


def test_default_report_paths(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_dns="def test_plain():\n    pass\n")
    result = pytester.runpytest("test_dns.py")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "junit" / "test_dns.xml").is_file()
    assert any((pytester.path / "reports" / "allure-results").glob("*-result.json"))


def test_user_chosen_report_paths_win(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(*NO_ALLURE, f"--junitxml={tmp_path / 'mine.xml'}")
    result.assert_outcomes(passed=1)
    assert (tmp_path / "mine.xml").is_file()
    assert not (pytester.path / "reports").exists()


def test_junit_name_from_what_was_run(pytester: pytest.Pytester) -> None:
    sub = pytester.mkpydir("conformance")
    (sub / "test_dns.py").write_text("def test_plain():\n    pass\n")
    result = pytester.runpytest(*NO_ALLURE, "conformance/test_dns.py::test_plain")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "junit" / "conformance-test_dns.xml").is_file()
    result = pytester.runpytest(*NO_ALLURE, str(pytester.path))
    result.assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "junit" / "all.xml").is_file()
