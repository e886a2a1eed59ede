"""Run a chaos experiment: steady state → method (faults held, probes during) → rollback → steady again.

C2: steady state is checked before, during and after each fault; the journal records every probe
result (with n and intervals), when each fault was applied and reverted, how far the system
deviated, and how long it took to recover. C1: every fault is one of the context managers of
this package, so rollback is always attempted and verified, even when a probe or the body fails.

The journal is JSON at ``<reports>/chaos/<experiment>-<run_id>.json``; `verdict` is a pure
function of it (unit-tested without a cluster).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubernetes.client import ApiClient, CoreV1Api

from meshcert.errors import FaultError, MeshcertError
from meshcert.faults.apilatency import api_latency
from meshcert.faults.controlplane import component_down
from meshcert.faults.experiment import Experiment, Fault, Probe, Step
from meshcert.faults.incluster import in_cluster_toxiproxy
from meshcert.faults.nodes import NodeTarget, node_pause, node_stop
from meshcert.faults.partition import partition
from meshcert.faults.pods import container_kill, pod_kill
from meshcert.faults.probes import ProbeResult, run_probe
from meshcert.faults.toxiproxy import Stream, Toxic, UnknownToxic
from meshcert.faults.toxiproxy_model import attributes_from_json
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import call
from meshcert.kube.waits import pod_ready

#: The during-probes' client pod needs a few seconds to start sending; the fault is applied
#: after this lead so that the load spans the moment of the fault.
FAULT_LEAD_S = 4.0
#: Pause between steady-state polls while waiting for recovery (each poll is itself a ~5 s load).
_RECOVERY_POLL_S = 1.0


@dataclass(frozen=True)
class Target:
    """Where an experiment runs."""

    api: ApiClient
    kubeconfig: Path
    cluster: str  # kind cluster name (node containers are <cluster>-control-plane, -worker, ...)
    namespace: str
    run_id: str
    state_dir: Path
    cache_dir: Path | None = None


@dataclass
class StepRecord:
    kind: str
    started: float
    applied: float | None = None
    reverted: float | None = None
    during: list[ProbeResult] = field(default_factory=list)
    recovered_after_s: float | None = None  # until_steady: from fault applied to steady state
    error: str | None = None


@dataclass
class Journal:
    experiment: str
    title: str
    run_id: str
    started: float
    steady_before: list[ProbeResult] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    steady_after: list[ProbeResult] = field(default_factory=list)
    recovery_s: float | None = None  # from the last revert until the steady state held again
    error: str | None = None
    verdict: str = "pending"
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def verdict(journal: Journal) -> tuple[str, list[str]]:
    """passed | failed | aborted, with reasons: steady before, probes during, rollback, steady after."""
    reasons: list[str] = []
    if journal.error:
        return "aborted", [journal.error]
    if not journal.steady_before or not all(r.ok for r in journal.steady_before):
        return "aborted", ["steady state did not hold before the method: nothing to compare against"]
    for i, step in enumerate(journal.steps):
        if step.error:
            reasons.append(f"method[{i}] ({step.kind}): {step.error}")
        reasons += [f"method[{i}] ({step.kind}) during: {r.detail}" for r in step.during if not r.ok]
    if not journal.steady_after or not all(r.ok for r in journal.steady_after):
        reasons.append("steady state did not return within recovery_timeout")
    return ("failed" if reasons else "passed"), reasons


def _first_ready_pod(api: ApiClient, namespace: str, selector: str) -> tuple[str, str, int]:
    pods = call("list pods", CoreV1Api(api).list_namespaced_pod, namespace, label_selector=selector).items
    ready = [p for p in pods if p.metadata and p.metadata.deletion_timestamp is None and pod_ready(p)]
    if not ready:
        raise FaultError(f"no Ready pod matches {selector!r} in {namespace}")
    first = ready[0]
    container = first.spec.containers[0].name if first.spec else ""
    return str(first.metadata.name if first.metadata else ""), str(container), len(ready)


def _node(cluster: str, name: object) -> str:
    text = str(name)
    return text if text.startswith(f"{cluster}-") else f"{cluster}-{text}"


@contextlib.contextmanager
def apply_fault(target: Target, fault: Fault) -> Iterator[str | None]:
    """Enter the context manager for ``fault``; yields the proxy URL for a 'toxic' fault, else None."""
    p, t = fault.params, target
    if fault.kind == "pod-kill":
        pod, _, count = _first_ready_pod(t.api, t.namespace, str(p["selector"]))
        with pod_kill(t.api, t.namespace, pod, selector=str(p["selector"]), expected=count):
            yield None
    elif fault.kind == "container-kill":
        pod, first, _ = _first_ready_pod(t.api, t.namespace, str(p["selector"]))
        with container_kill(t.api, t.namespace, pod, str(p.get("container", first))):
            yield None
    elif fault.kind in ("node-stop", "node-pause"):
        cm = node_stop if fault.kind == "node-stop" else node_pause
        with cm(
            t.api, NodeTarget(t.cluster, _node(t.cluster, p["node"])), run_id=t.run_id, state_dir=t.state_dir
        ):
            yield None
    elif fault.kind == "partition":
        a = [_node(t.cluster, n) for n in _names(p["side_a"])]
        b = [_node(t.cluster, n) for n in _names(p["side_b"])]
        with partition(t.cluster, a, b, run_id=t.run_id, state_dir=t.state_dir):
            yield None
    elif fault.kind == "control-plane":
        with component_down(t.cluster, str(p["component"]), run_id=t.run_id, state_dir=t.state_dir):
            yield None
    elif fault.kind == "api-latency":
        with api_latency(
            t.cluster, t.kubeconfig, latency_ms=int(str(p["latency_ms"])),
            jitter_ms=int(str(p.get("jitter_ms", 0))), run_id=t.run_id, state_dir=t.state_dir,
            cache_dir=t.cache_dir,
        ):  # fmt: skip
            yield None
    elif fault.kind == "toxic":
        from meshcert.faults.toxics import toxic

        upstream = f"{p['service']}:{int(str(p['port']))}"
        with in_cluster_toxiproxy(t.api, t.namespace, upstream=upstream, run_id=t.run_id) as (client, svc):
            spec = Toxic(
                attributes=attributes_from_json(str(p["toxic"]), dict(p.get("attributes") or {})),  # type: ignore[call-overload]
                stream=Stream(str(p.get("stream", "downstream"))),
                toxicity=float(str(p.get("toxicity", 1.0))),
            )
            if isinstance(spec.attributes, UnknownToxic):
                raise FaultError(f"{fault.where}: unknown toxic type {p['toxic']!r}")
            with toxic(client, "upstream", spec):
                yield svc.url
    else:
        raise FaultError(f"{fault.where}: unknown fault kind {fault.kind!r}")


def _names(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [s.strip() for s in str(value).split(",")]


def _probe_all(target: Target, probes: tuple[Probe, ...], proxy_url: str | None = None) -> list[ProbeResult]:
    return [
        run_probe(target.api, target.namespace, p, run_id=target.run_id, proxy_url=proxy_url) for p in probes
    ]


def _until_steady(
    target: Target, probes: tuple[Probe, ...], *, timeout: float
) -> tuple[float | None, list[ProbeResult]]:
    start = time.monotonic()
    results: list[ProbeResult] = []
    while time.monotonic() - start <= timeout:
        results = _probe_all(target, probes)
        if all(r.ok for r in results):
            return time.monotonic() - start, results
        time.sleep(_RECOVERY_POLL_S)
    return None, results


def _run_step(target: Target, exp: Experiment, step: Step, record: StepRecord) -> None:
    assert step.fault is not None
    during: list[ProbeResult] = []
    proxy: list[str | None] = [None]
    ready = threading.Event()

    def probe_during() -> None:
        ready.wait(timeout=FAULT_LEAD_S * 4)  # toxic faults: the proxy URL exists only once applied
        during.extend(_probe_all(target, step.during, proxy[0]))

    worker = threading.Thread(target=probe_during, daemon=True)
    if step.during:
        worker.start()
    try:
        if step.during and step.fault.kind != "toxic":
            ready.set()
            time.sleep(FAULT_LEAD_S)
        with apply_fault(target, step.fault) as url:
            proxy[0] = url
            ready.set()
            record.applied = time.time()
            if step.until_steady:
                took, _ = _until_steady(target, exp.steady_state, timeout=step.hold)
                record.recovered_after_s = None if took is None else time.time() - record.applied
            else:
                time.sleep(step.hold)
            if step.fault.kind == "toxic" and step.during:
                worker.join()  # the proxy goes away with the fault: probes must finish under it
        record.reverted = time.time()
    finally:
        ready.set()
        if step.during:
            worker.join()
        record.during = during


def run_experiment(target: Target, exp: Experiment, *, reports_dir: Path) -> Journal:
    """Run ``exp`` against ``target``; write and return its journal (verdict filled in)."""
    journal = Journal(exp.name, exp.title, target.run_id, time.time())
    out = reports_dir / "chaos" / f"{exp.name}-{target.run_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if exp.workload is not None:
            apply_manifests(target.api, [exp.workload], namespace=target.namespace, run_id=target.run_id)
        _, journal.steady_before = _until_steady(target, exp.steady_state, timeout=exp.recovery_timeout)
        if all(r.ok for r in journal.steady_before):
            for step in exp.method:
                if step.fault is None:
                    time.sleep(step.wait)
                    continue
                record = StepRecord(step.fault.kind, time.time())
                journal.steps.append(record)
                try:
                    _run_step(target, exp, step, record)
                except MeshcertError as e:
                    record.error = str(e)
                    break
            took, journal.steady_after = _until_steady(target, exp.steady_state, timeout=exp.recovery_timeout)
            journal.recovery_s = took
    except MeshcertError as e:
        journal.error = str(e)
    finally:
        journal.verdict, journal.reasons = verdict(journal)
        out.write_text(journal.to_json())
    return journal
