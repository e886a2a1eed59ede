"""Start and stop a local toxiproxy-server as a child process, recorded for `meshcert gc`.

Local (no-cluster) chaos tests and benchmarks need a real Toxiproxy between a client and a
server on loopback. The server binary is the pinned v2.12.0 built by `meshcert toolchain build
toxiproxy`. The child's pid goes into the run record (meshcert.runs) before anything relies on
it, so a harness killed with SIGKILL leaves nothing that gc cannot find.

Not here: Toxiproxy in a cluster (a pod behind a Service) — that is a deployment concern of the
kube layer; the client (toxiproxy.py) talks to either.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from meshcert.errors import FaultError, MeshcertError
from meshcert.faults.toxiproxy import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    ToxiproxyAPIError,
    ToxiproxyClient,
)
from meshcert.runs import RunStore
from meshcert.toolchain.gobuild import find_binary

BINARY = "toxiproxy-server"
#: The server binds its API and starts in ~10 ms; 10 s covers a 2-core box busy with Go builds.
DEFAULT_STARTUP_TIMEOUT = 10.0
#: Poll interval while waiting for GET /version: fine enough to add little to startup time.
_POLL_S = 0.05
#: SIGTERM makes the server shut its API down (bounded by its own 5 s wait_timeout in api.go).
_STOP_GRACE_S = 6.0
#: Picking a free port then handing it to the child races with other processes; retry a few times.
_PORT_ATTEMPTS = 3
#: Lines of the server log quoted when it fails to start.
_LOG_TAIL = 20


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the caller must tolerate a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-_LOG_TAIL:])
    except OSError:
        return "(no log)"


@dataclass
class ToxiproxyServer:
    """A running local toxiproxy-server; use as a context manager or call `stop`."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    store: RunStore
    run_id: str
    _stopped: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(
        self, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, read_timeout: float = DEFAULT_READ_TIMEOUT
    ) -> ToxiproxyClient:
        """A new client for this server."""
        return ToxiproxyClient(self.url, connect_timeout=connect_timeout, read_timeout=read_timeout)

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL if needed; then remove the pid from the run record. Idempotent."""
        if self._stopped:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.store.remove_process(self.run_id, self.process.pid)
        self._stopped = True

    def __enter__(self) -> ToxiproxyServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _bind_failed(log_path: Path) -> bool:
    # The server logs a failed Listen and keeps running (cmd/server waits for a signal), so a
    # lost port race shows up only in its log.
    try:
        return "address already in use" in log_path.read_text(errors="replace")
    except OSError:
        return False


def _wait_ready(server: ToxiproxyServer, *, deadline: float) -> str | None:
    """The server's version once GET /version answers; None if it exited or could not bind."""
    with server.client(connect_timeout=0.5, read_timeout=1.0) as client:
        while True:
            if server.process.poll() is not None or _bind_failed(server.log_path):
                return None
            try:
                return client.version()
            except ToxiproxyAPIError as e:
                if time.monotonic() >= deadline:
                    raise FaultError(
                        f"toxiproxy-server (pid {server.pid}) did not answer {server.url}/version in "
                        f"time: {e}; log {server.log_path}:\n{_tail(server.log_path)}"
                    ) from e
            time.sleep(_POLL_S)


def start_toxiproxy(
    *,
    run_id: str,
    state_dir: Path,
    cache_dir: Path | None = None,
    binary: Path | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    proxy_metrics: bool = False,
    runtime_metrics: bool = False,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
) -> ToxiproxyServer:
    """Start toxiproxy-server on ``host`` (a free port unless given) and wait until it answers.

    The binary is ``binary`` or the pinned build found in ``cache_dir``. Its log goes to
    ``<state_dir>/runs/<run_id>/toxiproxy-<port>.log``. Raises `FaultError` (with the log tail)
    if it exits or does not answer GET /version within ``startup_timeout`` seconds.
    """
    if binary is None:
        if cache_dir is None:
            raise FaultError("start_toxiproxy needs binary= or cache_dir= to find toxiproxy-server")
        try:
            binary = find_binary(cache_dir, BINARY)
        except MeshcertError as e:
            raise FaultError(f"{e}; build it with `meshcert toolchain build toxiproxy`") from e
    store = RunStore(state_dir)
    try:
        directory = store.directory(run_id)
    except ValueError as e:
        raise FaultError(f"refusing to keep a run record for {run_id!r}: not a meshcert run id") from e
    attempts = 1 if port is not None else _PORT_ATTEMPTS
    last = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_loopback_port(host)
        argv = [str(binary), "-host", host, "-port", str(chosen)]
        if proxy_metrics:
            argv.append("-proxy-metrics")
        if runtime_metrics:
            argv.append("-runtime-metrics")
        directory.mkdir(parents=True, exist_ok=True)
        log_path = directory / f"toxiproxy-{chosen}.log"
        with log_path.open("wb") as log:
            try:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as e:
                raise FaultError(f"cannot execute {binary}: {e}") from e
        store.add_process(run_id, proc.pid, BINARY, argv=argv)
        server = ToxiproxyServer(host, chosen, proc, log_path, store, run_id)
        try:
            if _wait_ready(server, deadline=time.monotonic() + startup_timeout) is not None:
                return server
        except BaseException:
            server.stop()
            raise
        server.stop()
        last = f"exit code {proc.returncode}; log {log_path}:\n{_tail(log_path)}"
    raise FaultError(f"toxiproxy-server on {host} failed to start after {attempts} attempt(s): {last}")
