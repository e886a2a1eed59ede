"""The local toxiproxy-server is recorded in the run record, and gc can reap it after a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faults.support import toxiproxy_binary
from meshcert.errors import FaultError
from meshcert.faults.runrecord import RunProcessRecord, process_start_ticks, reap_processes
from meshcert.faults.server import start_toxiproxy
from meshcert.runid import new_run_id


def test_server_pid_is_recorded_then_removed_on_stop(tmp_path: Path) -> None:
    run_id = new_run_id()
    server = start_toxiproxy(run_id=run_id, state_dir=tmp_path, binary=toxiproxy_binary())
    with server:
        record = json.loads((tmp_path / "runs" / run_id / "processes.json").read_text())
        (entry,) = record["processes"]
        assert entry["pid"] == server.pid and entry["role"] == "toxiproxy-server"
        assert entry["start_ticks"] == process_start_ticks(server.pid)
        assert server.client().version()
    assert server.process.returncode is not None
    assert RunProcessRecord(tmp_path, run_id).records() == []


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
    reaped = reap_processes(tmp_path, run_id)
    assert [r.pid for r in reaped] == [pid]
    assert process_start_ticks(pid) is None
    assert RunProcessRecord(tmp_path, run_id).records() == []


def test_gc_leaves_a_reused_pid_alone(tmp_path: Path) -> None:
    run_id = new_run_id()
    record = RunProcessRecord(tmp_path, run_id)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        record.add(pid=sleeper.pid, role="sleep", argv=("sleep", "30"))
        # Pretend the recorded process was a different one that happened to have this pid.
        raw = json.loads(record.path.read_text())
        raw["processes"][0]["start_ticks"] += 1
        record.path.write_text(json.dumps(raw))
        assert reap_processes(tmp_path, run_id, grace=0.5) == []
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_run_record_refuses_non_run_ids(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match="not a meshcert run id"):
        RunProcessRecord(tmp_path, "../etc")
