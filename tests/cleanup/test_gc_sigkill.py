"""`meshcert gc` after a SIGKILL: the half-created kind cluster, its network and volumes go."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from meshcert.runid import new_run_id

ROOT = Path(__file__).resolve().parents[2]
MESHCERT = str(ROOT / ".venv" / "bin" / "meshcert")


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False).stdout


def _node_containers(name: str) -> list[str]:
    return _docker("ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}").split()


@pytest.mark.e2e
@pytest.mark.slow
def test_gc_removes_everything_after_sigkill_mid_cluster_up(tmp_path: Path) -> None:
    name = new_run_id()
    env = {**os.environ, "MESHCERT_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [MESHCERT, "cluster", "up", "--name", name, "--config", str(ROOT / "kind-config/single-node.yaml")],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    volumes: set[str] = set()
    try:
        deadline = time.monotonic() + 120  # node containers appear ~5 s after start; 120 s for a loaded host
        while not _node_containers(name):
            assert proc.poll() is None, "cluster up exited before creating its node"
            assert time.monotonic() < deadline, "node container never appeared"
            time.sleep(0.5)
        time.sleep(5)  # now kubeadm is running inside the node: a genuinely half-built cluster
        for cid in _node_containers(name):
            mounts = json.loads(_docker("inspect", "--format", "{{json .Mounts}}", cid))
            volumes |= {m["Name"] for m in mounts if m["Type"] == "volume"}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert volumes, "kind nodes keep /var on a volume; none was seen"
    assert _node_containers(name), "nothing to collect: the kill came too late or too early"

    gc = subprocess.run([MESHCERT, "gc"], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert gc.returncode == 0, gc.stderr
    assert name in gc.stdout
    assert _node_containers(name) == []
    assert _docker("network", "ls", "-q", "--filter", f"name=^{name}-net$").strip() == ""
    remaining = set(_docker("volume", "ls", "-q").split())
    assert not (volumes & remaining), f"volumes left behind: {volumes & remaining}"
    assert not (tmp_path / "state" / "runs" / name).exists()


@pytest.mark.e2e
def test_gc_leaves_live_runs_alone(tmp_path: Path) -> None:
    """A run whose owner is alive is not collected by a plain `meshcert gc`."""
    from meshcert.runs import RunStore

    env = {**os.environ, "MESHCERT_STATE_DIR": str(tmp_path / "state")}
    rid = new_run_id()
    RunStore(tmp_path / "state").create(rid)  # owned by this (live) pytest process
    gc = subprocess.run([MESHCERT, "gc"], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert gc.returncode == 0, gc.stderr
    assert (tmp_path / "state" / "runs" / rid / "run.json").is_file()


@pytest.mark.e2e
def test_gc_leaves_runs_it_never_recorded_alone(tmp_path: Path) -> None:
    """A plain `meshcert gc` with its own (empty) state dir must not sweep another store's runs:
    their labelled containers belong to a concurrent job or another user. Named, they go."""
    env = {**os.environ, "MESHCERT_STATE_DIR": str(tmp_path / "state")}
    rid = new_run_id()
    image = _docker("images", "-q", "--filter", "reference=meshcert/*").split()
    assert image, "no locally built meshcert image to create a stand-in container from"
    name = f"{rid}-stranger"
    labels = ["--label", "meshcert.io/managed=true", "--label", f"meshcert.io/run-id={rid}"]
    _docker("create", "--name", name, *labels, image[0])
    try:
        assert _docker("ps", "-aq", "--filter", f"name=^{name}$").strip(), "stand-in container not created"
        gc = subprocess.run([MESHCERT, "gc"], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        assert gc.returncode == 0, gc.stderr
        assert _docker("ps", "-aq", "--filter", f"name=^{name}$").strip(), "gc swept a run it never recorded"
        gc = subprocess.run(
            [MESHCERT, "gc", rid], env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert gc.returncode == 0, gc.stderr
        assert not _docker("ps", "-aq", "--filter", f"name=^{name}$").strip(), "named run not collected"
    finally:
        _docker("rm", "-f", name)
