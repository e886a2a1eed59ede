"""`engine_up`: bring this host from "maybe no Docker at all" to "kind can run", idempotently.

The steps, each skipped when already true (so a configured machine sees no change at all):

1. Install what is missing: docker.io when no dockerd exists and none answers; jq when the
   runc wrapper is needed (the wrapper filters JSON with it).
2. If CapBnd lacks capabilities runc asks for: install the runc wrapper and make it the default
   runtime in dockerd's daemon.json (other keys kept).
3. If no engine answers: start dockerd detached and wait for its socket (with a deadline).
   If one answers but its default runtime is not the wrapper: SIGHUP it (dockerd reloads
   `runtimes` and `default-runtime` without restarting containers) and wait until `docker
   info` shows the wrapper. dockerd is never stopped or restarted here.
4. Raise inotify limits kind needs.
5. Prove it: a privileged container runs and accepts a privileged exec (`probe`).

Not here: building toolchains or images, creating clusters, or choosing between engines
(Docker is the only engine kind's offline node image path is verified on, DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meshcert.engine._files import read_text_or_none
from meshcert.engine.caps import BoundingSet
from meshcert.engine.client import EngineInfo, Unreachable
from meshcert.engine.daemon import (
    DEFAULT_DAEMON_JSON,
    RUNTIME_NAME,
    check_cmdline_conflicts,
    config_file_from_cmdline,
    ensure_daemon_config,
)
from meshcert.engine.host import Host, SystemHost
from meshcert.engine.probe import ProbeResult
from meshcert.engine.wrapper import WRAPPER_PATH, install_wrapper, render_wrapper, resolve_real_runc
from meshcert.errors import EngineError

#: Seconds to wait for dockerd to answer after a start, or to show the wrapper after SIGHUP.
#: A cold start (managed containerd, iptables setup) took ~3 s here on 2 busy cores; 60 s leaves
#: room for a slow CI disk without hiding a daemon that will never come up.
DOCKERD_READY_TIMEOUT = 60.0
#: Poll period while waiting: short against the ~3 s start, long enough not to load the daemon.
POLL_INTERVAL = 0.5
#: Where a dockerd we start logs (a fixed place, so error messages can point at it).
DOCKERD_LOG = Path("/var/log/meshcert-dockerd.log")
#: kind's documented minimums (kind "known issues": "Pod errors due to too many open files");
#: below them, kube-proxy and kubelet on three nodes sharing one kernel exhaust inotify.
INOTIFY_MINIMUMS: tuple[tuple[str, int], ...] = (
    ("fs.inotify.max_user_watches", 524288),
    ("fs.inotify.max_user_instances", 512),
)


@dataclass(frozen=True)
class EnginePaths:
    """Host files `engine up` manages; tests point them into a temporary directory."""

    #: None: the file the running dockerd was started with (--config-file), else the default.
    daemon_json: Path | None = None
    wrapper: Path = WRAPPER_PATH
    dockerd_log: Path = DOCKERD_LOG


@dataclass(frozen=True)
class EngineUpResult:
    """What `engine_up` found and did; ``actions`` is empty on a host that was already set up."""

    actions: tuple[str, ...]
    info: EngineInfo
    bounding_set: BoundingSet
    wrapper_active: bool
    probe: ProbeResult | None

    @property
    def changed(self) -> bool:
        return bool(self.actions)


@dataclass(frozen=True)
class EngineStatus:
    """A read-only view for `meshcert engine status`."""

    engine: EngineInfo | Unreachable
    bounding_set: BoundingSet
    wrapper: Path
    wrapper_active: bool
    #: Whether the installed wrapper matches this meshcert's script (None: cannot tell, no runc).
    wrapper_current: bool | None
    notes: tuple[str, ...] = field(default=())

    @property
    def ready(self) -> bool:
        return isinstance(self.engine, EngineInfo) and (self.bounding_set.complete or self.wrapper_active)


def uses_wrapper(info: EngineInfo, wrapper: Path) -> bool:
    """Whether dockerd's default runtime runs ``wrapper`` (whatever name it is registered under)."""
    return info.default_runtime_path == str(wrapper)


def _log_tail(log: Path) -> str:
    """The last non-empty line of dockerd's log (where it says why it exited), or a placeholder."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1].strip() if lines else "(empty)"


def _require_root(host: Host, step: str) -> None:
    if not host.is_root():
        raise EngineError(f"{step}: needs root; rerun `meshcert engine up` as root")


def wait_for_engine_reachable(host: Host, *, timeout: float, log: Path) -> EngineInfo:
    """Poll `docker info` until it answers; raise with the last error and the log's path."""
    deadline = host.monotonic() + timeout
    while True:
        info = host.engine_info()
        if isinstance(info, EngineInfo):
            return info
        if host.monotonic() >= deadline:
            raise EngineError(
                f"wait for dockerd: no answer after {timeout:.0f}s (last: {info.reason}); "
                f"its log {log} ends: {_log_tail(log)}"
            )
        host.sleep(POLL_INTERVAL)


def wait_for_default_runtime(host: Host, *, wrapper: Path, timeout: float, log: Path) -> EngineInfo:
    """Poll `docker info` until the default runtime is ``wrapper``; raise with what it shows."""
    deadline = host.monotonic() + timeout
    last = "no answer"
    while True:
        info = host.engine_info()
        if isinstance(info, EngineInfo):
            if uses_wrapper(info, wrapper):
                return info
            last = f"default runtime {info.default_runtime} -> {info.default_runtime_path}"
        else:
            last = info.reason
        if host.monotonic() >= deadline:
            raise EngineError(
                f"reload dockerd: after SIGHUP and {timeout:.0f}s it still shows {last}, not {wrapper}; "
                f"check its log ({log} if meshcert started it) for a daemon.json error, or restart dockerd"
            )
        host.sleep(POLL_INTERVAL)


def _missing_packages(host: Host, *, engine: EngineInfo | Unreachable, need_wrapper: bool) -> list[str]:
    missing = []
    if isinstance(engine, Unreachable) and host.which("dockerd") is None:
        missing.append("docker.io")
    if need_wrapper and host.which("jq") is None:
        missing.append("jq")
    return missing


def _config_file(host: Host, paths: EnginePaths, pid: int | None) -> Path:
    if paths.daemon_json is not None:
        return paths.daemon_json
    return config_file_from_cmdline(host.dockerd_cmdline(pid)) if pid is not None else DEFAULT_DAEMON_JSON


def _configure_wrapper(host: Host, paths: EnginePaths, caps: BoundingSet, actions: list[str]) -> Path:
    """Install the wrapper and point daemon.json at it; returns the config file used."""
    pid = host.dockerd_pid()
    if pid is not None:
        check_cmdline_conflicts(host.dockerd_cmdline(pid))
    config_file = _config_file(host, paths, pid)
    real_runc = resolve_real_runc(wrapper=paths.wrapper, which=host.which("runc"))
    if install_wrapper(real_runc=real_runc, path=paths.wrapper):
        actions.append(
            f"installed runc wrapper {paths.wrapper} (real runc {real_runc}; drops {', '.join(caps.absent)})"
        )
    change = ensure_daemon_config(config_file, wrapper=paths.wrapper)
    if change.changed:
        actions.append(
            f"set default-runtime {RUNTIME_NAME} in {config_file} (was {change.previous_default or 'runc'})"
        )
    return config_file


def _bring_daemon_up(
    host: Host, paths: EnginePaths, *, config_file: Path, timeout: float, say: Callable[[str], None]
) -> tuple[EngineInfo, str | None]:
    pid = host.dockerd_pid()
    if pid is not None:
        say(f"waiting for dockerd (pid {pid}) to answer")
        return wait_for_engine_reachable(host, timeout=timeout, log=paths.dockerd_log), None
    if host.which("dockerd") is None:
        raise EngineError("start dockerd: dockerd is not installed; apt-get install docker.io")
    _require_root(host, "start dockerd")
    say(f"starting dockerd (waiting up to {timeout:.0f}s for its socket)")
    host.start_dockerd(log=paths.dockerd_log, config_file=config_file)
    info = wait_for_engine_reachable(host, timeout=timeout, log=paths.dockerd_log)
    return info, f"started dockerd {info.server_version} (log: {paths.dockerd_log})"


def _reload_for_wrapper(
    host: Host, paths: EnginePaths, *, info: EngineInfo, timeout: float, say: Callable[[str], None]
) -> EngineInfo:
    pid = host.dockerd_pid()
    if pid is None:
        raise EngineError(
            f"reload dockerd: the engine answers but no dockerd process is visible here (remote "
            f"DOCKER_HOST?); make {paths.wrapper} its default runtime and restart it by hand"
        )
    _require_root(host, "reload dockerd")
    say(f"reloading dockerd (SIGHUP pid {pid}): default runtime {info.default_runtime} -> {RUNTIME_NAME}")
    host.reload_dockerd(pid)
    return wait_for_default_runtime(host, wrapper=paths.wrapper, timeout=timeout, log=paths.dockerd_log)


def engine_up(
    *,
    host: Host | None = None,
    paths: EnginePaths | None = None,
    on_step: Callable[[str], None] | None = None,
    verify: bool = True,
    timeout: float = DOCKERD_READY_TIMEOUT,
) -> EngineUpResult:
    """Make the Docker engine able to run kind's privileged nodes; a no-op when it already can.

    ``on_step`` receives a one-line message before each slow step (apt, dockerd start, reload,
    probe). Raises `EngineError` naming the step that failed and what to do.
    """
    host = host or SystemHost()
    paths = paths or EnginePaths()
    say = on_step or (lambda _message: None)
    actions: list[str] = []
    caps = host.bounding_set()
    need_wrapper = not caps.complete
    engine = host.engine_info()

    missing = _missing_packages(host, engine=engine, need_wrapper=need_wrapper)
    if missing:
        _require_root(host, f"apt-get install {' '.join(missing)}")
        say(f"installing {', '.join(missing)} with apt-get (a minute or two)")
        host.run("apt-get update", ["apt-get", "update", "-qq"])
        host.run(f"apt-get install {' '.join(missing)}", ["apt-get", "install", "-y", "-qq", *missing])
        actions.append(f"installed {' '.join(missing)} (apt-get)")
        engine = host.engine_info()  # docker.io's maintainer script may have started dockerd

    config_file = paths.daemon_json or DEFAULT_DAEMON_JSON
    if need_wrapper:
        config_file = _configure_wrapper(host, paths, caps, actions)

    if isinstance(engine, Unreachable):
        engine, started = _bring_daemon_up(host, paths, config_file=config_file, timeout=timeout, say=say)
        if started:
            actions.append(started)
    if need_wrapper and not uses_wrapper(engine, paths.wrapper):
        engine = _reload_for_wrapper(host, paths, info=engine, timeout=timeout, say=say)
        actions.append(f"reloaded dockerd (SIGHUP): default runtime is now {engine.default_runtime}")

    for name, minimum in INOTIFY_MINIMUMS:
        current = host.read_sysctl(name)
        if current < minimum:
            _require_root(host, f"raise {name}")
            host.run(f"raise {name}", ["sysctl", "-w", f"{name}={minimum}"])
            actions.append(f"raised {name} {current} -> {minimum}")

    probe = None
    if verify:
        say("verifying: privileged docker run + docker exec")
        probe = host.probe()
    return EngineUpResult(
        actions=tuple(actions),
        info=engine,
        bounding_set=caps,
        wrapper_active=uses_wrapper(engine, paths.wrapper),
        probe=probe,
    )


def engine_status(*, host: Host | None = None, paths: EnginePaths | None = None) -> EngineStatus:
    """What the engine looks like now, without changing anything."""
    host = host or SystemHost()
    paths = paths or EnginePaths()
    engine = host.engine_info()
    caps = host.bounding_set()
    active = isinstance(engine, EngineInfo) and uses_wrapper(engine, paths.wrapper)
    notes: list[str] = []
    current: bool | None
    try:
        real_runc = resolve_real_runc(wrapper=paths.wrapper, which=host.which("runc"))
        installed = read_text_or_none(paths.wrapper, step="engine status")
        current = installed == render_wrapper(real_runc=real_runc)
    except EngineError as e:
        current = None
        notes.append(str(e))
    if not caps.complete and not active:
        notes.append(
            f"CapBnd lacks {', '.join(caps.absent)}: run `meshcert engine up` to install the wrapper"
        )
    elif active and current is False:
        notes.append("the installed wrapper differs from this meshcert's: run `meshcert engine up`")
    return EngineStatus(
        engine=engine,
        bounding_set=caps,
        wrapper=paths.wrapper,
        wrapper_active=active,
        wrapper_current=current,
        notes=tuple(notes),
    )
