"""exec_in_pod when the exec itself fails: a KubeApiError naming it, not the client's ValueError."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiClient

from meshcert.kube import exec as kexec
from meshcert.kube.client import KubeApiError

EXITED = (
    "Internal error occurred: error executing command in container: container is in CONTAINER_EXITED state"
)


class _ExitedContainerStream:
    """What kubernetes.stream returns when the container exited under a terminating pod."""

    sock = None

    def run_forever(self, timeout: float) -> None:
        pass

    def read_stdout(self) -> str:
        return ""

    def read_stderr(self) -> str:
        return ""

    def is_open(self) -> bool:
        return False

    @property
    def returncode(self) -> int:
        raise ValueError(f"invalid literal for int() with base 10: {EXITED!r}")

    def close(self) -> None:
        pass


def test_an_exec_into_an_exited_container_is_a_kube_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_stream(*_a: Any, **_kw: Any) -> _ExitedContainerStream:
        return _ExitedContainerStream()

    monkeypatch.setattr(kexec, "stream", fake_stream)
    with pytest.raises(KubeApiError, match="CONTAINER_EXITED") as info:
        kexec.exec_in_pod(ApiClient(), "ns", "server-1", ["true"], container="istio-proxy")
    assert "ns/server-1" in str(info.value)
