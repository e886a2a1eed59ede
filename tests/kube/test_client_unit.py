"""Client construction and error translation (no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes.client import Configuration
from kubernetes.client.exceptions import ApiException

from meshcert.errors import ConfigError, KubeError
from meshcert.kube.client import (
    DEFAULT_TIMEOUT,
    KubeApiError,
    TimeoutApiClient,
    call,
    new_api_client,
    translate,
)


def test_translate_keeps_status_reason_and_server_message() -> None:
    body = json.dumps(
        {
            "kind": "Status",
            "message": 'Deployment.apps "web" is invalid',
            "details": {"causes": [{"field": "spec.replicas", "message": "must be >= 0"}]},
        }
    )
    e = ApiException(status=422, reason="Unprocessable Entity")
    e.body = body
    err = translate(e, "create Deployment ns/web")
    assert isinstance(err, KubeError)
    assert (err.status, err.reason) == (422, "Unprocessable Entity")
    assert err.causes == (("spec.replicas", "must be >= 0"),)
    assert (
        str(err)
        == 'create Deployment ns/web failed (422 Unprocessable Entity): Deployment.apps "web" is invalid'
    )


def test_translate_connection_errors_have_status_zero() -> None:
    err = translate(urllib3.exceptions.MaxRetryError(None, "/api", "refused"), "list pods")  # type: ignore[arg-type]
    assert err.status == 0
    assert "MaxRetryError" in str(err)


def test_call_chains_the_cause() -> None:
    def boom() -> None:
        raise ApiException(status=404, reason="Not Found")

    with pytest.raises(KubeApiError) as err:
        call("get pod ns/x", boom)
    assert err.value.not_found
    assert isinstance(err.value.__cause__, ApiException)


def test_every_request_gets_the_default_timeout() -> None:
    cfg = Configuration()
    cfg.host = "https://127.0.0.1:1"
    api = TimeoutApiClient(configuration=cfg)
    seen: list[Any] = []

    def fake_request(*_: Any, **kw: Any) -> None:
        seen.append(kw["_request_timeout"])

    api.rest_client.request = fake_request
    api.call_api("GET", "https://127.0.0.1:1/api")
    api.call_api("GET", "https://127.0.0.1:1/api", _request_timeout=(1.0, 99.0))
    assert seen == [DEFAULT_TIMEOUT, (1.0, 99.0)]


def test_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as err:
        new_api_client(tmp_path / "nope")
    assert err.value.field == "kubeconfig"


def test_unloadable_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "kubeconfig"
    f.write_text("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n")
    with pytest.raises(ConfigError, match="cannot load"):
        new_api_client(f)
