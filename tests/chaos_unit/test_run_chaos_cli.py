"""`meshcert run chaos`: bad experiment → one line naming file:line and field, exit 2, nothing made;
and the deviation/recovery record distilled from a journal (faults/recovery.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from meshcert.cli.chaos import kind_cluster_name
from meshcert.faults.probes import ProbeResult
from meshcert.faults.recovery import recovery_record
from meshcert.faults.runner import Journal, StepRecord

ROOT = Path(__file__).resolve().parents[2]
MESHCERT = str(ROOT / ".venv" / "bin" / "meshcert")
GOOD = """\
title: pod kill
steady_state:
  - {probe: success_ratio, service: web, min_ratio: 0.99}
method:
  - fault: {kind: pod-kill, selector: app=web}
    hold: 2
"""


def _meshcert(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MESHCERT_STATE_DIR": str(tmp_path / "state"),
        "MESHCERT_REPORTS_DIR": str(tmp_path / "r"),
    }
    return subprocess.run(
        [MESHCERT, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("kind: pod-kill, selector: app=web", "kind: nuke", ":5: method[0].fault.kind: unknown fault 'nuke'"),
        ("hold: 2", "hold: soon", ":6: method[0].hold: expected a number >= 0.0, got 'soon'"),
        ("min_ratio: 0.99", "min_ratio: 2", ":3: steady_state[0].min_ratio: must be within [0, 1]"),
    ],
)
def test_run_chaos_bad_experiment_is_one_line_exit_2_and_creates_nothing(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace(old, new, 1))
    kubeconfig = tmp_path / "kubeconfig"  # never read: validation comes first
    res = _meshcert(tmp_path, "run", "chaos", str(bad), "--kubeconfig", str(kubeconfig))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"meshcert: error: {bad}{where}"), lines[0]
    assert not (tmp_path / "state" / "runs").exists() or not any((tmp_path / "state" / "runs").iterdir())
    assert not (tmp_path / "r").exists()


def test_run_chaos_unknown_experiment_name_and_missing_kubeconfig(tmp_path: Path) -> None:
    res = _meshcert(tmp_path, "run", "chaos", "no-such-experiment", "--kubeconfig", str(tmp_path / "kc"))
    assert res.returncode == 2 and "no experiment 'no-such-experiment'" in res.stderr
    res = _meshcert(tmp_path, "run", "chaos", "pod-kill", "--kubeconfig", str(tmp_path / "kc"))
    assert res.returncode == 2 and f"no such file: {tmp_path / 'kc'}" in res.stderr


def test_kind_cluster_name_comes_from_the_current_context(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(json.dumps({"current-context": "kind-chaosdev", "contexts": []}))
    assert kind_cluster_name(kc) == "chaosdev"
    kc.write_text(json.dumps({"current-context": "prod"}))
    assert kind_cluster_name(kc) is None
    assert kind_cluster_name(tmp_path / "missing") is None


def _ratio(ok: int, n: int, p50: float = 1.0, p99: float = 5.0) -> ProbeResult:
    return ProbeResult(
        "success_ratio", ok / n >= 0.99, "", n=n, successes=ok, ratio=ok / n, p50_ms=p50, p99_ms=p99
    )


def test_recovery_record_measures_drop_latency_increase_and_recovery() -> None:
    j = Journal("pod-kill", "t", "mc-00000001", 0.0, steady_before=[_ratio(60, 60, 1.0, 4.0)])
    j.steps.append(
        StepRecord("pod-kill", 100.0, applied=104.0, reverted=110.5,
                   during=[_ratio(490, 500, 2.0, 40.0), _ratio(99, 100, 1.5, 9.0)])
    )  # fmt: skip
    j.steps.append(StepRecord("node-stop", 200.0, applied=201.0, recovered_after_s=37.5, error="boom"))
    j.steady_after, j.recovery_s, j.verdict = [_ratio(60, 60)], 3.25, "failed"
    rec = recovery_record(j)
    assert rec.baseline.success_ratio == 1.0 and rec.baseline.n == 60
    first, second = rec.steps
    assert first.worst_success_ratio == pytest.approx(0.98) and first.worst_n == 500
    assert first.success_ratio_drop == pytest.approx(0.02)
    assert first.held_s == pytest.approx(6.5)
    assert first.p99_ms == 40.0 and first.p99_increase_ms == pytest.approx(36.0)
    assert first.p50_increase_ms == pytest.approx(1.0)
    assert second.held_s is None and second.recovered_under_fault_s == 37.5 and second.error == "boom"
    assert second.worst_success_ratio is None and second.success_ratio_drop is None
    doc = json.loads(rec.to_json())
    assert doc["recovery_s"] == 3.25 and doc["verdict"] == "failed" and len(doc["steps"]) == 2
