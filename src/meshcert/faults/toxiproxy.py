"""A typed, instance-based client for the Toxiproxy v2 REST API (default port 8474).

Why not toxiproxy-python, the client the design card names: its last release is from 2019, it
keeps the server's host and port in class-level globals (two servers in one process, e.g. one
per cluster or one local and one in a pod, cannot be addressed at once, and tests leak into each
other), and it sets no timeouts, so a hung or partitioned server hangs the test run forever —
exactly the condition a chaos harness creates. Its models are untyped dicts. The REST API is
small and stable (toxiproxy v2.12.0 api.go: /version, /reset, /populate, /proxies[/{p}],
/proxies/{p}/toxics[/{t}], and /metrics when the server runs with -proxy-metrics or
-runtime-metrics), so this module covers all of it in one class with explicit connect/read
timeouts on every call, frozen dataclasses for every shape (toxiproxy_model.py), and errors
raised as `ToxiproxyAPIError` (a `FaultError`) carrying the HTTP status and response body.

This is not a fault runner: restoring state belongs to the context managers in toxics.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from types import TracebackType
from urllib.parse import quote

import requests

from meshcert.errors import FaultError
from meshcert.faults.toxiproxy_model import (
    Bandwidth,
    ByteCounter,
    Latency,
    LimitData,
    Proxy,
    ProxyConfig,
    ResetPeer,
    Slicer,
    SlowClose,
    Stream,
    Timeout,
    Toxic,
    ToxicAttributes,
    UnknownToxic,
    attributes_to_json,
)

__all__ = [
    "DEFAULT_URL",
    "Bandwidth",
    "ByteCounter",
    "Latency",
    "LimitData",
    "Proxy",
    "ProxyConfig",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "Stream",
    "Timeout",
    "Toxic",
    "ToxiproxyAPIError",
    "ToxiproxyClient",
    "UnknownToxic",
]

#: The server's default listen address (cmd/server: -host localhost -port 8474).
DEFAULT_URL = "http://127.0.0.1:8474"
#: Connecting over loopback or a cluster network takes well under 1 ms; 2 s only bounds a SYN
#: sent to an address where nothing answers (the server pod is down, a partition is active).
DEFAULT_CONNECT_TIMEOUT = 2.0
#: Every API call is an in-memory change in the server; the slowest, disabling a proxy, waits for
#: its listener and connections to close (milliseconds). 10 s only bounds a hung server; the
#: server's own handler deadline is 25 s (api.go timeoutMiddleware).
DEFAULT_READ_TIMEOUT = 10.0
#: How much of a response body an error message quotes (the body is kept whole on the error).
_BODY_IN_MESSAGE = 500
_METRIC_LINE = re.compile(r"^(toxiproxy_proxy_(?:received|sent)_bytes_total)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class ToxiproxyAPIError(FaultError):
    """A Toxiproxy API call failed: ``status`` is None when no HTTP response arrived."""

    def __init__(self, method: str, url: str, status: int | None, body: str, reason: str) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        where = f"HTTP {status}" if status is not None else "no response"
        detail = f": {body[:_BODY_IN_MESSAGE]}" if body else ""
        super().__init__(f"toxiproxy {method} {url} failed ({where}, {reason}){detail}")


def _q(name: str) -> str:
    return quote(name, safe="")


class ToxiproxyClient:
    """One Toxiproxy server. Thread-safe only as far as `requests.Session` is: use one per thread."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self._session = session or requests.Session()
        # The server refuses browser user agents (api.go stopBrowsersMiddleware); say who we are.
        self._session.headers["User-Agent"] = "meshcert-toxiproxy-client"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self.base_url!r})"

    # -- transport ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, body: object = None, expect: tuple[int, ...]) -> str:
        url = self.base_url + path
        try:
            resp = self._session.request(
                method,
                url,
                data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"} if body is not None else None,
                timeout=self.timeout,
            )
        except requests.RequestException as e:
            raise ToxiproxyAPIError(method, url, None, "", f"{type(e).__name__}: {e}") from e
        if resp.status_code not in expect:
            raise ToxiproxyAPIError(method, url, resp.status_code, resp.text, f"expected {expect}")
        return resp.text

    def _json(
        self, method: str, path: str, *, body: object = None, expect: tuple[int, ...] = (200,)
    ) -> object:
        text = self._call(method, path, body=body, expect=expect)
        try:
            return json.loads(text)
        except ValueError as e:
            url = self.base_url + path
            raise ToxiproxyAPIError(method, url, expect[0], text, "response is not JSON") from e

    # -- server ------------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version string ("git" when it was built without -X ...Version=)."""
        raw = self._json("GET", "/version")
        if not isinstance(raw, dict) or "version" not in raw:
            raise FaultError(f"toxiproxy {self.base_url}/version: unexpected body {raw!r}")
        return str(raw["version"])

    def reset(self) -> None:
        """Enable every proxy and remove every toxic on the server."""
        self._call("POST", "/reset", expect=(204,))

    def metrics(self) -> str:
        """Prometheus text from GET /metrics; 404 (an error) unless the server enabled metrics."""
        return self._call("GET", "/metrics", expect=(200,))

    def byte_counters(self) -> list[ByteCounter]:
        """The per-proxy byte counters in `metrics` (needs a server started with -proxy-metrics)."""
        out: list[ByteCounter] = []
        for line in self.metrics().splitlines():
            m = _METRIC_LINE.match(line.strip())
            if not m:
                continue
            labels = dict(_LABEL.findall(m.group(2)))
            out.append(
                ByteCounter(
                    metric=m.group(1),
                    direction=labels.get("direction", ""),
                    proxy=labels.get("proxy", ""),
                    listener=labels.get("listener", ""),
                    upstream=labels.get("upstream", ""),
                    value=float(m.group(3)),
                )
            )
        return out

    # -- proxies -----------------------------------------------------------------------------

    def proxies(self) -> dict[str, Proxy]:
        raw = self._json("GET", "/proxies")
        if not isinstance(raw, dict):
            raise FaultError(f"toxiproxy {self.base_url}/proxies: expected an object, got {raw!r}")
        return {str(name): Proxy.from_json(p) for name, p in raw.items()}

    def create_proxy(self, config: ProxyConfig) -> Proxy:
        """Create a proxy; 409 (an error) if the name exists. Listen port 0 lets the server pick."""
        return Proxy.from_json(self._json("POST", "/proxies", body=config.to_json(), expect=(201,)))

    def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._json("GET", f"/proxies/{_q(name)}"))

    def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        """Change only the given fields (PATCH); a new listen/upstream restarts the listener."""
        body = {
            k: v
            for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled))
            if v is not None
        }
        return Proxy.from_json(self._json("PATCH", f"/proxies/{_q(name)}", body=body))

    def enable_proxy(self, name: str) -> Proxy:
        return self.update_proxy(name, enabled=True)

    def disable_proxy(self, name: str) -> Proxy:
        """Stop listening and close every open connection of the proxy."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{_q(name)}", expect=(204,))

    def populate(self, configs: Sequence[ProxyConfig]) -> list[Proxy]:
        """Create or replace proxies in bulk; all-or-nothing validation, then one by one.

        On a mid-way failure the server answers with the error *and* the proxies it did create;
        the raised error's body carries both.
        """
        raw = self._json("POST", "/populate", body=[c.to_json() for c in configs], expect=(201,))
        if not isinstance(raw, dict) or not isinstance(raw.get("proxies"), list):
            raise FaultError(f"toxiproxy {self.base_url}/populate: unexpected body {raw!r}")
        return [Proxy.from_json(p) for p in raw["proxies"]]

    # -- toxics ------------------------------------------------------------------------------

    def toxics(self, proxy: str) -> list[Toxic]:
        raw = self._json("GET", f"/proxies/{_q(proxy)}/toxics")
        if not isinstance(raw, list):
            raise FaultError(f"toxiproxy {self.base_url} toxics of {proxy!r}: expected a list, got {raw!r}")
        return [Toxic.from_json(t) for t in raw]

    def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        """Add ``toxic``; it applies to open connections too. 409 (an error) if the name exists."""
        path = f"/proxies/{_q(proxy)}/toxics"
        return Toxic.from_json(self._json("POST", path, body=toxic.to_json()))

    def get_toxic(self, proxy: str, name: str) -> Toxic:
        return Toxic.from_json(self._json("GET", f"/proxies/{_q(proxy)}/toxics/{_q(name)}"))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: ToxicAttributes | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        """Change a toxic's attributes and/or toxicity in place (type and stream are fixed)."""
        if toxicity is not None and not 0.0 <= toxicity <= 1.0:
            raise FaultError(f"toxicity must be within [0, 1], got {toxicity}")
        body: dict[str, object] = {}
        if attributes is not None:
            body["attributes"] = attributes_to_json(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return Toxic.from_json(self._json("PATCH", f"/proxies/{_q(proxy)}/toxics/{_q(name)}", body=body))

    def delete_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{_q(proxy)}/toxics/{_q(name)}", expect=(204,))
