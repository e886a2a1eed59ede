"""Throwaway namespaces: one per test, labelled with the run id, deleted (and awaited) afterwards.

Why it exists: isolation between tests is by namespace (the e2e framework's habit), so names
must be unique across concurrent runs (run id) and within a run (a counter), readable in
`kubectl get ns` (a prefix from the test name), and valid DNS labels (≤ 63 characters). The run
labels let `meshcert gc` delete whatever a killed run left behind.

Deletion waits with a watch: a namespace disappears only after the namespace controller has
removed its contents, and the DELETED event says so without polling.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from itertools import count

from kubernetes import watch
from kubernetes.client import ApiClient, CoreV1Api, V1Namespace, V1ObjectMeta

from meshcert.errors import WaitTimeout
from meshcert.kube.client import CLIENT_ERRORS, DEFAULT_TIMEOUT, KubeApiError, call, translate
from meshcert.runid import run_labels

#: Kubernetes' limit for a namespace name (an RFC 1123 DNS label).
MAX_NAMESPACE_LENGTH = 63
#: Namespace deletion waits for every pod's graceful termination (default 30 s) plus controller
#: passes; 120 s covers the default grace period with room for a loaded 2-core machine.
NAMESPACE_DELETE_TIMEOUT = 120.0
#: A watch request is re-opened at least this often (seconds), so a silently dropped connection
#: costs at most one period rather than the whole timeout.
_WATCH_PERIOD = 30
#: HTTP 410 Gone: a watch's resourceVersion is older than etcd's compaction window.
_GONE = 410


def sanitize_label(text: str) -> str:
    """Lowercase ``text`` into DNS-label characters: ``test_Foo[a-1]`` → ``test-foo-a-1``."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def namespace_name(prefix: str, run_id: str, counter: int) -> str:
    """``<prefix>-<run id>-<counter>``, the prefix shortened so the whole fits in 63 characters.

    The run id and counter are never shortened (they make the name unique); the prefix is only
    for humans. An empty or unusable prefix becomes ``t``.
    """
    suffix = f"-{run_id}-{counter}"
    room = MAX_NAMESPACE_LENGTH - len(suffix)
    if room < 1:
        raise ValueError(f"run id {run_id!r} and counter {counter} leave no room in a namespace name")
    head = sanitize_label(prefix)[:room].rstrip("-") or "t"
    return head + suffix


def create_namespace(api: ApiClient, name: str, *, run_id: str, labels: dict[str, str] | None = None) -> str:
    """Create namespace ``name`` carrying the run labels (plus ``labels``); returns the name."""
    body = V1Namespace(metadata=V1ObjectMeta(name=name, labels={**(labels or {}), **run_labels(run_id)}))
    call(f"create namespace {name}", CoreV1Api(api).create_namespace, body)
    return name


def delete_namespace(
    api: ApiClient, name: str, *, wait: bool = True, timeout: float = NAMESPACE_DELETE_TIMEOUT
) -> None:
    """Delete namespace ``name`` (idempotent); with ``wait``, return only once it is gone.

    Raises WaitTimeout naming the namespace's phase and its conditions (which say what is still
    being finalized) if it is still there after ``timeout`` seconds.
    """
    core = CoreV1Api(api)
    try:
        call(f"delete namespace {name}", core.delete_namespace, name)
    except KubeApiError as e:
        if e.not_found:
            return
        raise
    if wait:
        _wait_gone(core, name, timeout=timeout)


def _wait_gone(core: CoreV1Api, name: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "(not observed)"
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            listing = core.list_namespace(field_selector=f"metadata.name={name}")
        except CLIENT_ERRORS as e:
            raise translate(e, f"get namespace {name}") from e
        if not listing.items:
            return
        last = _describe(listing.items[0])
        period = max(1, min(_WATCH_PERIOD, int(remaining)))
        w = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            for event in w.stream(  # type: ignore[no-untyped-call]
                core.list_namespace,
                field_selector=f"metadata.name={name}",
                resource_version=listing.metadata.resource_version if listing.metadata else None,
                timeout_seconds=period,
                # The server ends the watch after `period`; allow the read that long plus slack.
                _request_timeout=(DEFAULT_TIMEOUT[0], period + DEFAULT_TIMEOUT[0]),
            ):
                if event["type"] == "DELETED":
                    return
                last = _describe(event["object"])
        except CLIENT_ERRORS as e:
            if getattr(e, "status", None) == _GONE:
                continue  # our resourceVersion was compacted away: list again
            raise translate(e, f"watch namespace {name}") from e
        finally:
            w.stop()  # type: ignore[no-untyped-call]
    raise WaitTimeout(f"namespace {name} to be deleted", timeout, last)


def _describe(ns: object) -> str:
    status = getattr(ns, "status", None)
    phase = getattr(status, "phase", None) or "?"
    conditions = [
        f"{c.type}={c.status}: {c.message}"
        for c in (getattr(status, "conditions", None) or [])
        if c.status == "True"
    ]
    return f"phase {phase}" + (f"; {'; '.join(conditions)}" if conditions else "")


@dataclass
class NamespaceFactory:
    """Hands out unique throwaway namespaces for one run (the counter lives here, not globally)."""

    api: ApiClient
    run_id: str
    _counter: count[int] = field(default_factory=lambda: count(1))

    def create(self, prefix: str, *, labels: dict[str, str] | None = None) -> str:
        """A new namespace named after ``prefix`` (e.g. the test's name), unique in this run."""
        while True:
            name = namespace_name(prefix, self.run_id, next(self._counter))
            try:
                return create_namespace(self.api, name, run_id=self.run_id, labels=labels)
            except KubeApiError as e:
                if not e.conflict:  # 409: left over from a previous use of this run id; skip it
                    raise

    def delete(self, name: str, *, wait: bool = True, timeout: float = NAMESPACE_DELETE_TIMEOUT) -> None:
        delete_namespace(self.api, name, wait=wait, timeout=timeout)
