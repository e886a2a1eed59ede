"""Run records: what each run created or changed, on disk, so `meshcert gc` can undo it after a SIGKILL.

Labels find most leftovers (containers, networks, namespaces), but some things carry no labels
(a child process, a kubeconfig path for an existing cluster, a cluster kept on purpose, a paused
node container, an iptables rule, a static-pod manifest moved aside). Each run writes
``<state_dir>/runs/<run_id>/run.json`` before it creates or changes anything and updates it as it
goes; gc reads these records, checks whether the owning process is still alive, and reverts or
cleans the dead ones.

Concurrency: a run's record is changed by read-modify-write from several places at once (the
pytest process, a fault's helper thread, a toxiproxy child being recorded), so every change holds
an exclusive ``flock`` on ``.run.lock`` beside the record, and writes are atomic (temp file +
rename) so a kill mid-write never leaves a torn record.

Processes: a pid alone is not an identity (pids are reused), so each record carries the
process's start time in clock ticks since boot; `reap_processes` signals only a live process
whose start time still matches, and treats a zombie as gone (nothing left to kill).

This module is the bottom layer's bookkeeping only: it knows nothing about docker or Kubernetes.
How to revert a recorded fault lives with the faults (meshcert.faults.revert), which gc calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshcert.runid import is_run_id

#: Index of `starttime` in /proc/<pid>/stat after the ")" that ends the command name (proc(5)).
_STARTTIME_FIELD = 19
#: How often `reap_processes` checks whether a signalled process is gone; fine enough for a CLI.
_POLL_S = 0.05
_LOCK = ".run.lock"


@dataclass
class ProcessRecord:
    """One local child process a run started (e.g. a toxiproxy-server)."""

    pid: int
    #: What the process is for, e.g. ``toxiproxy-server``; shown by gc.
    what: str
    #: /proc/<pid>/stat start time, so gc never kills an unrelated process that reused the pid;
    #: None where /proc was unavailable (then the pid alone is trusted).
    start_ticks: int | None
    argv: list[str] = field(default_factory=list)
    #: Wall-clock time the record was written (for humans reading the file).
    recorded_at: float = 0.0


@dataclass
class ClusterRecord:
    provider: str
    name: str
    kubeconfig: str
    created: bool  # False for an existing cluster we only used: gc cleans namespaces, not nodes
    keep: bool = False


@dataclass
class FaultRecord:
    """A fault applied to a cluster, written *before* it is applied and crossed out once reverted.

    ``kind`` names the revert gc must perform (see meshcert.faults.revert); ``cluster`` is the
    kind cluster whose node containers it touched (empty for faults outside a kind cluster);
    ``detail`` carries what the revert needs (node names, file paths, namespace...).
    """

    key: str
    kind: str
    cluster: str
    detail: dict[str, str] = field(default_factory=dict)
    recorded_at: float = 0.0


@dataclass
class RunRecord:
    run_id: str
    pid: int
    started: float
    clusters: list[ClusterRecord] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None if it is gone, a zombie, or /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[:1] == ["Z"]:  # exited, waiting to be reaped by its parent: nothing left to kill
        return None
    try:
        return int(fields[_STARTTIME_FIELD])
    except (IndexError, ValueError):
        return None


def is_alive(pid: int, start_ticks: int | None = None) -> bool:
    ticks = process_start_ticks(pid)
    return ticks is not None and (start_ticks is None or ticks == start_ticks)


def _process_from_json(raw: dict[str, object]) -> ProcessRecord:
    ticks = raw.get("start_ticks")
    argv = raw.get("argv") or []
    return ProcessRecord(
        pid=int(str(raw["pid"])),
        what=str(raw.get("what", raw.get("role", ""))),
        start_ticks=None if ticks is None else int(str(ticks)),
        argv=[str(a) for a in argv] if isinstance(argv, list) else [],
        recorded_at=float(str(raw.get("recorded_at", 0.0))),
    )


class RunStore:
    """The run records under one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "runs"

    def path(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.root / run_id / "run.json"

    def directory(self, run_id: str) -> Path:
        """The run's own directory (logs of its helper processes live here too)."""
        return self.path(run_id).parent

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        """Hold the run's lock for a read-modify-write (other processes and threads wait)."""
        directory = self.directory(run_id)
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / _LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, record: RunRecord) -> None:
        path = self.path(record.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2))
        tmp.replace(path)

    def create(self, run_id: str) -> RunRecord:
        record = RunRecord(run_id=run_id, pid=os.getpid(), started=time.time())
        with self.locked(run_id):
            self.write(record)
        return record

    def read(self, run_id: str) -> RunRecord | None:
        try:
            raw = json.loads(self.path(run_id).read_text())
            return RunRecord(
                run_id=raw["run_id"],
                pid=raw["pid"],
                started=raw["started"],
                clusters=[ClusterRecord(**c) for c in raw.get("clusters", [])],
                processes=[_process_from_json(p) for p in raw.get("processes", [])],
                faults=[FaultRecord(**f) for f in raw.get("faults", [])],
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _update(self, run_id: str) -> _Update:
        return _Update(self, run_id)

    def add_cluster(self, run_id: str, cluster: ClusterRecord) -> None:
        with self._update(run_id) as record:
            record.clusters = [c for c in record.clusters if c.name != cluster.name] + [cluster]

    def add_process(
        self, run_id: str, pid: int, what: str, *, argv: list[str] | None = None
    ) -> ProcessRecord:
        proc = ProcessRecord(pid, what, process_start_ticks(pid), list(argv or []), time.time())
        with self._update(run_id) as record:
            record.processes = [p for p in record.processes if p.pid != pid] + [proc]
        return proc

    def remove_process(self, run_id: str, pid: int) -> None:
        with self._update(run_id) as record:
            record.processes = [p for p in record.processes if p.pid != pid]

    def add_fault(self, run_id: str, fault: FaultRecord) -> None:
        """Record ``fault`` (replacing one with the same key); call this *before* applying it."""
        if not fault.recorded_at:
            fault.recorded_at = time.time()
        with self._update(run_id) as record:
            record.faults = [f for f in record.faults if f.key != fault.key] + [fault]

    def remove_fault(self, run_id: str, key: str) -> None:
        """Cross out a fault once its revert was verified."""
        with self._update(run_id) as record:
            record.faults = [f for f in record.faults if f.key != key]

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if is_run_id(p.name))

    def remove(self, run_id: str) -> None:
        shutil.rmtree(self.directory(run_id), ignore_errors=True)


class _Update:
    """``with store._update(run_id) as record:`` — locked read, modify, atomic write."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._lock: contextlib.AbstractContextManager[None] | None = None
        self.record: RunRecord | None = None

    def __enter__(self) -> RunRecord:
        self._lock = self.store.locked(self.run_id)
        self._lock.__enter__()
        self.record = self.store.read(self.run_id) or RunRecord(self.run_id, os.getpid(), time.time())
        return self.record

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._lock is not None and self.record is not None
        try:
            if exc_type is None:
                self.store.write(self.record)
        finally:
            self._lock.__exit__(None, None, None)


def reap_processes(store: RunStore, run_id: str, *, grace: float = 5.0) -> list[ProcessRecord]:
    """SIGTERM each recorded process still alive (SIGKILL after ``grace`` s); return those signalled.

    Only processes whose start time matches the record are touched, so a reused pid is safe.
    The default grace covers toxiproxy-server's own shutdown, which waits for its API server.
    Records of processes that are gone afterwards are removed from the run record.
    """
    record = store.read(run_id)
    if record is None:
        return []
    signalled: list[ProcessRecord] = []
    for proc in record.processes:
        if is_alive(proc.pid, proc.start_ticks):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            signalled.append(proc)
    deadline = time.monotonic() + grace
    while any(is_alive(p.pid, p.start_ticks) for p in signalled) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    for proc in signalled:
        if is_alive(proc.pid, proc.start_ticks):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    for proc in record.processes:
        if not is_alive(proc.pid, proc.start_ticks):
            store.remove_process(run_id, proc.pid)
    return signalled
