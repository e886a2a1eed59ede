"""The one place meshcert talks to the Docker API through the `docker` SDK.

Everything above this layer sees `EngineInfo` (what `docker info` says that we care about) or
`EngineError`, never a `docker.errors` or `requests` exception: the SDK could be replaced by a
hand-written client over the socket without touching the callers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from meshcert.errors import EngineError

#: Seconds per API call. `docker info` answers in milliseconds; creating and starting a privileged
#: container on 2 busy cores took ~2 s here. 60 s only trips on a hung daemon.
API_TIMEOUT = 60.0
#: For reachability checks: a healthy daemon answers /_ping at once, so a short timeout keeps
#: `doctor` and the startup poll responsive while dockerd is still coming up.
PING_TIMEOUT = 5.0
#: What dockerd uses when daemon.json and flags set no default runtime.
DOCKERD_DEFAULT_RUNTIME = "runc"

#: Exceptions the SDK lets through for connection, protocol and server-side failures.
SDK_ERRORS: tuple[type[Exception], ...] = (docker.errors.DockerException, requests.RequestException)


@dataclass(frozen=True)
class EngineInfo:
    """The fields of `docker info` the engine layer decides on."""

    server_version: str
    default_runtime: str
    #: Runtime name → the binary dockerd runs for it.
    runtimes: Mapping[str, str]
    data_root: Path
    #: "1" or "2", as the daemon reports it.
    cgroup_version: str

    @property
    def default_runtime_path(self) -> str | None:
        return self.runtimes.get(self.default_runtime)


@dataclass(frozen=True)
class Unreachable:
    """The daemon did not answer; ``reason`` is the SDK's message, for the user."""

    reason: str


def info_from_api(raw: Mapping[str, Any]) -> EngineInfo:
    """Map the /info response to `EngineInfo` (pure; tolerant of fields older daemons omit)."""
    runtimes_raw = raw.get("Runtimes") or {}
    runtimes = {
        str(name): str(spec.get("path", ""))
        for name, spec in runtimes_raw.items()
        if isinstance(spec, Mapping)
    }
    return EngineInfo(
        server_version=str(raw.get("ServerVersion", "unknown")),
        default_runtime=str(raw.get("DefaultRuntime") or DOCKERD_DEFAULT_RUNTIME),
        runtimes=runtimes,
        data_root=Path(str(raw.get("DockerRootDir") or "/var/lib/docker")),
        cgroup_version=str(raw.get("CgroupVersion") or "1"),
    )


@contextmanager
def connect(*, step: str, timeout: float = API_TIMEOUT) -> Iterator[Any]:
    """A `docker.DockerClient` from the environment (DOCKER_HOST or the default socket), closed on exit.

    Typed ``Any`` because the SDK ships no type information.
    """
    try:
        client = docker.from_env(timeout=int(timeout))
    except SDK_ERRORS as e:
        raise EngineError(f"{step}: cannot reach the Docker engine ({e}); run `meshcert engine up`") from e
    try:
        yield client
    finally:
        client.close()


def read_engine_info(*, timeout: float = PING_TIMEOUT) -> EngineInfo | Unreachable:
    """`docker info`, or why the daemon could not be asked."""
    try:
        client = docker.from_env(timeout=int(timeout))
    except SDK_ERRORS as e:
        return Unreachable(str(e) or type(e).__name__)
    try:
        return info_from_api(client.info())
    except SDK_ERRORS as e:
        return Unreachable(str(e) or type(e).__name__)
    finally:
        client.close()
