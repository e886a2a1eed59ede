"""Run records of local helper processes, so `meshcert gc` can kill them after the harness dies.

A harness killed with SIGKILL runs no ``finally`` blocks: a toxiproxy-server it started keeps its
ports and keeps injecting faults. Every such child is therefore written down *before* the harness
relies on it, in ``<state_dir>/runs/<run_id>/processes.json``, and crossed out when stopped
cleanly. `reap_processes` is what gc calls for a dead run.

A pid alone is not an identity (pids are reused), so each record also carries the process's
start time in clock ticks since boot (field 22 of /proc/<pid>/stat) and its executable name;
`reap_processes` kills only a live process whose start time still matches.

This is a provisional home: run records will move to a shared module used by every layer that
creates something (clusters, networks, processes). It is not a general process supervisor.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from meshcert.errors import FaultError
from meshcert.runid import is_run_id

_FILE = "processes.json"
_LOCK = ".processes.lock"
#: Index of `starttime` in /proc/<pid>/stat after the ")" that ends the command name (proc(5)).
_STARTTIME_FIELD = 19
#: How often `reap_processes` checks whether a signalled process is gone; fine enough for a CLI.
_POLL_S = 0.05


@dataclass(frozen=True)
class ProcessRecord:
    """One local child process a run started."""

    pid: int
    #: What the process is for, e.g. ``toxiproxy-server``; shown by gc.
    role: str
    argv: tuple[str, ...]
    #: /proc/<pid>/stat start time in clock ticks; None where /proc is unavailable.
    start_ticks: int | None
    #: Wall-clock time the record was written (for humans reading the file).
    recorded_at: float


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None if it is gone, a zombie, or /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[:1] == ["Z"]:  # exited, waiting to be reaped by its parent: nothing left to kill
        return None
    try:
        return int(fields[_STARTTIME_FIELD])
    except (IndexError, ValueError):
        return None


class RunProcessRecord:
    """The processes.json file of one run: add, remove, list (locked, written atomically)."""

    def __init__(self, state_dir: Path, run_id: str) -> None:
        if not is_run_id(run_id):
            raise FaultError(f"refusing to keep a run record for {run_id!r}: not a meshcert run id")
        self.run_id = run_id
        self.directory = state_dir / "runs" / run_id
        self.path = self.directory / _FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / _LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> list[ProcessRecord]:
        if not self.path.is_file():
            return []
        try:
            raw = json.loads(self.path.read_text())
            return [
                ProcessRecord(
                    pid=int(r["pid"]),
                    role=str(r["role"]),
                    argv=tuple(str(a) for a in r["argv"]),
                    start_ticks=None if r["start_ticks"] is None else int(r["start_ticks"]),
                    recorded_at=float(r["recorded_at"]),
                )
                for r in raw["processes"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise FaultError(f"{self.path}: unreadable run record ({e}); inspect or delete it") from e

    def _write(self, records: list[ProcessRecord]) -> None:
        tmp = self.path.with_suffix(".tmp")
        body = {"run_id": self.run_id, "processes": [asdict(r) for r in records]}
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, self.path)

    def add(self, *, pid: int, role: str, argv: tuple[str, ...]) -> ProcessRecord:
        record = ProcessRecord(pid, role, argv, process_start_ticks(pid), time.time())
        with self._locked():
            records = [r for r in self._read() if r.pid != pid]
            self._write([*records, record])
        return record

    def remove(self, pid: int) -> None:
        with self._locked():
            self._write([r for r in self._read() if r.pid != pid])

    def records(self) -> list[ProcessRecord]:
        with self._locked():
            return self._read()


def _alive_and_same(record: ProcessRecord) -> bool:
    ticks = process_start_ticks(record.pid)
    if ticks is None:
        return False
    return record.start_ticks is None or ticks == record.start_ticks


def reap_processes(state_dir: Path, run_id: str, *, grace: float = 5.0) -> list[ProcessRecord]:
    """SIGTERM each recorded process still alive (SIGKILL after ``grace`` s); return those signalled.

    Only processes whose start time matches the record are touched, so a reused pid is safe.
    The default grace covers toxiproxy-server's own shutdown, which waits for its API server.
    """
    record = RunProcessRecord(state_dir, run_id)
    signalled: list[ProcessRecord] = []
    for proc in record.records():
        if _alive_and_same(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            signalled.append(proc)
    deadline = time.monotonic() + grace
    while any(_alive_and_same(p) for p in signalled) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    for proc in signalled:
        if _alive_and_same(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    for proc in record.records():
        if not _alive_and_same(proc):
            record.remove(proc.pid)
    return signalled
