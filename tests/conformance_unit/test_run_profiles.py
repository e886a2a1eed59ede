"""The `meshcert run conformance` front end: profiles → marker expressions → pytest argv."""

from __future__ import annotations

import sys

import pytest

from meshcert.cli.run import PROFILES, Profile, marker_expression, pytest_argv
from meshcert.errors import ConfigError


def test_quick_excludes_slow_and_full_does_not() -> None:
    assert marker_expression("quick") == "conformance and not slow"
    assert marker_expression(Profile.FULL) == "conformance"


def test_every_profile_selects_only_conformance_tests() -> None:
    for spec in PROFILES.values():
        assert spec.markers.startswith("conformance")


def test_extra_markers_are_anded_in_parentheses() -> None:
    assert marker_expression("quick", "dns or probes") == "(conformance and not slow) and (dns or probes)"


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nightly'"):
        marker_expression("nightly")


def test_argv_runs_pytest_on_the_suite_with_options() -> None:
    argv = pytest_argv(
        "full", keyword="E1", cluster="existing", kubeconfig="/k", keep_cluster=True, extra=["-x"]
    )
    assert argv[:4] == [sys.executable, "-m", "pytest", "conformance"]
    assert argv[4:] == ["-m", "conformance", "-k", "E1", "--cluster", "existing", "--kubeconfig", "/k",
                        "--keep-cluster", "-x"]  # fmt: skip


def test_argv_rejects_unknown_provider() -> None:
    with pytest.raises(ValueError):
        pytest_argv("quick", cluster="minikube")


def test_cli_exits_with_pytests_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    import typer
    from typer.testing import CliRunner

    from meshcert.cli import run

    seen: list[list[str]] = []

    class Done:
        returncode = 5

    def fake_run(argv: list[str], check: bool) -> Done:
        seen.append(argv)
        return Done()

    monkeypatch.setattr(subprocess, "run", fake_run)
    app = typer.Typer()  # only this module's commands: the test must not depend on the others
    run.register(app)
    result = CliRunner().invoke(app, ["run", "conformance", "--profile", "full", "-k", "S1"])
    assert result.exit_code == 5, result.output
    assert seen and seen[0][4:8] == ["-m", "conformance", "-k", "S1"]
