"""`engine_up` decisions, against a fake host: fresh machine, running daemon, configured machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshcert.engine.daemon import RUNTIME_NAME
from meshcert.engine.engine import EnginePaths, engine_status, engine_up
from meshcert.errors import EngineError

from .fakes import FULL_CAPBND, FakeHost, info_with


@pytest.fixture
def paths(tmp_path: Path) -> EnginePaths:
    return EnginePaths(
        daemon_json=tmp_path / "etc" / "daemon.json",
        wrapper=tmp_path / "libexec" / "runc-wrapper",
        dockerd_log=tmp_path / "dockerd.log",
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    return d


def _config(paths: EnginePaths) -> Path:
    assert paths.daemon_json is not None
    return paths.daemon_json


def _fresh(bin_dir: Path, paths: EnginePaths) -> FakeHost:
    """No docker.io, no jq, nothing running; low inotify limits."""
    return FakeHost(
        bin_dir=bin_dir,
        binaries={"sysctl"},
        config_file=paths.daemon_json,
        sysctls={"fs.inotify.max_user_watches": 8192, "fs.inotify.max_user_instances": 128},
    )


def test_fresh_machine_installs_configures_starts_and_verifies(bin_dir: Path, paths: EnginePaths) -> None:
    host = _fresh(bin_dir, paths)
    steps: list[str] = []

    result = engine_up(host=host, paths=paths, on_step=steps.append)

    assert host.effects() == [
        ("run", "apt-get", "update", "-qq"),
        ("run", "apt-get", "install", "-y", "-qq", "docker.io", "jq"),
        ("start", str(paths.daemon_json), str(paths.dockerd_log)),
        ("run", "sysctl", "-w", "fs.inotify.max_user_watches=524288"),
        ("run", "sysctl", "-w", "fs.inotify.max_user_instances=512"),
    ]
    assert paths.wrapper.exists()
    assert f'REAL_RUNC="{bin_dir / "runc"}"' in paths.wrapper.read_text()
    assert json.loads(_config(paths).read_text()) == {
        "runtimes": {RUNTIME_NAME: {"path": str(paths.wrapper)}},
        "default-runtime": RUNTIME_NAME,
    }
    assert result.wrapper_active
    assert result.probe is not None
    assert host.calls[-1] == ("probe",)
    assert [a.split(" ")[0] for a in result.actions] == [
        "installed",
        "installed",
        "set",
        "started",
        "raised",
        "raised",
    ]
    assert any("apt-get" in s for s in steps), "the slow apt step must be announced"
    assert any("starting dockerd" in s for s in steps)


def test_second_run_is_a_no_op(bin_dir: Path, paths: EnginePaths) -> None:
    host = _fresh(bin_dir, paths)
    engine_up(host=host, paths=paths)
    host.calls.clear()
    wrapper_mtime = paths.wrapper.stat().st_mtime_ns
    config_mtime = _config(paths).stat().st_mtime_ns

    again = engine_up(host=host, paths=paths)

    assert again.actions == ()
    assert not again.changed
    assert host.effects() == []
    assert paths.wrapper.stat().st_mtime_ns == wrapper_mtime
    assert _config(paths).stat().st_mtime_ns == config_mtime


def test_postinst_started_daemon_is_reloaded_not_restarted(bin_dir: Path, paths: EnginePaths) -> None:
    host = _fresh(bin_dir, paths)
    host.starts_on_install = True  # docker.io's maintainer script started dockerd with no config

    result = engine_up(host=host, paths=paths)

    kinds = [c[0] for c in host.effects()]
    assert "start" not in kinds
    assert ("sighup", "4242") in host.effects()
    assert result.wrapper_active


def test_running_daemon_with_plain_runc_gets_sighup(bin_dir: Path, paths: EnginePaths) -> None:
    assert paths.daemon_json is not None
    paths.daemon_json.parent.mkdir(parents=True)
    paths.daemon_json.write_text(json.dumps({"log-level": "warn", "runtimes": {"x": {"path": "/bin/x"}}}))
    host = FakeHost(bin_dir=bin_dir, pid=4242, answering=True, config_file=paths.daemon_json)

    result = engine_up(host=host, paths=paths, verify=False)

    assert host.effects() == [("sighup", "4242")]
    written = json.loads(paths.daemon_json.read_text())
    assert written["log-level"] == "warn"
    assert written["runtimes"]["x"] == {"path": "/bin/x"}
    assert written["default-runtime"] == RUNTIME_NAME
    assert result.wrapper_active
    assert result.probe is None
    assert any("SIGHUP" in a for a in result.actions)


def test_sighup_ignored_times_out_with_what_dockerd_shows(bin_dir: Path, paths: EnginePaths) -> None:
    host = FakeHost(bin_dir=bin_dir, pid=4242, answering=True, config_file=paths.daemon_json)
    host.honours_sighup = False
    with pytest.raises(
        EngineError, match=r"reload dockerd: after SIGHUP and 5s it still shows default runtime runc"
    ):
        engine_up(host=host, paths=paths, timeout=5.0)
    assert host.clock >= 5.0


def test_dockerd_that_never_answers_times_out_naming_its_log(bin_dir: Path, paths: EnginePaths) -> None:
    host = _fresh(bin_dir, paths)
    host.start_delay_polls = 10**6
    paths.dockerd_log.write_text("starting\nfailed to start daemon: iptables not found\n\n")
    with pytest.raises(
        EngineError, match=r"wait for dockerd: no answer after 60s .*dockerd\.log ends: failed"
    ):
        engine_up(host=host, paths=paths)


def test_starting_process_is_waited_for_not_started_again(bin_dir: Path, paths: EnginePaths) -> None:
    host = FakeHost(bin_dir=bin_dir, pid=4242, answering=False, config_file=paths.daemon_json)
    host.start_delay_polls = 3
    host._polls_until_up = 3
    result = engine_up(host=host, paths=paths)
    assert not any(c[0] == "start" for c in host.calls)
    assert result.wrapper_active  # SIGHUP after it came up


def test_complete_bounding_set_needs_no_wrapper(bin_dir: Path, paths: EnginePaths) -> None:
    host = _fresh(bin_dir, paths)
    host.capbnd = FULL_CAPBND

    result = engine_up(host=host, paths=paths)

    assert ("run", "apt-get", "install", "-y", "-qq", "docker.io") in host.effects(), (
        "jq only for the wrapper"
    )
    assert not paths.wrapper.exists()
    assert paths.daemon_json is not None and not paths.daemon_json.exists()
    assert not any(c[0] == "sighup" for c in host.calls)
    assert not result.wrapper_active


def test_without_root_nothing_is_changed(bin_dir: Path, paths: EnginePaths) -> None:
    host = _fresh(bin_dir, paths)
    host.root = False
    with pytest.raises(EngineError, match=r"apt-get install docker.io jq: needs root"):
        engine_up(host=host, paths=paths)
    assert host.effects() == []


def test_daemon_config_file_comes_from_dockerd_cmdline(bin_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "custom.json"
    config.write_text("{}")
    paths = EnginePaths(wrapper=tmp_path / "w", dockerd_log=tmp_path / "log")
    host = FakeHost(bin_dir=bin_dir, pid=4242, answering=True, config_file=config)
    host.cmdline = ["/usr/sbin/dockerd", "--config-file", str(config)]

    engine_up(host=host, paths=paths, verify=False)

    assert json.loads(config.read_text())["default-runtime"] == RUNTIME_NAME


def test_default_runtime_flag_on_dockerd_is_refused(bin_dir: Path, paths: EnginePaths) -> None:
    host = FakeHost(bin_dir=bin_dir, pid=4242, answering=True, config_file=paths.daemon_json)
    host.cmdline = ["dockerd", "--default-runtime=runc"]
    with pytest.raises(EngineError, match="conflicts with default-runtime"):
        engine_up(host=host, paths=paths)
    assert host.effects() == []


def test_engine_answering_without_visible_dockerd_asks_the_user(bin_dir: Path, paths: EnginePaths) -> None:
    host = FakeHost(bin_dir=bin_dir, pid=None, answering=True, config_file=paths.daemon_json)
    host.engine_info = info_with  # type: ignore[method-assign]  # answers, e.g. a remote DOCKER_HOST
    with pytest.raises(EngineError, match="no dockerd process is visible here"):
        engine_up(host=host, paths=paths)


def test_status_reports_missing_wrapper_then_ready(bin_dir: Path, paths: EnginePaths) -> None:
    host = FakeHost(bin_dir=bin_dir, pid=4242, answering=True, config_file=paths.daemon_json)
    before = engine_status(host=host, paths=paths)
    assert not before.ready
    assert before.wrapper_current is False
    assert any("CAP_SYS_RESOURCE" in n for n in before.notes)

    engine_up(host=host, paths=paths)

    after = engine_status(host=host, paths=paths)
    assert after.ready
    assert after.wrapper_active
    assert after.wrapper_current is True
    assert after.notes == ()
