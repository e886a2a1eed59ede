"""container_kill finds a native sidecar (istio-proxy is an init container with restartPolicy
Always): its id and restart count come from ``init_container_statuses``."""

from __future__ import annotations

import pytest
from kubernetes.client import V1ContainerStatus, V1Pod, V1PodStatus

from meshcert.errors import FaultError
from meshcert.faults.pods import _container_id, _restarts


def _status(name: str, restarts: int) -> V1ContainerStatus:
    return V1ContainerStatus(
        name=name, restart_count=restarts, container_id=f"containerd://{name}-id", image="i",
        image_id="i", ready=True,
    )  # fmt: skip


POD = V1Pod(
    status=V1PodStatus(
        container_statuses=[_status("app", 0)],
        init_container_statuses=[_status("istio-init", 0), _status("istio-proxy", 3)],
    )
)


def test_native_sidecar_found_among_init_containers() -> None:
    assert _container_id(POD, "istio-proxy") == "istio-proxy-id"
    assert _restarts(POD, "istio-proxy") == 3


def test_app_container_still_found() -> None:
    assert _container_id(POD, "app") == "app-id"
    assert _restarts(POD, "app") == 0


def test_missing_container_is_an_error() -> None:
    with pytest.raises(FaultError, match="no running container 'nope'"):
        _container_id(POD, "nope")
