"""`meshcert gc`: remove everything a dead (or named) run left behind, even after SIGKILL.

Two sources of truth, because either alone misses something: run records (processes, clusters
and kubeconfigs that carry no label) and labels (docker containers, networks and volumes, kind
node containers named after the run, Kubernetes namespaces). A run is collected when its owning
process is gone (pid + start time no longer match), or when named explicitly, or with --all.

Faults first: a dead run may have left a node stopped or paused, iptables DROP rules tagged
``meshcert:<run_id>``, or a static-pod manifest moved aside. For each recorded fault whose kind
cluster still exists, gc calls the same revert the fault's context manager uses
(meshcert.faults.revert), which reads the state back. Recorded processes (toxiproxy-servers,
whose toxics die with them) are stopped through `meshcert.runs.reap_processes`, the one
mechanism that checks pid *and* start time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from meshcert.cluster.kind import KIND_CLUSTER_LABEL, KindCluster
from meshcert.cluster.kubectl import Kubectl
from meshcert.cluster.kwok import KwokCluster
from meshcert.errors import MeshcertError
from meshcert.faults import revert
from meshcert.runid import MANAGED_LABEL, RUN_LABEL, is_run_id
from meshcert.runs import RunRecord, RunStore, is_alive, reap_processes
from meshcert.settings import Settings
from meshcert.toolchain.docker_cli import docker
from meshcert.toolchain.gobuild import find_binary


@dataclass
class GcReport:
    runs: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.containers
            or self.networks
            or self.volumes
            or self.processes
            or self.namespaces
            or self.faults
        )


def _record_alive(record: RunRecord) -> bool:
    return record.pid != os.getpid() and is_alive(record.pid)


def _labelled(kind: str, label: str) -> list[tuple[str, dict[str, str]]]:
    """(name, labels) of docker objects of ``kind`` carrying ``label``."""
    fmt = "{{.Name}}" if kind != "container" else "{{.Names}}"
    cmd = ["ps", "-a"] if kind == "container" else [kind, "ls"]
    out = docker(
        "gc list", *cmd, "--filter", f"label={label}", "--format", fmt + "\t{{json .Labels}}", check=False
    )
    result = []
    for line in out.splitlines():
        name, _, raw = line.partition("\t")
        labels = dict(kv.split("=", 1) for kv in raw.strip('"').split(",") if "=" in kv)
        result.append((name, labels))
    return result


def _run_of(labels: dict[str, str]) -> str | None:
    for key in (RUN_LABEL, KIND_CLUSTER_LABEL):
        value = labels.get(key)
        if value and is_run_id(value):
            return value
    return None


def collect(settings: Settings, *, run_ids: list[str] | None = None, everything: bool = False) -> GcReport:
    """Remove what the selected runs created. Default selection: runs whose process is dead."""
    store = RunStore(settings.state_dir)
    report = GcReport()
    recorded = set(store.run_ids())
    live = {r for r in recorded if (rec := store.read(r)) and _record_alive(rec)}

    def selected(run_id: str | None) -> bool:
        if run_ids is not None:
            return run_id in run_ids
        if everything:
            return True
        # Only runs this store recorded and whose owner is dead: a label from a run this store
        # never saw belongs to someone else (another user, another state dir, a concurrent CI
        # job on the same engine) and is taken only when named or with --all.
        return run_id is not None and run_id in recorded and run_id not in live

    for run_id in store.run_ids():
        if not selected(run_id):
            continue
        record = store.read(run_id)
        if record:
            _revert_faults(store, record, report)
            report.processes.extend(p.pid for p in reap_processes(store, run_id))
            _collect_record(settings, record, report)
        if record is None or not (store.read(run_id) or record).faults:
            store.remove(run_id)  # a fault that could not be reverted keeps its record for the next gc
        report.runs.append(run_id)
    # Label sweep: anything still labelled with a selected run (or unlabelled leftovers with --all).
    for name, labels in _labelled("container", KIND_CLUSTER_LABEL) + _labelled("container", MANAGED_LABEL):
        owner = _run_of(labels)
        wanted = (owner is not None and selected(owner)) or (everything and run_ids is None)
        if wanted and name not in report.containers:
            docker("gc container", "rm", "-f", "-v", name, check=False)
            report.containers.append(name)
    for kind, bucket in (("network", report.networks), ("volume", report.volumes)):
        for name, labels in _labelled(kind, MANAGED_LABEL):
            owner = _run_of(labels)
            if (owner is not None and selected(owner)) or (everything and run_ids is None):
                docker(f"gc {kind}", kind, "rm", name, check=False)
                bucket.append(name)
    return report


def _revert_faults(store: RunStore, record: RunRecord, report: GcReport) -> None:
    """Revert each recorded fault (newest first) whose kind cluster still exists."""
    for fault in reversed(record.faults):
        try:
            if revert.cluster_exists(fault.cluster):
                revert.revert_fault(fault, run_id=record.run_id)
                report.faults.append(f"{fault.kind}:{fault.cluster}:{fault.key}")
            store.remove_fault(record.run_id, fault.key)  # reverted, or gone with its cluster
        except MeshcertError as e:
            report.errors.append(f"{record.run_id}: reverting {fault.key}: {e}")


def _collect_record(settings: Settings, record: RunRecord, report: GcReport) -> None:
    for cluster in record.clusters:
        try:
            if cluster.provider == "kind" and cluster.created and not cluster.keep:
                # A run record can outlive its cluster: report only what was there to remove.
                if KindCluster(settings=settings, run_id=record.run_id, name=cluster.name).down():
                    report.containers.append(f"kind:{cluster.name}")
            elif cluster.provider == "kwok" and cluster.created and not cluster.keep:
                kwok = KwokCluster(settings=settings, run_id=record.run_id, name=cluster.name)
                report.processes.extend(kwok.live_processes().values())
                # kwokctl delete cluster --name, then SIGKILL whatever survived
                if kwok.down():
                    report.containers.append(f"kwok:{cluster.name}")
            else:
                kubectl = Kubectl(find_binary(settings.cache_dir, "kubectl"), Path(cluster.kubeconfig))
                out = kubectl.run(
                    "get", "ns", "-l", f"{RUN_LABEL}={record.run_id}", "-o", "name", check=False
                )
                for ns in out.split():
                    kubectl.run("delete", ns, "--wait=false", check=False)
                    report.namespaces.append(ns)
        except MeshcertError as e:
            report.errors.append(f"{record.run_id}/{cluster.name}: {e}")
