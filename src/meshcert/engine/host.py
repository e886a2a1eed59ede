"""The host operations `engine up` and `doctor` need, behind one Protocol.

`engine up` decides what to do from facts (is dockerd installed, running, which runtime is its
default, what CapBnd lacks) and then acts on the host (apt-get, starting dockerd, SIGHUP,
sysctl). Keeping every such effect behind `Host` lets the decision logic be tested with a fake
host (including the install/start/reload paths a configured machine never takes), while
`SystemHost` is the thin real implementation. File edits (daemon.json, the wrapper) are not
here: they take paths, and tests point those at a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from meshcert.engine.caps import BoundingSet, read_capbnd
from meshcert.engine.client import EngineInfo, Unreachable, read_engine_info
from meshcert.engine.daemon import DEFAULT_DAEMON_JSON
from meshcert.engine.probe import ProbeResult, verify_privileged
from meshcert.errors import EngineError

#: dockerd's pid file unless daemon.json sets "pidfile".
DOCKERD_PIDFILE = Path("/var/run/docker.pid")
#: Debian installs dockerd, runc and sysctl under sbin, which non-login PATHs often lack.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
#: The wrapper override must never reach the real wrapper through dockerd's environment.
_SCRUBBED_ENV = ("MESHCERT_CAPBND",)


class Host(Protocol):
    """Facts about, and effects on, the machine the engine runs on."""

    def bounding_set(self) -> BoundingSet: ...

    def is_root(self) -> bool: ...

    def which(self, name: str) -> str | None: ...

    def run(self, step: str, argv: Sequence[str]) -> None:
        """Run a command to completion; raise `EngineError` naming ``step`` when it fails."""
        ...

    def engine_info(self) -> EngineInfo | Unreachable: ...

    def dockerd_pid(self) -> int | None: ...

    def dockerd_cmdline(self, pid: int) -> list[str]: ...

    def start_dockerd(self, *, log: Path, config_file: Path) -> None:
        """Start dockerd detached from this process (it must outlive `meshcert`)."""
        ...

    def reload_dockerd(self, pid: int) -> None:
        """Send SIGHUP: dockerd re-reads daemon.json, including runtimes and default-runtime."""
        ...

    def read_sysctl(self, name: str) -> int: ...

    def probe(self) -> ProbeResult: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


def sbin_path(path: str) -> str:
    """``path`` with the sbin directories appended where missing."""
    parts = [p for p in path.split(os.pathsep) if p]
    return os.pathsep.join(parts + [d for d in _SBIN_DIRS if d not in parts])


def proc_comm(pid: int, *, proc: Path = Path("/proc")) -> str | None:
    """The command name of ``pid``, or None if there is no such process."""
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return None


def find_dockerd_pid(*, pidfile: Path = DOCKERD_PIDFILE, proc: Path = Path("/proc")) -> int | None:
    """dockerd's pid: its pid file if that names a live dockerd, else a scan of ``proc``.

    The scan covers dockerd started without a pid file (or a stale one). More than one dockerd
    is ambiguous, so it answers None and the caller asks the user.
    """
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        if proc_comm(pid, proc=proc) == "dockerd":
            return pid
    found = [
        int(entry.name)
        for entry in proc.iterdir()
        if entry.name.isdigit() and proc_comm(int(entry.name), proc=proc) == "dockerd"
    ]
    return found[0] if len(found) == 1 else None


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


class SystemHost:
    """The real machine."""

    def __init__(self, *, proc: Path = Path("/proc")) -> None:
        self._proc = proc

    def bounding_set(self) -> BoundingSet:
        return read_capbnd(status=self._proc / "self" / "status")

    def is_root(self) -> bool:
        return os.geteuid() == 0

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=sbin_path(os.environ.get("PATH", "")))

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["PATH"] = sbin_path(env.get("PATH", ""))
        env["DEBIAN_FRONTEND"] = "noninteractive"
        return env

    def run(self, step: str, argv: Sequence[str]) -> None:
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, env=self._env(), check=False)
        except OSError as e:
            raise EngineError(f"{step}: cannot run {argv[0]} ({e}); is it installed?") from e
        if proc.returncode != 0:
            raise EngineError(
                f"{step}: `{' '.join(argv)}` exited {proc.returncode}: {_tail(proc.stderr or proc.stdout)}"
            )

    def engine_info(self) -> EngineInfo | Unreachable:
        return read_engine_info()

    def dockerd_pid(self) -> int | None:
        return find_dockerd_pid(proc=self._proc)

    def dockerd_cmdline(self, pid: int) -> list[str]:
        try:
            raw = (self._proc / str(pid) / "cmdline").read_bytes()
        except OSError as e:
            raise EngineError(
                f"inspect dockerd: cannot read its command line ({e}); is pid {pid} alive?"
            ) from e
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]

    def start_dockerd(self, *, log: Path, config_file: Path) -> None:
        dockerd = self.which("dockerd")
        if dockerd is None:
            raise EngineError("start dockerd: dockerd not found; apt-get install docker.io")
        argv = ["setsid", "--fork", dockerd]
        if config_file != DEFAULT_DAEMON_JSON:
            argv += ["--config-file", str(config_file)]
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as out:
                # setsid --fork: dockerd gets its own session (no SIGHUP/SIGINT from our terminal)
                # and is reparented away from us, so meshcert can exit while it runs.
                subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    check=True,
                )
        except (OSError, subprocess.CalledProcessError) as e:
            raise EngineError(f"start dockerd: cannot launch it ({e}); see {log}") from e

    def reload_dockerd(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as e:
            raise EngineError(
                f"reload dockerd: cannot signal pid {pid} ({e}); restart dockerd by hand"
            ) from e

    def read_sysctl(self, name: str) -> int:
        path = self._proc / "sys" / name.replace(".", "/")
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError) as e:
            raise EngineError(f"read sysctl {name}: cannot read {path} ({e}); is /proc mounted?") from e

    def probe(self) -> ProbeResult:
        return verify_privileged()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
