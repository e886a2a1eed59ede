"""The one place an ApiClient is built and the one place the client library's errors are translated.

Why it exists: the `kubernetes` package defaults to a process-wide configuration and to *no*
request timeout, so one hung API server stalls a whole test session forever. Here every client
is built from an explicit kubeconfig path (no global state; several clusters can be used at
once) and every request carries a timeout unless the caller passes its own. Errors leave this
layer as `KubeApiError` (a `meshcert.errors.KubeError`) carrying the HTTP status, the reason and
the API server's own message, so callers never import `kubernetes.client.exceptions`.

What it is not: no retries (STYLE.md §5 — waits converge, calls fail loudly) and no caching.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import urllib3.exceptions
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException, ApiValueError
from kubernetes.config import new_client_from_config
from kubernetes.config.config_exception import ConfigException

from meshcert.errors import ConfigError, KubeError

P = ParamSpec("P")
T = TypeVar("T")

#: (connect, read) seconds for every request that sets none. Connect 5 s: the API servers we
#: target are local or on a LAN, and a TCP handshake that takes longer means it is down. Read
#: 30 s: far above a healthy server's latency for a single object or list (ms), but below the
#: 60 s the API server itself allows non-long-running requests, so we give up first with our
#: own message. Watches and exec pass their own timeouts (they are long-running by design).
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)

#: Body messages can be whole HTML pages from a proxy; a one-line error keeps the first part.
_MESSAGE_LIMIT = 300


class KubeApiError(KubeError):
    """An API call failed: ``status`` is the HTTP code (0 when no response came back)."""

    def __init__(
        self,
        what: str,
        *,
        status: int,
        reason: str,
        message: str,
        causes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.what = what
        self.status = status
        self.reason = reason
        self.message = message
        #: (field, message) pairs from the Status' details.causes: which field the server rejected.
        self.causes = causes
        detail = f"{status} {reason}".strip() if status else reason
        tail = f": {message}" if message and message != reason else ""
        super().__init__(f"{what} failed ({detail}){tail}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class TimeoutApiClient(ApiClient):
    """An ApiClient whose every request without an explicit ``_request_timeout`` gets ours."""

    def __init__(self, *args: Any, default_timeout: tuple[float, float] = DEFAULT_TIMEOUT, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.default_timeout = default_timeout

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        return super().call_api(
            method,
            url,
            header_params=header_params,
            body=body,
            post_params=post_params,
            _request_timeout=_request_timeout or self.default_timeout,
        )


def new_api_client(
    kubeconfig: Path, *, context: str | None = None, default_timeout: tuple[float, float] = DEFAULT_TIMEOUT
) -> ApiClient:
    """A client for the cluster in ``kubeconfig`` (its current context unless ``context``).

    `new_client_from_config` loads the file into a fresh Configuration (``persist_config=False``:
    never touches the library's global default); we move that configuration into our
    `TimeoutApiClient` so the default timeout applies to every request. Close the client when
    done (`ApiClient.close`) or use it as a context manager.
    """
    if not kubeconfig.is_file():
        raise ConfigError(str(kubeconfig), "kubeconfig", "file not found")
    try:
        loaded = new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context, persist_config=False
        )
    except (ConfigException, OSError, ValueError) as e:
        raise ConfigError(str(kubeconfig), "kubeconfig", f"cannot load: {e}") from e
    configuration = loaded.configuration
    loaded.close()
    return TimeoutApiClient(configuration=configuration, default_timeout=default_timeout)


def _parse_status(body: object) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(message, causes) of a metav1.Status body; a non-JSON body becomes the (shortened) message."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str) or not body:
        return "", ()
    try:
        parsed = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:_MESSAGE_LIMIT], ()
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("message"), str):
        return " ".join(body.split())[:_MESSAGE_LIMIT], ()
    details = parsed.get("details")
    raw_causes = details.get("causes") if isinstance(details, Mapping) else None
    causes = tuple(
        (str(c.get("field", "")), str(c.get("message", "")))
        for c in (raw_causes if isinstance(raw_causes, list) else [])
        if isinstance(c, Mapping)
    )
    return str(parsed["message"])[:_MESSAGE_LIMIT], causes


def translate(e: Exception, what: str) -> KubeApiError:
    """Our error for a client-library exception (HTTP error, timeout, refused connection)."""
    if isinstance(e, ApiException):
        message, causes = _parse_status(e.body)
        return KubeApiError(
            what, status=int(e.status or 0), reason=str(e.reason or ""), message=message, causes=causes
        )
    return KubeApiError(what, status=0, reason=type(e).__name__, message=str(e)[:_MESSAGE_LIMIT])


#: What a call may raise that means "the API said no or did not answer" (not a programming error).
CLIENT_ERRORS: tuple[type[Exception], ...] = (ApiException, ApiValueError, urllib3.exceptions.HTTPError)


def call(what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` with client errors turned into `KubeApiError` naming ``what``.

    ``what`` reads like "create Deployment ns/web" so the one-line message says which step failed.
    """
    try:
        return fn(*args, **kwargs)
    except CLIENT_ERRORS as e:
        raise translate(e, what) from e


def request(
    api: ApiClient,
    method: str,
    path: str,
    *,
    what: str,
    body: object = None,
    query: Mapping[str, str] | None = None,
    content_type: str = "application/json",
    timeout: tuple[float, float] | float | None = None,
) -> tuple[int, dict[str, Any]]:
    """A raw REST call (``path`` like ``/apis/apps/v1/namespaces/x/deployments``): (status, JSON).

    For what the typed APIs make awkward: kind-generic apply, discovery, custom resources.
    """
    headers = {"Accept": "application/json", "Content-Type": content_type}
    try:
        # param_serialize adds the host, encodes the query and applies token auth (incl. exec plugins).
        method, url, headers, body, _ = api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        raw = response.read()  # type: ignore[no-untyped-call]
        status = int(response.status)
    except CLIENT_ERRORS as e:
        raise translate(e, what) from e
    if status >= 400:  # the generated methods raise for these; the raw call leaves it to us
        message, causes = _parse_status(raw)
        reason = str(response.reason or "")
        raise KubeApiError(what, status=status, reason=reason, message=message, causes=causes)
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError as e:
        raise KubeApiError(what, status=status, reason="bad JSON", message=str(e)) from e
    if not isinstance(parsed, dict):
        raise KubeApiError(what, status=status, reason="bad JSON", message="expected an object")
    return status, parsed


def request_json(
    api: ApiClient,
    method: str,
    path: str,
    *,
    what: str,
    body: object = None,
    query: Mapping[str, str] | None = None,
    content_type: str = "application/json",
    timeout: tuple[float, float] | float | None = None,
) -> dict[str, Any]:
    """`request` when only the JSON body matters."""
    return request(
        api, method, path, what=what, body=body, query=query, content_type=content_type, timeout=timeout
    )[1]
