"""kwok arguments and node shape, existing-cluster capability probes, provider factory (no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshcert.cluster.base import Capability
from meshcert.cluster.existing import ExistingCluster, context_name, probe_capabilities
from meshcert.cluster.factory import make_cluster
from meshcert.cluster.kind import KindCluster
from meshcert.cluster.kwok import KWOK_NODE_ANNOTATION, KwokCluster, last_kwok_error, node_manifest
from meshcert.errors import ConfigError, MeshcertError
from meshcert.settings import Settings, load_settings


def settings(tmp_path: Path, **cli: Any) -> Settings:
    return load_settings(pyproject=None, environ={}, cli={"state_dir": tmp_path / "state", **cli})


def test_kwokctl_gets_a_local_path_for_every_binary(tmp_path: Path) -> None:
    s = settings(tmp_path)
    try:
        args = KwokCluster(settings=s, run_id="mc-0000abcd").create_args()
    except MeshcertError as e:
        pytest.skip(f"toolchain not built: {e}")
    flags = dict(zip(args[::2], args[1::2], strict=False))
    for flag in (
        "--kube-apiserver-binary",
        "--kube-controller-manager-binary",
        "--kube-scheduler-binary",
        "--etcd-binary",
        "--kwok-controller-binary",
    ):
        assert Path(flags[flag]).is_file(), flag
    assert not any("://" in a for a in args)
    assert flags["--runtime"] == "binary"
    assert flags["--name"] == "mc-0000abcd"
    assert flags["--kubeconfig"] == ""  # never edit ~/.kube/config


def test_kwok_workdir_is_under_state_dir(tmp_path: Path) -> None:
    c = KwokCluster(settings=settings(tmp_path, cluster_name="c1"), run_id="mc-0000abcd")
    assert c.kubeconfig() == tmp_path / "state" / "kwok" / "clusters" / "c1" / "kubeconfig.yaml"
    assert c.status() is None  # nothing created yet
    assert c.down() is False  # idempotent on a cluster that does not exist: nothing removed


def test_node_manifest_is_kwok_managed_with_zone() -> None:
    n = node_manifest(4)
    meta: Any = n["metadata"]
    assert meta["name"] == "kwok-node-4"
    assert meta["annotations"][KWOK_NODE_ANNOTATION] == "fake"
    assert meta["labels"]["topology.kubernetes.io/zone"] == "zone-b"


def test_last_kwok_error_picks_the_json_error_line() -> None:
    stderr = (
        '{"level":"INFO","msg":"Cluster is creating"}\n'
        '{"level":"ERROR","msg":"Failed to setup config","err":"open x: no such file"}\n'
    )
    assert last_kwok_error(stderr) == "Failed to setup config: open x: no such file"
    assert last_kwok_error("plain failure\n") == "plain failure"


def _node(
    name: str, *, ready: bool = True, kwok: bool = False, cp: bool = False, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake"} if kwok else {},
            "labels": {"node-role.kubernetes.io/control-plane": ""} if cp else {},
        },
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_probe_capabilities() -> None:
    real = [_node("cp", cp=True), _node("w1"), _node("w2")]
    assert probe_capabilities(real) == {Capability.DATAPLANE, Capability.MULTI_NODE}
    assert probe_capabilities([_node("a", kwok=True), _node("b", kwok=True)]) == {Capability.MULTI_NODE}
    assert Capability.DATAPLANE in probe_capabilities([_node("a", kwok=True), _node("w")])


@pytest.mark.parametrize(
    "unfit",
    [
        _node("w2", ready=False),
        _node("w2", unschedulable=True),
        _node("w2", taints=[{"key": "k", "effect": "NoSchedule"}]),
        _node("w2", cp=True),
    ],
)
def test_multi_node_needs_two_schedulable_ready_workers(unfit: dict[str, Any]) -> None:
    assert Capability.MULTI_NODE not in probe_capabilities([_node("w1"), unfit])


def test_disruptive_only_when_asked() -> None:
    assert Capability.DISRUPTIVE not in probe_capabilities([_node("w")])
    assert Capability.DISRUPTIVE in probe_capabilities([_node("w")], disruptive=True)


def test_context_name(tmp_path: Path) -> None:
    f = tmp_path / "kc"
    f.write_text("current-context: lab\n")
    assert context_name(f) == "lab"
    f.write_text("kind: Config\n")
    with pytest.raises(ConfigError, match="current-context"):
        context_name(f)


def test_factory_chooses_provider(tmp_path: Path) -> None:
    assert isinstance(make_cluster(settings(tmp_path, provider="kind"), run_id="mc-0000abcd"), KindCluster)
    assert isinstance(make_cluster(settings(tmp_path, provider="kwok"), run_id="mc-0000abcd"), KwokCluster)
    kc = tmp_path / "kc"
    kc.write_text("current-context: lab\n")
    existing = make_cluster(settings(tmp_path, provider="existing", kubeconfig=kc), run_id="mc-0000abcd")
    assert isinstance(existing, ExistingCluster)
    assert existing.name == "lab"
    assert existing.down() is False  # a no-op: never deletes someone else's cluster


def test_factory_existing_needs_a_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        make_cluster(settings(tmp_path, provider="existing"), run_id="mc-0000abcd")
    assert err.value.field == "kubeconfig"
    with pytest.raises(ConfigError, match="file not found") as err:
        make_cluster(
            settings(tmp_path, provider="existing", kubeconfig=tmp_path / "no"), run_id="mc-0000abcd"
        )
    assert err.value.field == "kubeconfig"


def test_unknown_provider_is_rejected_by_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, provider="minikube")
    assert err.value.field.startswith("provider")
