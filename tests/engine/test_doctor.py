"""Doctor verdicts from hand-written facts (the judging is pure), and the CLI's exit code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import meshcert.cli.engine as cli_engine
from meshcert.cli._context import Context
from meshcert.engine.caps import parse_capbnd
from meshcert.engine.client import Unreachable
from meshcert.engine.doctor import (
    COLD_BUILD_BYTES,
    CheckResult,
    DiskFree,
    DoctorFacts,
    Verdict,
    check_cgroup,
    check_disk,
    check_engine,
    check_go,
    check_inotify,
    check_kind,
    check_kubectl,
    check_privileged,
    disk_free,
    gather_facts,
    judge,
    parse_go_version,
)
from meshcert.engine.probe import ProbeResult
from meshcert.errors import ToolchainError
from meshcert.settings import load_settings

from .fakes import FakeHost, info_with

WRAPPER = "/usr/local/libexec/meshcert/runc-wrapper"


def _healthy() -> DoctorFacts:
    return DoctorFacts(
        engine=info_with("meshcert-runc", {"meshcert-runc": WRAPPER}),
        bounding_set=parse_capbnd("000001fffeffffff"),
        wrapper_active=True,
        privileged=ProbeResult(image="p", exec_cap_eff="000001fffeffffff", seconds=1.2),
        cgroup_version=2,
        sysctls={"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 512},
        disks=(DiskFree("Docker data root", Path("/var/lib/docker"), 100 * 1024**3),),
        go_version="go1.26.8",
        kubectl="/usr/bin/kubectl",
        kind=Path("/cache/bin/kind-v0.30.0-x/kind"),
    )


def test_healthy_host_is_all_ok() -> None:
    results = judge(_healthy())
    assert [r.verdict for r in results] == [Verdict.OK] * len(results)
    assert len(results) == 8
    assert all("\n" not in r.detail for r in results)


def test_unreachable_engine_fails_and_points_at_engine_up() -> None:
    facts = dataclasses.replace(_healthy(), engine=Unreachable("connection refused"), privileged=None)
    engine, privileged = check_engine(facts), check_privileged(facts)
    assert engine.verdict is Verdict.FAIL
    assert "connection refused" in engine.detail
    assert "meshcert engine up" in engine.detail
    assert privileged.verdict is Verdict.FAIL


def test_failed_probe_without_wrapper_names_the_missing_cap() -> None:
    facts = dataclasses.replace(
        _healthy(),
        wrapper_active=False,
        privileged="probe: `docker run --privileged` failed (unable to apply caps)",
    )
    result = check_privileged(facts)
    assert result.verdict is Verdict.FAIL
    assert "unable to apply caps" in result.detail
    assert "CAP_SYS_RESOURCE" in result.detail


def test_failed_probe_with_wrapper_has_no_wrapper_hint() -> None:
    result = check_privileged(dataclasses.replace(_healthy(), privileged="probe: exec exited 1"))
    assert result.verdict is Verdict.FAIL
    assert "CapBnd" not in result.detail


def test_cgroup_v1_warns_about_kubernetes_135() -> None:
    result = check_cgroup(dataclasses.replace(_healthy(), cgroup_version=1))
    assert result.verdict is Verdict.WARN
    assert "1.34" in result.detail
    assert "failCgroupV1: false" in result.detail
    assert check_cgroup(_healthy()).verdict is Verdict.OK


@pytest.mark.parametrize(
    ("watches", "instances", "verdict"),
    [
        (524288, 512, Verdict.OK),
        (524287, 512, Verdict.WARN),
        (524288, 511, Verdict.WARN),
        (None, 512, Verdict.WARN),
        (10**7, 8192, Verdict.OK),
    ],
)
def test_inotify_thresholds(watches: int | None, instances: int, verdict: Verdict) -> None:
    facts = dataclasses.replace(
        _healthy(),
        sysctls={"fs.inotify.max_user_watches": watches, "fs.inotify.max_user_instances": instances},
    )
    result = check_inotify(facts)
    assert result.verdict is verdict
    if verdict is Verdict.WARN:
        assert "meshcert engine up" in result.detail


def test_disk_below_cold_build_need_warns_and_says_how_much() -> None:
    low = check_disk(DiskFree("cache dir", Path("/c"), COLD_BUILD_BYTES - 1))
    assert low.verdict is Verdict.WARN
    assert "~25 GiB" in low.detail
    assert check_disk(DiskFree("cache dir", Path("/c"), COLD_BUILD_BYTES)).verdict is Verdict.OK
    unknown = check_disk(DiskFree("cache dir", Path("/c"), None, "permission denied"))
    assert unknown.verdict is Verdict.WARN
    assert "permission denied" in unknown.detail


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("go1.26.8", (1, 26, 8)),
        ("go1.27rc1", (1, 27)),
        ("go1.24.0 X:nocoverageredesign", (1, 24, 0)),
        ("devel", None),
    ],
)
def test_parse_go_version(text: str, parsed: tuple[int, ...] | None) -> None:
    assert parse_go_version(text) == parsed


@pytest.mark.parametrize(
    ("version", "verdict"),
    [
        ("go1.26.8", Verdict.OK),
        ("go1.27.3", Verdict.OK),
        ("go1.26.7", Verdict.WARN),
        ("weird", Verdict.WARN),
        (None, Verdict.FAIL),
    ],
)
def test_go_verdicts(version: str | None, verdict: Verdict) -> None:
    assert check_go(dataclasses.replace(_healthy(), go_version=version)).verdict is verdict


def test_missing_kubectl_warns() -> None:
    assert check_kubectl(dataclasses.replace(_healthy(), kubectl=None)).verdict is Verdict.WARN


def test_kind_not_built_warns_with_the_command() -> None:
    err = str(ToolchainError("locate", "Go is not usable: no go"))
    result = check_kind(dataclasses.replace(_healthy(), kind=err))
    assert result.verdict is Verdict.WARN
    assert result.detail.endswith("run `meshcert toolchain build`")
    already = "toolchain step 'locate' failed: kind is not built yet: run `meshcert toolchain build`"
    assert check_kind(dataclasses.replace(_healthy(), kind=already)).detail == already


def test_disk_free_walks_up_to_an_existing_parent(tmp_path: Path) -> None:
    result = disk_free("cache dir", tmp_path / "not" / "yet" / "created")
    assert result.free_bytes is not None and result.free_bytes > 0
    assert result.path == tmp_path / "not" / "yet" / "created"


def test_gather_facts_with_fake_host(tmp_path: Path) -> None:
    host = FakeHost(bin_dir=tmp_path, pid=4242, answering=True, binaries={"kubectl"})

    def no_kind() -> Path:
        raise ToolchainError("locate", "kind is not built yet: run `meshcert toolchain build`")

    facts = gather_facts(cache_dir=tmp_path, locate_kind=no_kind, host=host)
    assert ("probe",) in host.calls
    assert isinstance(facts.privileged, ProbeResult)
    assert not facts.wrapper_active
    assert facts.go_version is None  # the fake host has no go
    assert facts.kubectl == str(tmp_path / "kubectl")
    assert isinstance(facts.kind, str) and "not built" in facts.kind
    assert facts.sysctls == host.sysctls


def test_gather_facts_skips_probe_without_engine(tmp_path: Path) -> None:
    host = FakeHost(bin_dir=tmp_path)
    facts = gather_facts(cache_dir=tmp_path, locate_kind=lambda: tmp_path / "kind", host=host)
    assert ("probe",) not in host.calls
    assert facts.privileged is None
    assert isinstance(facts.engine, Unreachable)


def _app() -> typer.Typer:
    """A fresh root app with only the engine commands (the real one is a module global)."""
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Context(lambda: load_settings(pyproject=None, environ={}))

    cli_engine.register(app)
    return app


@pytest.mark.parametrize(("verdict", "code"), [(Verdict.OK, 0), (Verdict.WARN, 0), (Verdict.FAIL, 1)])
def test_doctor_command_exit_code(monkeypatch: pytest.MonkeyPatch, verdict: Verdict, code: int) -> None:
    canned = [
        CheckResult("Docker engine reachable", Verdict.OK, "fine"),
        CheckResult("thing", verdict, "[x] detail"),
    ]
    monkeypatch.setattr(cli_engine, "run_doctor", lambda **_kw: canned)
    result = CliRunner().invoke(_app(), ["doctor"])
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 2
    assert lines[-1].startswith(verdict.value.upper())
    assert "[x] detail" in lines[-1], "details must be printed literally, not as rich markup"
