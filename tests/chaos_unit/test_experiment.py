"""Experiment parsing: typed records from YAML, and errors naming file:line and the field path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshcert.errors import ConfigError
from meshcert.faults.experiment import load_experiment
from meshcert.faults.probes import ProbeResult, judge_latency
from meshcert.faults.runner import Journal, StepRecord, verdict

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
title: pod kill
steady_state:
  - {probe: success_ratio, service: web, min_ratio: 0.99}
method:
  - fault: {kind: pod-kill, selector: app=web}
    hold: 2
    during:
      - {probe: latency, service: web, percentile: p99, max_ms: 200}
  - wait: 1.5
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_a_good_experiment_parses_into_typed_steps(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, GOOD))
    assert exp.title == "pod kill" and exp.name == "exp"
    assert [p.kind for p in exp.steady_state] == ["success_ratio"]
    fault_step, wait_step = exp.method
    assert fault_step.fault is not None and fault_step.fault.kind == "pod-kill"
    assert fault_step.hold == 2 and [p.kind for p in fault_step.during] == ["latency"]
    assert wait_step.fault is None and wait_step.wait == 1.5


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "reason"),
    [
        (
            "kind: pod-kill, selector: app=web",
            "kind: nuke",
            "method[0].fault.kind",
            5,
            "unknown fault 'nuke'",
        ),
        ("selector: app=web}", "selektor: app=web}", "method[0].fault", 5, "needs 'selector'"),
        ("hold: 2", "hold: -1", "method[0].hold", 6, "expected a number >= 0"),
        ("min_ratio: 0.99", "min_ratio: 1.5", "steady_state[0].min_ratio", 3, "within [0, 1]"),
        ("percentile: p99", "percentile: p95", "method[0].during[0].percentile", 8, "one of p50, p99"),
        ("max_ms: 200}", "max_ms: 200, min_ms: 300}", "method[0].during[0].min_ms", 8, "must be <= max_ms"),
        (
            "  - wait: 1.5",
            "  - wait: 1\n    fault: {kind: pod-kill, selector: a=b}",
            "method[1]",
            9,
            "either",
        ),
        ("title: pod kill", "title: pod kill\nsteps: []", "steps", 2, "unknown field"),
        ("probe: success_ratio", "probe: vibes", "steady_state[0].probe", 3, "unknown probe 'vibes'"),
    ],
)
def test_errors_name_line_and_field(  # noqa: PLR0917 - one argument per parametrize column
    tmp_path: Path, old: str, new: str, field: str, line: int, reason: str
) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert err.value.field == field
    assert err.value.source == f"{path}:{line}"
    assert reason in err.value.reason


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "title: x\nmethod: [\n  {a: b\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml:\d+: not valid YAML"):
        load_experiment(path)


def test_missing_steady_state_and_workload_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="steady_state: at least one probe"):
        load_experiment(_write(tmp_path, "title: x\nmethod:\n  - wait: 1\n"))
    with pytest.raises(ConfigError, match="no such manifest"):
        load_experiment(_write(tmp_path, "workload: nope.yaml\n" + GOOD), root=tmp_path)


def test_shipped_experiments_validate() -> None:
    paths = sorted((ROOT / "chaos" / "experiments").glob("*.yaml"))
    assert paths
    for path in paths:
        load_experiment(path, root=ROOT)


def test_cli_validate_exits_2_on_bad_input_and_creates_nothing(tmp_path: Path) -> None:
    bad = _write(tmp_path, GOOD.replace("kind: pod-kill, selector: app=web", "kind: nuke"))
    code = (
        "import sys\nfrom meshcert.cli import app, chaos, main\n"
        "from meshcert.cli import _register\n"
        "chaos.register(app)\nmain(sys.argv[1:])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "chaos", "run", str(bad), "--kubeconfig", str(tmp_path / "kc"),
         "--cluster-name", "x"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"MESHCERT_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert f"{bad}:5: method[0].fault.kind: unknown fault 'nuke'" in out.stderr
    assert not (tmp_path / "state" / "runs").exists()


def _ok(ok: bool = True) -> ProbeResult:
    return ProbeResult("success_ratio", ok, "99/100 ok" if ok else "80/100 ok", n=100)


def test_verdict_passes_only_with_steady_state_before_and_after() -> None:
    j = Journal("e", "t", "mc-00000000", 0.0, steady_before=[_ok()], steady_after=[_ok()])
    j.steps.append(StepRecord("pod-kill", 0.0, during=[_ok()]))
    assert verdict(j) == ("passed", [])
    j.steady_after = [_ok(False)]
    assert verdict(j)[0] == "failed" and "did not return" in verdict(j)[1][0]


def test_verdict_fails_on_deviation_and_revert_errors_and_aborts_without_baseline() -> None:
    j = Journal("e", "t", "mc-00000000", 0.0, steady_before=[_ok()], steady_after=[_ok()])
    j.steps.append(StepRecord("pod-kill", 0.0, during=[_ok(False)]))
    j.steps.append(StepRecord("node-stop", 0.0, error="reverting node-stop failed"))
    status, reasons = verdict(j)
    assert status == "failed"
    assert reasons == [
        "method[0] (pod-kill) during: 80/100 ok",
        "method[1] (node-stop): reverting node-stop failed",
    ]
    assert verdict(Journal("e", "t", "mc-00000000", 0.0, steady_before=[_ok(False)]))[0] == "aborted"
    assert verdict(Journal("e", "t", "mc-00000000", 0.0, error="boom"))[0] == "aborted"


@pytest.mark.parametrize(
    ("p50", "replies", "ok", "detail"),
    [
        (150.0, 60, True, "p50 150.0 ms (100..500 ms wanted) over 60 replies"),
        (42.0, 60, False, "p50 42.0 ms (100..500 ms wanted)"),  # the toxic is not in the path
        (620.0, 60, False, "p50 620.0 ms"),
        (150.0, 0, False, "over 0 replies"),
        (None, 0, False, "p50 none"),
    ],
)
def test_latency_probe_wants_the_percentile_between_its_bounds(
    p50: float | None, replies: int, ok: bool, detail: str
) -> None:
    params = {"percentile": "p50", "min_ms": 100, "max_ms": 500}
    got_ok, got_detail = judge_latency(params, ProbeResult("latency", False, "", p50_ms=p50), replies=replies)
    assert got_ok is ok and detail in got_detail


def test_latency_probe_without_min_ms_is_an_upper_bound() -> None:
    params = {"percentile": "p99", "max_ms": 200}
    assert judge_latency(params, ProbeResult("latency", False, "", p99_ms=1.0), replies=5) == (
        True, "p99 1.0 ms (<= 200 ms wanted) over 5 replies",
    )  # fmt: skip
