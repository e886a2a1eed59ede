"""Bad input: one line on stderr naming file/field/reason, exit code 2, nothing created."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MESHCERT = str(ROOT / ".venv" / "bin" / "meshcert")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MESHCERT, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, check=False)  # fmt: skip


def _networks() -> set[str]:
    out = subprocess.run(
        ["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True, check=False
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: boss\n", "nodes[0].role"),
        ("kind: Cluster\napiVersion: nope\n", "apiVersion"),
        ("{{{", "not valid YAML"),
    ],
)
def test_malformed_kind_config(tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    before = _networks()
    state = tmp_path / "state"
    res = _run("cluster", "up", "--config", str(bad), env={"MESHCERT_STATE_DIR": str(state)})
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(bad) in lines[0] and expected in lines[0]
    assert _networks() == before
    assert not (state / "runs").exists() or not any((state / "runs").iterdir())


def test_unknown_provider_names_the_variable() -> None:
    res = _run("cluster", "status", "x", env={"MESHCERT_PROVIDER": "minikube"})
    assert res.returncode == 2
    assert res.stderr.startswith("meshcert: error: environment: provider (MESHCERT_PROVIDER):")
    assert len(res.stderr.strip().splitlines()) == 1


def test_unknown_setting_in_settings_file(tmp_path: Path) -> None:
    cfg = tmp_path / "meshcert.yaml"
    cfg.write_text("kwok_nodes: 3\nflavour: spicy\n")
    res = _run("--config", str(cfg), "cluster", "status", "x")
    assert res.returncode == 2
    assert f"{cfg}: flavour: unknown setting" in res.stderr


def test_out_of_range_setting(tmp_path: Path) -> None:
    res = _run("cluster", "status", "x", env={"MESHCERT_KWOK_NODES": "0"})
    assert res.returncode == 2 and "kwok_nodes" in res.stderr


def test_bad_gc_run_id() -> None:
    res = _run("gc", "not-a-run")
    assert res.returncode == 2
    assert "is not a run id" in res.stderr


def test_unknown_toolchain_component() -> None:
    res = _run("toolchain", "build", "nginx")
    assert res.returncode == 2
    assert "unknown component" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_every_subcommand_loads() -> None:
    """All subcommand modules import and register (a broken annotation breaks the whole CLI)."""
    res = _run("--help")
    assert res.returncode == 0, res.stderr
    for command in ("doctor", "engine", "toolchain", "images", "cluster", "mesh", "chaos", "run", "gc"):
        assert f" {command} " in res.stdout, command
