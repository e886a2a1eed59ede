"""SystemHost's own logic against a fake /proc, and its process handling with stand-in binaries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshcert.engine.client import info_from_api
from meshcert.engine.host import SystemHost, find_dockerd_pid, sbin_path
from meshcert.errors import EngineError


def _proc(tmp_path: Path, procs: dict[int, str]) -> Path:
    proc = tmp_path / "proc"
    for pid, comm in procs.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(comm + "\n")
    (proc / "self").mkdir(parents=True, exist_ok=True)
    return proc


def _wait_for(path: Path, *, timeout: float = 10.0) -> str:
    """Poll for a file a detached child writes (it is not our child any more, so no wait())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_pidfile_naming_live_dockerd_wins(tmp_path: Path) -> None:
    proc = _proc(tmp_path, {10: "dockerd", 11: "containerd"})
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text("10")
    assert find_dockerd_pid(pidfile=pidfile, proc=proc) == 10


def test_stale_pidfile_falls_back_to_scan(tmp_path: Path) -> None:
    proc = _proc(tmp_path, {11: "containerd", 12: "dockerd"})
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text("11")  # reused pid: not dockerd any more
    assert find_dockerd_pid(pidfile=pidfile, proc=proc) == 12


@pytest.mark.parametrize("procs", [{11: "containerd"}, {12: "dockerd", 13: "dockerd"}])
def test_no_or_ambiguous_dockerd_is_none(tmp_path: Path, procs: dict[int, str]) -> None:
    proc = _proc(tmp_path, procs)
    assert find_dockerd_pid(pidfile=tmp_path / "absent.pid", proc=proc) is None


def test_read_sysctl_and_cmdline_from_proc(tmp_path: Path) -> None:
    proc = _proc(tmp_path, {7: "dockerd"})
    (proc / "sys" / "fs" / "inotify").mkdir(parents=True)
    (proc / "sys" / "fs" / "inotify" / "max_user_watches").write_text("192536\n")
    (proc / "7" / "cmdline").write_bytes(b"/usr/sbin/dockerd\0--config-file\0/x.json\0")
    (proc / "self" / "status").write_text("CapBnd:\t000001fffeffffff\n")
    host = SystemHost(proc=proc)
    assert host.read_sysctl("fs.inotify.max_user_watches") == 192536
    assert host.dockerd_cmdline(7) == ["/usr/sbin/dockerd", "--config-file", "/x.json"]
    assert host.bounding_set().absent == ("CAP_SYS_RESOURCE",)
    with pytest.raises(EngineError, match=r"read sysctl fs\.inotify\.max_user_instances"):
        host.read_sysctl("fs.inotify.max_user_instances")


def test_sbin_path_appends_missing_dirs_once() -> None:
    assert sbin_path("/usr/bin:/usr/sbin").split(":") == ["/usr/bin", "/usr/sbin", "/usr/local/sbin", "/sbin"]


def test_run_failure_names_step_and_last_stderr_line() -> None:
    with pytest.raises(EngineError, match=r"^apt-get install x: `sh -c .*` exited 3: last line$"):
        SystemHost().run("apt-get install x", ["sh", "-c", "echo first >&2; echo last line >&2; exit 3"])


def test_run_of_missing_binary_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="cannot run /nonexistent/tool"):
        SystemHost().run("step", ["/nonexistent/tool"])


def test_start_dockerd_detaches_scrubs_env_and_passes_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in `dockerd` earlier on PATH records how it was started; the real one is untouched."""
    out = tmp_path / "started"
    fake = tmp_path / "bin" / "dockerd"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        # /proc/PID/stat field 6 is the session id; 'dockerd' (field 2) has no spaces.
        f'printf "%s\\n" "$*" "${{MESHCERT_CAPBND:-unset}}" "$(cut -d" " -f6 /proc/$$/stat) $$" > {out}.tmp\n'
        f"mv {out}.tmp {out}\n"
        "echo dockerd-says-hello\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("MESHCERT_CAPBND", "0")
    log = tmp_path / "log" / "dockerd.log"

    SystemHost().start_dockerd(log=log, config_file=tmp_path / "d.json")

    args, capbnd, session = _wait_for(out).splitlines()
    assert args == f"--config-file {tmp_path / 'd.json'}"
    assert capbnd == "unset", "MESHCERT_CAPBND must not leak into dockerd (and through it, the wrapper)"
    sid, pid = session.split()
    assert sid == pid, "dockerd must lead its own session (setsid)"
    deadline = time.monotonic() + 10
    while "dockerd-says-hello" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "dockerd-says-hello" in log.read_text()


def test_reload_sends_sighup(tmp_path: Path) -> None:
    marker = tmp_path / "hup"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time, pathlib\n"
            f"def hup(*_):\n    pathlib.Path({str(marker)!r}).write_text('hup')\n    sys.exit(0)\n"
            "signal.signal(signal.SIGHUP, hup)\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        SystemHost().reload_dockerd(child.pid)
        assert child.wait(timeout=10) == 0
        assert marker.read_text() == "hup"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_reload_of_gone_process_is_an_engine_error() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    with pytest.raises(EngineError, match=f"cannot signal pid {child.pid}"):
        SystemHost().reload_dockerd(child.pid)


def test_info_mapping_and_defaults() -> None:
    info = info_from_api(
        {
            "ServerVersion": "20.10.24",
            "DefaultRuntime": "meshcert-runc",
            "Runtimes": {"runc": {"path": "runc"}, "meshcert-runc": {"path": "/w"}},
            "DockerRootDir": "/srv/docker",
            "CgroupVersion": "2",
        }
    )
    assert info.default_runtime_path == "/w"
    assert info.data_root == Path("/srv/docker")
    bare = info_from_api({})
    assert bare.default_runtime == "runc"
    assert bare.default_runtime_path is None
    assert bare.cgroup_version == "1"
