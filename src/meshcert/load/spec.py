"""What a load run does, as one frozen, JSON-serialisable spec shared by parent and child.

The same file drives a local child process, a local master + N workers, and Locust pods in a
cluster (load/incluster.py): the child entry point (``python -m meshcert.load._child``) receives
only this spec plus its role, so nothing about the run lives in the parent's memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from meshcert.errors import LoadError
from meshcert.load.arrival import DEFAULT_LAG_BOUND_S

#: Highest rate one spec accepts. One FastHttpUser process does a few thousand req/s on one
#: core; 100k/s is far beyond any local or per-pod use and catches unit mistakes (ms vs s).
MAX_RATE = 100_000.0
#: One hour: the longest soak the harness runs; longer is almost certainly a unit mistake.
MAX_DURATION_S = 3600.0


@dataclass(frozen=True)
class LoadSpec:
    """A constant-arrival-rate run: ``rate`` req/s to ``target + path`` for ``duration`` s."""

    #: Base URL, e.g. ``http://127.0.0.1:8080``.
    target: str
    rate: float
    duration: float
    path: str = "/"
    method: str = "GET"
    #: Maximum concurrency: requests in flight at once. Must cover rate x latency (Little's law)
    #: with headroom, else planned requests find no free user and are counted as ``no_user``.
    #: 50 covers 500 req/s at 100 ms.
    users: int = 50
    #: 0: one local process. N ≥ 1: a Locust master and N workers (local processes or pods).
    workers: int = 0
    #: Per-request network timeout (FastHttpUser.network_timeout); a timed-out request fails.
    request_timeout: float = 10.0
    #: Connect timeout; loopback and cluster connects take < 1 ms, 5 s bounds a dead address.
    connect_timeout: float = 5.0
    #: False sends ``Connection: close``, so every request opens its own connection (Toxiproxy
    #: draws ``toxicity`` once per connection, so per-request fault ratios need this).
    keep_alive: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    #: geventhttpclient (under FastHttpUser) silently re-sends an idempotent request on a new
    #: connection when one is closed or reset, up to pool size + 1 times, whatever Locust's
    #: max_retries says. That hides connection faults (a 30 % reset_peer toxic measured 0/200
    #: errors), so by default every attempt counts, as with requests/urllib3's defaults.
    transport_retries: bool = False
    #: A planned request whose dispatch is later than this is not sent and counted as late.
    lag_bound: float = DEFAULT_LAG_BOUND_S
    #: Locust master port for distributed runs (0: the parent picks a free loopback port).
    master_port: int = 0
    #: Where workers reach the master; loopback for local runs, a Service name in a cluster.
    master_host: str = "127.0.0.1"
    #: Address the master binds; None binds ``master_host`` (right for loopback). In a pod the
    #: Service name is not a local address, so the in-cluster runner binds ``*`` (all interfaces).
    master_bind_host: str | None = None
    #: Seconds to wait for workers to connect before giving up (Locust connects in < 1 s locally).
    worker_connect_timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LoadError(f"load spec: target must be an http(s) URL, got {self.target!r}")
        if not 0 < self.rate <= MAX_RATE:
            raise LoadError(f"load spec: rate must be within (0, {MAX_RATE:g}] req/s, got {self.rate}")
        if not 0 < self.duration <= MAX_DURATION_S:
            raise LoadError(
                f"load spec: duration must be within (0, {MAX_DURATION_S:g}] s, got {self.duration}"
            )
        if self.users < 1 or self.workers < 0:
            raise LoadError(f"load spec: need users >= 1 and workers >= 0, got {self.users}, {self.workers}")
        if self.workers and self.users < self.workers:
            raise LoadError(f"load spec: users ({self.users}) must be >= workers ({self.workers})")
        if not self.path.startswith("/"):
            raise LoadError(f"load spec: path must start with '/', got {self.path!r}")
        if self.request_timeout <= 0 or self.connect_timeout <= 0 or self.lag_bound <= 0:
            raise LoadError("load spec: request_timeout, connect_timeout and lag_bound must be > 0")

    @property
    def planned_requests(self) -> int:
        return int(self.rate * self.duration + 1e-9)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["headers"] = [list(h) for h in self.headers]
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LoadSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise LoadError(f"load spec: unknown field(s) {sorted(unknown)}")
        values = dict(raw)
        values["headers"] = tuple((str(k), str(v)) for k, v in values.get("headers", ()))
        try:
            return cls(**values)
        except TypeError as e:
            raise LoadError(f"load spec: {e}") from e

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> LoadSpec:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise LoadError(f"{path}: cannot read load spec: {e}") from e
        if not isinstance(raw, dict):
            raise LoadError(f"{path}: load spec must be a JSON object")
        return cls.from_json(raw)
