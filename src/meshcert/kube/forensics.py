"""Forensics of a namespace: events, pod states and container logs, bundled as text and JSON.

Why it exists: when a test fails, the namespace is usually deleted seconds later; the e2e
framework dumps events, pod statuses and logs after each failure so the report says *why*
(STYLE.md §7). The pytest plugin attaches this bundle to the Allure result.

Collection never raises for what it cannot read (a pod without logs — every pod on kwok — or a
forbidden list): each gap is recorded in ``errors`` so the bundle itself explains what is
missing. Sizes are bounded so a crash-looping pod cannot bloat the report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api, CoreV1Event, V1ContainerStatus, V1Pod

from meshcert.kube.client import KubeApiError, call

#: Lines of each container's log: the end of a log holds the failure; 200 lines is a screenful
#: or three, as much as anyone reads in a report.
LOG_TAIL_LINES = 200
#: Byte cap per container log (a single line can be huge): 64 KiB.
LOG_MAX_BYTES = 64 * 1024
#: Pods whose logs are fetched: a namespace of a test holds a handful; a scaled Deployment may
#: hold hundreds, and their statuses (always collected) say more than 100 copies of one log.
MAX_PODS_WITH_LOGS = 20
#: Events kept (newest last); the interesting ones are the last few before the failure.
MAX_EVENTS = 200


@dataclass(frozen=True)
class EventRecord:
    time: str
    type: str
    reason: str
    object: str
    message: str
    count: int


@dataclass(frozen=True)
class ContainerRecord:
    name: str
    ready: bool
    restart_count: int
    state: str
    last_state: str


@dataclass(frozen=True)
class PodRecord:
    name: str
    phase: str
    node: str
    conditions: dict[str, str]
    containers: list[ContainerRecord]
    deleting: bool


@dataclass
class Forensics:
    namespace: str
    collected_at: str
    events: list[EventRecord] = field(default_factory=list)
    pods: list[PodRecord] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def summary(self) -> str:
        """A few lines for the terminal: pods that are not Ready and the last warnings."""
        lines = [f"namespace {self.namespace}: {len(self.pods)} pod(s), {len(self.events)} event(s)"]
        for p in self.pods:
            if p.conditions.get("Ready") != "True":
                states = ", ".join(f"{c.name}={c.state}(restarts {c.restart_count})" for c in p.containers)
                lines.append(f"  pod {p.name}: {p.phase} on {p.node or '-'}: {states or 'no containers'}")
        warnings = [e for e in self.events if e.type == "Warning"][-5:]
        lines += [f"  {e.time} Warning {e.reason} {e.object}: {e.message}" for e in warnings]
        return "\n".join(lines)

    def to_text(self) -> str:
        out = [f"# Forensics of namespace {self.namespace} at {self.collected_at}", "", "## Events"]
        out += [
            f"{e.time} {e.type:<7} {e.reason:<20} {e.object:<40} {e.message}"
            + (f" (x{e.count})" if e.count > 1 else "")
            for e in self.events
        ] or ["(none)"]
        out += ["", "## Pods"]
        for p in self.pods:
            conds = " ".join(f"{k}={v}" for k, v in sorted(p.conditions.items()))
            out.append(f"{p.name}: {p.phase} node={p.node or '-'}{' deleting' if p.deleting else ''} {conds}")
            for c in p.containers:
                out.append(
                    f"  {c.name}: ready={c.ready} restarts={c.restart_count} state={c.state}"
                    + (f" last={c.last_state}" if c.last_state else "")
                )
        if not self.pods:
            out.append("(none)")
        for key, text in sorted(self.logs.items()):
            out += ["", f"## Logs {key}", text.rstrip() or "(empty)"]
        if self.errors:
            out += ["", "## Not collected", *self.errors]
        return "\n".join(out) + "\n"


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def _event_time(e: CoreV1Event) -> datetime:
    t = e.last_timestamp or e.event_time or e.first_timestamp
    if t is None and e.metadata is not None:
        t = e.metadata.creation_timestamp
    return t or datetime.min.replace(tzinfo=UTC)


def event_records(events: list[CoreV1Event]) -> list[EventRecord]:
    """Events sorted by time (oldest first), the newest `MAX_EVENTS` kept."""
    ordered = sorted(events, key=_event_time)[-MAX_EVENTS:]
    return [
        EventRecord(
            time=_stamp(_event_time(e)) if _event_time(e).year > 1 else "",
            type=e.type or "",
            reason=e.reason or "",
            object=f"{e.involved_object.kind}/{e.involved_object.name}" if e.involved_object else "",
            message=" ".join((e.message or "").split()),
            count=e.count or 1,
        )
        for e in ordered
    ]


def _state(cs: V1ContainerStatus, last: bool = False) -> str:
    st = cs.last_state if last else cs.state
    if st is None:
        return ""
    if st.running:
        return f"running since {_stamp(st.running.started_at)}"
    if st.waiting:
        return f"waiting: {st.waiting.reason or ''} {st.waiting.message or ''}".strip()
    if st.terminated:
        t = st.terminated
        return f"terminated: exit {t.exit_code} {t.reason or ''} {(t.message or '').strip()}".strip()
    return ""


def pod_record(pod: V1Pod) -> PodRecord:
    status = pod.status
    statuses = [
        *((status.init_container_statuses if status else None) or []),
        *((status.container_statuses if status else None) or []),
    ]
    return PodRecord(
        name=(pod.metadata.name if pod.metadata else None) or "?",
        phase=(status.phase if status else None) or "Unknown",
        node=(pod.spec.node_name if pod.spec else None) or "",
        conditions={c.type: c.status for c in ((status.conditions if status else None) or [])},
        containers=[
            ContainerRecord(cs.name, bool(cs.ready), cs.restart_count or 0, _state(cs), _state(cs, last=True))
            for cs in statuses
        ],
        deleting=bool(pod.metadata and pod.metadata.deletion_timestamp),
    )


def collect_forensics(
    api: ApiClient,
    namespace: str,
    *,
    tail_lines: int = LOG_TAIL_LINES,
    max_bytes: int = LOG_MAX_BYTES,
    max_pods_with_logs: int = MAX_PODS_WITH_LOGS,
) -> Forensics:
    """Everything worth reading about ``namespace`` after a failure; never raises KubeApiError."""
    core = CoreV1Api(api)
    out = Forensics(namespace, _stamp(datetime.now(UTC)))
    try:
        events = call(f"list events in {namespace}", core.list_namespaced_event, namespace).items
        out.events = event_records(events)
    except KubeApiError as e:
        out.errors.append(str(e))
    try:
        pods: list[V1Pod] = call(f"list pods in {namespace}", core.list_namespaced_pod, namespace).items
    except KubeApiError as e:
        out.errors.append(str(e))
        return out
    out.pods = [pod_record(p) for p in pods]
    for pod in pods[:max_pods_with_logs]:
        name = (pod.metadata.name if pod.metadata else None) or "?"
        for c in [
            *((pod.spec.init_containers if pod.spec else None) or []),
            *(pod.spec.containers if pod.spec else []),
        ]:
            _collect_log(core, out, namespace, name, c.name, tail_lines=tail_lines, max_bytes=max_bytes)
    if len(pods) > max_pods_with_logs:
        out.errors.append(
            f"logs of {len(pods) - max_pods_with_logs} more pod(s) skipped (cap {max_pods_with_logs})"
        )
    return out


def _collect_log(
    core: CoreV1Api,
    out: Forensics,
    namespace: str,
    pod: str,
    container: str,
    *,
    tail_lines: int,
    max_bytes: int,
) -> None:
    kwargs: dict[str, Any] = {"container": container, "tail_lines": tail_lines, "limit_bytes": max_bytes}
    try:
        out.logs[f"{pod}/{container}"] = str(
            call(f"logs of {pod}/{container}", core.read_namespaced_pod_log, pod, namespace, **kwargs)
        )
    except KubeApiError as e:
        out.errors.append(str(e))
