"""The local toxiproxy-server is recorded in the run record, and gc can reap it after a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faults.support import toxiproxy_binary
from meshcert.errors import FaultError
from meshcert.faults.server import start_toxiproxy
from meshcert.runid import new_run_id
from meshcert.runs import RunStore, process_start_ticks, reap_processes


def test_server_pid_is_recorded_then_removed_on_stop(tmp_path: Path) -> None:
    run_id = new_run_id()
    server = start_toxiproxy(run_id=run_id, state_dir=tmp_path, binary=toxiproxy_binary())
    with server:
        record = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())
        (entry,) = record["processes"]
        assert entry["pid"] == server.pid and entry["what"] == "toxiproxy-server"
        assert entry["start_ticks"] == process_start_ticks(server.pid)
        assert server.client().version()
    assert server.process.returncode is not None
    record_after = RunStore(tmp_path).read(run_id)
    assert record_after is not None and record_after.processes == []


def test_gc_reaps_a_server_whose_harness_died(tmp_path: Path) -> None:
    run_id = new_run_id()
    # A separate harness process starts the server and is SIGKILLed-equivalent (os._exit, no cleanup).
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from meshcert.faults.server import start_toxiproxy\n"
        f"s = start_toxiproxy(run_id={run_id!r}, state_dir=Path({str(tmp_path)!r}),\n"
        "                     binary=Path(sys.argv[1]))\n"
        "print(s.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(toxiproxy_binary())],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    pid = int(out.stdout.strip())
    assert process_start_ticks(pid) is not None, "orphaned server should still be running"
    store = RunStore(tmp_path)
    reaped = reap_processes(store, run_id)
    assert [r.pid for r in reaped] == [pid]
    assert process_start_ticks(pid) is None
    record = store.read(run_id)
    assert record is not None and record.processes == []


def test_gc_leaves_a_reused_pid_alone(tmp_path: Path) -> None:
    run_id = new_run_id()
    store = RunStore(tmp_path)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        store.add_process(run_id, sleeper.pid, "sleep", argv=["sleep", "30"])
        # Pretend the recorded process was a different one that happened to have this pid.
        path = store.path(run_id)
        raw = json.loads(path.read_text())
        raw["processes"][0]["start_ticks"] += 1
        path.write_text(json.dumps(raw))
        assert reap_processes(store, run_id, grace=0.5) == []
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_run_record_refuses_non_run_ids(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match="not a meshcert run id"):
        start_toxiproxy(run_id="../etc", state_dir=tmp_path, binary=toxiproxy_binary())
