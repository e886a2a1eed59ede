"""Run records: atomic, typed round trip; liveness tied to pid *and* start time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshcert.runid import is_run_id, new_run_id, run_labels
from meshcert.runs import ClusterRecord, FaultRecord, RunStore, is_alive, process_start_ticks


def test_run_ids_have_the_documented_shape() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(is_run_id(i) for i in ids)
    assert not is_run_id("mc-XYZ") and not is_run_id("kind") and not is_run_id("mc-1234567")
    assert run_labels("mc-00000000")["meshcert.io/run-id"] == "mc-00000000"


def test_record_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    rid = new_run_id()
    store.create(rid)
    store.add_cluster(rid, ClusterRecord("kind", "c1", "/k", created=True))
    store.add_cluster(rid, ClusterRecord("kind", "c1", "/k2", created=True))  # replaces, no duplicate
    store.add_process(rid, os.getpid(), "self")
    record = store.read(rid)
    assert record is not None
    assert [c.kubeconfig for c in record.clusters] == ["/k2"]
    assert record.processes[0].start_ticks == process_start_ticks(os.getpid())
    assert store.run_ids() == [rid]
    store.remove(rid)
    assert store.run_ids() == [] and store.read(rid) is None


def test_store_refuses_paths_that_are_not_run_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a run id"):
        RunStore(tmp_path).path("../../etc")


def test_liveness_checks_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ticks = process_start_ticks(child.pid)
        assert ticks is not None
        assert is_alive(child.pid, ticks)
        assert not is_alive(child.pid, ticks + 1)  # same pid, different process: not ours
    finally:
        child.kill()
        child.wait()
    assert not is_alive(child.pid)


def test_faults_are_recorded_and_crossed_out(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    rid = new_run_id()
    store.add_fault(rid, FaultRecord("node-pause:n1", "node-pause", "c", {"node": "n1"}))
    store.add_fault(rid, FaultRecord("node-pause:n1", "node-pause", "c", {"node": "n1"}))  # replaces
    store.add_fault(rid, FaultRecord("partition:a|b", "partition", "c", {"side_a": "a", "side_b": "b"}))
    record = store.read(rid)
    assert record is not None
    assert [f.key for f in record.faults] == ["node-pause:n1", "partition:a|b"]
    assert record.faults[0].recorded_at > 0
    store.remove_fault(rid, "node-pause:n1")
    record = store.read(rid)
    assert record is not None and [f.kind for f in record.faults] == ["partition"]


def test_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    # Several processes add processes to one record at once: the lock serialises read-modify-write.
    rid = new_run_id()
    code = (
        "import sys\nfrom pathlib import Path\nfrom meshcert.runs import RunStore\n"
        "s = RunStore(Path(sys.argv[1]))\n"
        "for i in range(20): s.add_process(sys.argv[2], 100000 + int(sys.argv[3]) * 100 + i, 'x')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), rid, str(k)]) for k in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    record = RunStore(tmp_path).read(rid)
    assert record is not None and len(record.processes) == 80


def test_a_zombie_counts_as_dead() -> None:
    child = subprocess.Popen(["true"])
    for _ in range(200):  # exits within milliseconds; not reaped, so it stays a zombie
        if Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1].startswith("Z"):
            break
        time.sleep(0.01)
    assert process_start_ticks(child.pid) is None
    child.wait()
