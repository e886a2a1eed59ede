"""'No proxy rejected config': which pods it asks, and which failed asks it forgives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from kubernetes.client import V1Container, V1ObjectMeta, V1Pod, V1PodList, V1PodSpec, V1PodStatus
from kubernetes.client.exceptions import ApiException

from meshcert.errors import MeshError
from meshcert.mesh import istio
from meshcert.mesh.istio import PROXY_CONTAINER, IstioMesh


def _pod(name: str, *, deleting: bool = False) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(name=name, deletion_timestamp=datetime.now(UTC) if deleting else None),
        spec=V1PodSpec(containers=[V1Container(name="app"), V1Container(name=PROXY_CONTAINER)]),
        status=V1PodStatus(phase="Running"),
    )


class _Core:
    """CoreV1Api over fixed answers: the pod list, and what a read of each pod returns now."""

    listed: ClassVar[list[V1Pod]] = []
    now: ClassVar[dict[str, V1Pod | None]] = {}

    def __init__(self, _api: object) -> None:
        pass

    def list_namespaced_pod(self, _namespace: str) -> V1PodList:
        return V1PodList(items=self.listed)

    def read_namespaced_pod(self, name: str, _namespace: str) -> V1Pod:
        pod = self.now.get(name)
        if pod is None:
            raise ApiException(status=404, reason="Not Found")
        return pod


def _mesh(monkeypatch: pytest.MonkeyPatch, listed: list[V1Pod], now: dict[str, V1Pod | None],
          answers: dict[str, dict[str, int] | Exception]) -> IstioMesh:  # fmt: skip
    monkeypatch.setattr(_Core, "listed", listed)
    monkeypatch.setattr(_Core, "now", now)
    monkeypatch.setattr(istio, "CoreV1Api", _Core)
    mesh = IstioMesh(None, Path("kc"), Path("cache"), "c")  # type: ignore[arg-type]

    def rejected(_namespace: str, pod: str) -> dict[str, int]:
        answer = answers[pod]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(mesh, "rejected", rejected)
    return mesh


EXEC_KILLED = MeshError("pilot-agent request GET stats?filter=update_rejected in ns/b: exit 137: ")


def test_a_rejecting_proxy_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    mesh = _mesh(
        monkeypatch, [_pod("a"), _pod("b")], {}, {"a": {}, "b": {"cluster_manager.cds.update_rejected": 2}}
    )
    with pytest.raises(MeshError, match=r"rejected config in ns: \{'b': \{'cluster_manager"):
        mesh.assert_config_accepted("ns")


@pytest.mark.parametrize("now", [None, _pod("b", deleting=True)], ids=["gone", "terminating"])
def test_a_failed_ask_is_forgiven_when_the_pod_is_leaving(
    monkeypatch: pytest.MonkeyPatch, now: V1Pod | None
) -> None:
    """The list predates a scale-down; the exec died with the sidecar."""
    mesh = _mesh(monkeypatch, [_pod("a"), _pod("b")], {"b": now}, {"a": {}, "b": EXEC_KILLED})
    mesh.assert_config_accepted("ns")


def test_a_failed_ask_of_a_pod_that_stays_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    mesh = _mesh(monkeypatch, [_pod("a"), _pod("b")], {"b": _pod("b")}, {"a": {}, "b": EXEC_KILLED})
    with pytest.raises(MeshError, match="exit 137"):
        mesh.assert_config_accepted("ns")


def test_terminating_pods_are_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    mesh = _mesh(monkeypatch, [_pod("a"), _pod("b", deleting=True)], {}, {"a": {}})  # b would KeyError
    mesh.assert_config_accepted("ns")
