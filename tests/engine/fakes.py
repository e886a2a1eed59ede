"""A fake `Host` that models dockerd just enough to test `engine_up`'s decisions.

It keeps the parts that matter real: daemon.json and the wrapper are real files in a temporary
directory, and the fake dockerd reads daemon.json when it "starts" or gets SIGHUP, so a test
sees whether engine_up wrote the configuration before acting on the daemon.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshcert.engine.caps import BoundingSet, parse_capbnd
from meshcert.engine.client import EngineInfo, Unreachable
from meshcert.engine.probe import ProbeResult
from meshcert.errors import EngineError

SANDBOX_CAPBND = "000001fffeffffff"
FULL_CAPBND = "000001ffffffffff"


def info_with(default: str = "runc", runtimes: dict[str, str] | None = None) -> EngineInfo:
    return EngineInfo(
        server_version="20.10.24",
        default_runtime=default,
        runtimes={"runc": "runc", **(runtimes or {})},
        data_root=Path("/var/lib/docker"),
        cgroup_version="1",
    )


@dataclass
class FakeHost:
    bin_dir: Path
    capbnd: str = SANDBOX_CAPBND
    root: bool = True
    binaries: set[str] = field(default_factory=lambda: {"dockerd", "jq", "runc", "sysctl"})
    #: None: dockerd is not running.
    pid: int | None = None
    cmdline: list[str] = field(default_factory=lambda: ["dockerd"])
    #: The daemon.json the fake dockerd reads on start/SIGHUP.
    config_file: Path | None = None
    #: Whether the engine answers on its socket (a running dockerd normally does).
    answering: bool = False
    #: The runtime table a running daemon shows.
    info: EngineInfo = field(default_factory=info_with)
    #: Polls after start before the socket answers.
    start_delay_polls: int = 2
    honours_sighup: bool = True
    starts_on_install: bool = False
    sysctls: dict[str, int] = field(
        default_factory=lambda: {"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 512}
    )
    calls: list[tuple[str, ...]] = field(default_factory=list)
    clock: float = 0.0
    _polls_until_up: int = 0

    # --- Host protocol -------------------------------------------------------------------
    def bounding_set(self) -> BoundingSet:
        return parse_capbnd(self.capbnd)

    def is_root(self) -> bool:
        return self.root

    def which(self, name: str) -> str | None:
        if name not in self.binaries:
            return None
        path = self.bin_dir / name
        if not path.exists():
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
        return str(path)

    def run(self, step: str, argv: Sequence[str]) -> None:
        self.calls.append(("run", *argv))
        if not self.root:
            raise EngineError(f"{step}: permission denied")
        if argv[:2] == ["apt-get", "install"]:
            self.binaries |= {p for p in argv[2:] if not p.startswith("-")}
            if "docker.io" in argv:
                self.binaries |= {"dockerd", "runc"}
                if self.starts_on_install:
                    self._start(self.config_file)
                    self._polls_until_up = 0
        if argv[0] == "sysctl":
            name, value = argv[2].split("=")
            self.sysctls[name] = int(value)

    def engine_info(self) -> EngineInfo | Unreachable:
        self.calls.append(("info",))
        if self.pid is None or not self.answering:
            if self.pid is not None and self._polls_until_up <= 0:
                self.answering = True
                return self.info
            self._polls_until_up -= 1
            return Unreachable("connection refused")
        return self.info

    def dockerd_pid(self) -> int | None:
        return self.pid

    def dockerd_cmdline(self, pid: int) -> list[str]:
        assert pid == self.pid
        return self.cmdline

    def start_dockerd(self, *, log: Path, config_file: Path) -> None:
        self.calls.append(("start", str(config_file), str(log)))
        self._start(config_file)

    def reload_dockerd(self, pid: int) -> None:
        self.calls.append(("sighup", str(pid)))
        assert pid == self.pid
        if self.honours_sighup:
            self._load(self.config_file)

    def read_sysctl(self, name: str) -> int:
        return self.sysctls[name]

    def probe(self) -> ProbeResult:
        self.calls.append(("probe",))
        return ProbeResult(image="fake", exec_cap_eff="000001fffeffffff", seconds=0.1)

    def monotonic(self) -> float:
        return self.clock

    def sleep(self, seconds: float) -> None:
        self.clock += seconds

    # --- the fake daemon -----------------------------------------------------------------
    def _start(self, config_file: Path | None) -> None:
        self.pid = 4242
        self.answering = False
        self._polls_until_up = self.start_delay_polls
        self._load(config_file)

    def _load(self, config_file: Path | None) -> None:
        if config_file is None or not config_file.exists():
            return
        data = json.loads(config_file.read_text())
        runtimes = {k: v["path"] for k, v in data.get("runtimes", {}).items()}
        self.info = info_with(data.get("default-runtime", "runc"), runtimes)

    def effects(self) -> list[tuple[str, ...]]:
        """Every call that changes the host (not the read-only ones)."""
        return [c for c in self.calls if c[0] not in ("info", "probe")]
