"""`meshcert mesh run`: the pytest child's argv and environment (pure parts; no cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from meshcert.cli import main
from meshcert.cli.mesh import suite_argv, suite_env


def test_full_run_selects_every_e2e_test_of_the_mesh_suite() -> None:
    argv = suite_argv(Path("/k/kubeconfig"), quick=False, extra=["-x", "-k", "m8"])
    assert argv[:4] == [sys.executable, "-m", "pytest", "conformance/mesh"]
    assert argv[4:6] == ["-m", "e2e"]
    assert argv[6:10] == ["--cluster", "existing", "--kubeconfig", "/k/kubeconfig"]
    assert argv[10:] == ["-x", "-k", "m8"]


def test_quick_run_leaves_out_slow_tests() -> None:
    argv = suite_argv(Path("k"), quick=True, extra=[])
    assert argv[4:6] == ["-m", "e2e and not slow"]


def test_child_may_run_disruptive_tests_and_keeps_the_rest_of_the_environment() -> None:
    env = suite_env({"PATH": "/bin", "MESHCERT_ALLOW_DISRUPTIVE": "false"})
    assert env == {"PATH": "/bin", "MESHCERT_ALLOW_DISRUPTIVE": "true"}


def test_outside_the_repository_root_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["mesh", "run", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "conformance/mesh" in err and "repository root" in err
