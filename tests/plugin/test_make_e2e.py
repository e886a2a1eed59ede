"""`make e2e`'s lane recipe, run with a stand-in pytest: a failing lane still marks itself done.

Why: the recipe runs under ``set -euo pipefail``; a failing lane once ended its subshell before
touching its done file, and the core lane's exclusive tests waited the whole timeout for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The stand-in: mesh-b fails, mesh-a passes, neither writes its done file (as if pytest died
# first); core waits up to 20 s for both, then says what it saw.
FAKE_PYTEST = """#!/usr/bin/env bash
case "$*" in
  *--exclusive-after=*)
    for _ in $(seq 200); do
      [ -e "$FAKE_LANES/mesh-a" ] && [ -e "$FAKE_LANES/mesh-b" ] && break; sleep 0.1
    done
    ls "$FAKE_LANES"; exit 0 ;;
  *"conformance/mesh --ignore"*) echo "2 failed"; exit 1 ;;
  *) echo "25 passed"; exit 0 ;;
esac
"""


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("timeout") is None, reason="needs make")
def test_a_failing_lane_still_writes_its_done_file(tmp_path: Path) -> None:
    venv, lanes = tmp_path / "venv", tmp_path / "lanes"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "pytest"
    fake.write_text(FAKE_PYTEST)
    fake.chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: `venv` is up to date
    proc = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "e2e", f"VENV={venv}", f"LANES_DONE={lanes}"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "FAKE_LANES": str(lanes)}, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert ">> e2e: failed lane(s): mesh-b" in out, out
    assert "[core] mesh-a" in out and "[core] mesh-b" in out, out  # core saw both done files
    assert ">> [mesh-b] lane ended at" in out and "exit 1 after" in out, out
    assert sorted(p.name for p in lanes.iterdir()) == ["core", "mesh-a", "mesh-b"]
