"""Run records: atomic, typed round trip; liveness tied to pid *and* start time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshcert.runid import is_run_id, new_run_id, run_labels
from meshcert.runs import ClusterRecord, RunStore, is_alive, process_start_ticks


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
