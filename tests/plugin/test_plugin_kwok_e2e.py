"""The plugin end to end: a tiny suite run with ``--cluster kwok`` in a child pytest."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from meshcert.errors import MeshcertError
from meshcert.settings import Settings
from meshcert.toolchain.gobuild import find_binary

pytestmark = pytest.mark.e2e

SUITE = """
import pytest
from meshcert.kube.apply import apply_manifests
from meshcert.kube.waits import wait_for_deployment_available

DEP = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "meshcert/testapp:0.1.0"}]}}},
}

def test_deploys(kube, namespace, run_id, cluster):
    assert cluster.provider == "kwok"
    apply_manifests(kube, [DEP], namespace=namespace, run_id=run_id)
    wait_for_deployment_available(kube, namespace, "web", timeout=60)

@pytest.mark.dataplane
def test_needs_real_pods(cluster):
    raise AssertionError("must be skipped on kwok")

@pytest.mark.multi_node
def test_spread(cluster):
    assert len(cluster.nodes) == 3

def test_fails_with_forensics(kube, namespace, run_id):
    apply_manifests(kube, [DEP], namespace=namespace, run_id=run_id)
    assert False, "deliberate"
"""


def test_suite_on_kwok(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meshcert_settings: Settings
) -> None:
    # pytester points HOME at a temp dir; the outer session's settings still name the real cache.
    cache = meshcert_settings.cache_dir
    try:
        find_binary(cache, "kwokctl")
    except MeshcertError as e:
        pytest.skip(f"toolchain not built: {e}")
    monkeypatch.setenv("MESHCERT_CACHE_DIR", str(cache))
    state = tmp_path / "state"
    monkeypatch.setenv("MESHCERT_STATE_DIR", str(state))
    monkeypatch.setenv("MESHCERT_KWOK_NODES", "3")
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("--cluster", "kwok", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=2, skipped=1, failed=1)
    result.stdout.fnmatch_lines(["*meshcert forensics*", "*namespace test-fails-with-forensics-mc-*"])
    (junit,) = (pytester.path / "reports" / "junit").glob("*.xml")
    skips = {
        c.attrib["name"]: s.attrib["message"]
        for c in ElementTree.parse(junit).iter("testcase")
        for s in c.iter("skipped")
    }
    assert skips == {"test_needs_real_pods": skips["test_needs_real_pods"]}
    assert "kwok cluster mc-" in skips["test_needs_real_pods"]
    assert "lacks capability dataplane" in skips["test_needs_real_pods"]
    results = [
        json.loads(p.read_text())
        for p in (pytester.path / "reports" / "allure-results").glob("*-result.json")
    ]
    failed = next(r for r in results if r["name"] == "test_fails_with_forensics")
    names = [a["name"] for a in failed.get("attachments", [])]
    assert any(n.startswith("forensics test-fails-with-forensics-mc-") for n in names), names
    # Session end: the cluster is down and the run record gone.
    assert list((state / "kwok" / "clusters").iterdir()) == []
    assert not list((state / "runs").iterdir())
