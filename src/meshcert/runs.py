"""Run records: what each run created, on disk, so `meshcert gc` can undo it after a SIGKILL.

Labels find most leftovers (containers, networks, namespaces), but some things carry no labels
(a child process, a kubeconfig path for an existing cluster, a cluster kept on purpose). Each
run writes ``<state_dir>/runs/<run_id>/run.json`` before it creates anything and updates it as it
goes; gc reads these records, checks whether the owning process is still alive, and cleans the
dead ones. Writes are atomic (temp file + rename) so a kill mid-write never leaves a torn record.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshcert.runid import is_run_id


@dataclass
class ProcessRecord:
    pid: int
    what: str
    #: /proc/<pid>/stat start time, so gc never kills an unrelated process that reused the pid.
    start_ticks: int


@dataclass
class ClusterRecord:
    provider: str
    name: str
    kubeconfig: str
    created: bool  # False for an existing cluster we only used: gc cleans namespaces, not nodes
    keep: bool = False


@dataclass
class RunRecord:
    run_id: str
    pid: int
    started: float
    clusters: list[ClusterRecord] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)


def process_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after the closing paren are plain.
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_alive(pid: int, start_ticks: int | None = None) -> bool:
    ticks = process_start_ticks(pid)
    return ticks is not None and (start_ticks is None or ticks == start_ticks)


class RunStore:
    """The run records under one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "runs"

    def path(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.root / run_id / "run.json"

    def write(self, record: RunRecord) -> None:
        path = self.path(record.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2))
        tmp.replace(path)

    def create(self, run_id: str) -> RunRecord:
        record = RunRecord(run_id=run_id, pid=os.getpid(), started=time.time())
        self.write(record)
        return record

    def read(self, run_id: str) -> RunRecord | None:
        try:
            raw = json.loads(self.path(run_id).read_text())
        except (OSError, ValueError):
            return None
        return RunRecord(
            run_id=raw["run_id"],
            pid=raw["pid"],
            started=raw["started"],
            clusters=[ClusterRecord(**c) for c in raw.get("clusters", [])],
            processes=[ProcessRecord(**p) for p in raw.get("processes", [])],
        )

    def add_cluster(self, run_id: str, cluster: ClusterRecord) -> None:
        record = self.read(run_id) or self.create(run_id)
        record.clusters = [c for c in record.clusters if c.name != cluster.name] + [cluster]
        self.write(record)

    def add_process(self, run_id: str, pid: int, what: str) -> None:
        record = self.read(run_id) or self.create(run_id)
        record.processes.append(ProcessRecord(pid, what, process_start_ticks(pid) or 0))
        self.write(record)

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if is_run_id(p.name))

    def remove(self, run_id: str) -> None:
        shutil.rmtree(self.path(run_id).parent, ignore_errors=True)
