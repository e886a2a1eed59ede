"""Manifest validation and run-label injection (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcert.errors import ConfigError
from meshcert.kube.apply import ApiResource, load_manifests, validate_document, with_run_labels
from meshcert.runid import MANAGED_LABEL, RUN_LABEL

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
    },
}


def test_run_labels_on_object_and_pod_template() -> None:
    out = with_run_labels(DEPLOYMENT, "mc-0000abcd")
    for meta in (out["metadata"], out["spec"]["template"]["metadata"]):
        assert meta["labels"] == {"app": "web", RUN_LABEL: "mc-0000abcd", MANAGED_LABEL: "true"}
    assert out["spec"]["selector"] == {"matchLabels": {"app": "web"}}  # selectors untouched
    assert RUN_LABEL not in DEPLOYMENT["metadata"]["labels"]  # input not mutated


def test_run_labels_on_cronjob_job_and_pod_templates() -> None:
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}},
    }
    out = with_run_labels(cron, "mc-0000abcd")
    assert out["spec"]["jobTemplate"]["metadata"]["labels"][RUN_LABEL] == "mc-0000abcd"
    assert out["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"][RUN_LABEL] == "mc-0000abcd"


def test_object_without_metadata_labels_gets_them() -> None:
    out = with_run_labels({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "mc-0000abcd")
    assert out["metadata"]["labels"] == {RUN_LABEL: "mc-0000abcd", MANAGED_LABEL: "true"}


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({"kind": "Pod", "metadata": {"name": "a"}}, "apiVersion", "missing"),
        ({"apiVersion": "v1", "metadata": {"name": "a"}}, "kind", "missing"),
        ({"apiVersion": "v1", "kind": "Pod"}, "metadata", "missing"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "metadata.name", "missing"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}}, "metadata.name", "RFC 1123"),
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"n": 1}}},
            "metadata.labels",
            "strings",
        ),
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "other"}},
            "metadata.namespace",
            "'other'",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "a"},
                "spec": {"template": 3},
            },
            "spec.template",
            "mapping",
        ),
    ],
)
def test_bad_documents_name_source_and_field(doc: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_document(doc, source="fixtures/x.yaml", namespace="ns1")
    assert err.value.source == "fixtures/x.yaml"
    assert err.value.field == field
    assert reason in err.value.reason
    assert "\n" not in str(err.value)


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping, got list"):
        validate_document([1], source="s")


def test_load_manifests_numbers_documents_of_multi_doc_files(tmp_path: Path) -> None:
    f = tmp_path / "two.yaml"
    f.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Pod\n"
    )
    with pytest.raises(ConfigError) as err:
        load_manifests(f)
    assert err.value.source == f"{f}#2"
    assert err.value.field == "metadata"


def test_load_manifests_single_document_source_is_the_file(tmp_path: Path) -> None:
    f = tmp_path / "one.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (m,) = load_manifests(f)
    assert (m.source, m.kind, m.name, m.api_version) == (str(f), "ConfigMap", "a", "v1")


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: v1\nkind: [unclosed\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+") as err:
        load_manifests(f)
    assert err.value.source == str(f)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_manifests(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("---\n")
    with pytest.raises(ConfigError, match="no documents"):
        load_manifests(tmp_path / "empty.yaml")


@pytest.mark.parametrize(
    ("resource", "namespace", "path"),
    [
        (ApiResource("v1", "configmaps", True), "ns", "/api/v1/namespaces/ns/configmaps/x"),
        (ApiResource("apps/v1", "deployments", True), "ns", "/apis/apps/v1/namespaces/ns/deployments/x"),
        (
            ApiResource("scheduling.k8s.io/v1", "priorityclasses", False),
            None,
            "/apis/scheduling.k8s.io/v1/priorityclasses/x",
        ),
    ],
)
def test_resource_paths(resource: ApiResource, namespace: str | None, path: str) -> None:
    assert resource.path(namespace=namespace, name="x") == path
