"""`scaled_to_zero` records before applying, always scales back, and gc can revert the record."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kubernetes.client import ApiClient

from meshcert.errors import FaultError
from meshcert.faults import revert, scale
from meshcert.runs import FaultRecord, RunStore

#: The fakes below replace every API call; the client object is never used.
API = cast(ApiClient, object())
RUN = "mc-0badc0de"


class FakeDeployments:
    """Stands in for the API: replicas per Deployment, and the order of calls."""

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.calls: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch, store: RunStore, run_id: str) -> None:
        def selector(_api: object, ns: str, name: str) -> tuple[int, str]:
            return self.replicas, "app=istiod"

        def do_scale(_api: object, ns: str, name: str, n: int) -> None:
            recorded = [f.key for f in (store.read(run_id) or SimpleNamespace(faults=[])).faults]
            self.calls.append(f"scale {ns}/{name}={n} recorded={recorded}")
            self.replicas = n

        def no_pods(_api: object, ns: str, sel: str, *, timeout: float) -> float:
            self.calls.append(f"wait-gone {sel}")
            return 0.5

        def available(_api: object, ns: str, name: str, *, timeout: float) -> Any:
            self.calls.append("wait-available")
            return SimpleNamespace(spec=SimpleNamespace(replicas=self.replicas))

        monkeypatch.setattr(scale, "_selector", selector)
        monkeypatch.setattr(scale, "scale", do_scale)
        monkeypatch.setattr(scale, "wait_for_no_pods", no_pods)
        monkeypatch.setattr(scale, "wait_for_deployment_available", available)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path)
    s.create(RUN)
    return s


def test_scales_down_and_back_with_record(
    monkeypatch: pytest.MonkeyPatch, store: RunStore, tmp_path: Path
) -> None:
    fake = FakeDeployments(2)
    fake.install(monkeypatch, store, RUN)
    with scale.scaled_to_zero(API, "istio-system", "istiod", run_id=RUN, state_dir=tmp_path) as down:
        assert fake.replicas == 0 and down.replicas == 2 and down.down_after_s == 0.5
    assert fake.replicas == 2
    # Recorded before the scale-down (gc can revert a SIGKILLed run), removed after the revert.
    assert fake.calls[0] == "scale istio-system/istiod=0 recorded=['deployment-scale:istio-system/istiod']"
    assert fake.calls[-1] == "wait-available"
    record = store.read(RUN)
    assert record is not None and not record.faults


def test_body_failure_still_scales_back(
    monkeypatch: pytest.MonkeyPatch, store: RunStore, tmp_path: Path
) -> None:
    fake = FakeDeployments(1)
    fake.install(monkeypatch, store, RUN)
    with (
        pytest.raises(RuntimeError, match="test body"),
        scale.scaled_to_zero(API, "istio-system", "istiod", run_id=RUN, state_dir=tmp_path),
    ):
        raise RuntimeError("test body")
    assert fake.replicas == 1


def test_zero_replicas_is_refused(monkeypatch: pytest.MonkeyPatch, store: RunStore, tmp_path: Path) -> None:
    fake = FakeDeployments(0)
    fake.install(monkeypatch, store, RUN)
    with (
        pytest.raises(FaultError, match="already has 0 replicas"),
        scale.scaled_to_zero(API, "istio-system", "istiod", run_id=RUN, state_dir=tmp_path),
    ):
        pass


def test_gc_revert_runs_kubectl_on_the_control_plane_node(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, list[str]]] = []

    def node_exec(node: str, argv: list[str]) -> tuple[int, str]:
        seen.append((node, argv))
        return 0, "1" if "get" in argv else "scaled"

    monkeypatch.setattr(revert, "node_exec", node_exec)
    fault = FaultRecord(
        key="deployment-scale:istio-system/istiod",
        kind="deployment-scale",
        cluster="dev",
        detail={"namespace": "istio-system", "name": "istiod", "replicas": "1"},
    )
    revert.revert_fault(fault, run_id=RUN)
    assert seen[0][0] == "dev-control-plane"
    assert seen[0][1][-2:] == ["deployment/istiod", "--replicas=1"]

    # A read-back that disagrees is an error, not a silent success.
    monkeypatch.setattr(revert, "node_exec", lambda node, argv: (0, "0"))
    with pytest.raises(FaultError, match="reads back replicas='0', expected 1"):
        revert.revert_fault(fault, run_id=RUN)
