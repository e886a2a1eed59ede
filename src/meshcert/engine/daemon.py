"""dockerd's configuration file: make the runc wrapper its default runtime, keep everything else.

daemon.json is the host's file, not ours: an operator may have set a data root, log driver,
mirrors or other runtimes there. So the merge is a pure function that adds exactly two things
(our entry under ``runtimes`` and ``default-runtime``) and leaves every other key as it was, and
the file is only rewritten when the parsed content would change (running `engine up` twice
never touches it the second time, and the operator's formatting survives a no-op).

The document is held as ``dict[str, object]`` rather than a typed model on purpose: its schema
belongs to dockerd and grows with each release, and unknown keys must round-trip unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshcert.engine._files import atomic_write, read_text_or_none
from meshcert.errors import EngineError

#: Where dockerd reads its configuration unless started with --config-file.
DEFAULT_DAEMON_JSON = Path("/etc/docker/daemon.json")
#: The name our wrapper is registered under in ``runtimes`` (what `docker info` shows).
RUNTIME_NAME = "meshcert-runc"
_STEP = "configure dockerd"


@dataclass(frozen=True)
class DaemonConfigChange:
    """What `ensure_daemon_config` did to the file."""

    path: Path
    changed: bool
    #: The ``default-runtime`` before the change (None when unset, i.e. dockerd's "runc").
    previous_default: str | None


def parse_daemon_config(text: str | None, *, source: Path) -> dict[str, object]:
    """Parse daemon.json text; a missing or blank file is an empty configuration."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise EngineError(
            f"{_STEP}: {source} is not valid JSON ({e}); fix it by hand, then rerun `meshcert engine up`"
        ) from e
    if not isinstance(data, dict):
        raise EngineError(f"{_STEP}: {source} must hold a JSON object; fix it by hand, then rerun")
    return {str(k): v for k, v in data.items()}


def merge_daemon_config(
    existing: Mapping[str, object], *, wrapper: Path, runtime_name: str = RUNTIME_NAME
) -> dict[str, object]:
    """A copy of ``existing`` whose default runtime is the wrapper; other keys are untouched.

    Our own ``runtimes`` entry is replaced whole (it is ours: runtimeArgs there would be passed
    to runc behind the wrapper's back); other runtimes are kept.
    """
    runtimes = existing.get("runtimes", {})
    if not isinstance(runtimes, Mapping):
        raise EngineError(f"{_STEP}: daemon.json 'runtimes' must be an object; fix it by hand, then rerun")
    merged = dict(existing)
    merged["runtimes"] = {**{str(k): v for k, v in runtimes.items()}, runtime_name: {"path": str(wrapper)}}
    merged["default-runtime"] = runtime_name
    return merged


def render_daemon_config(config: Mapping[str, object]) -> str:
    """Serialise with two-space indents (dockerd's documentation style) and a final newline."""
    return json.dumps(config, indent=2) + "\n"


def ensure_daemon_config(
    path: Path, *, wrapper: Path, runtime_name: str = RUNTIME_NAME
) -> DaemonConfigChange:
    """Merge the wrapper runtime into ``path``; rewrite it only when the content changes."""
    existing = parse_daemon_config(read_text_or_none(path, step=_STEP), source=path)
    merged = merge_daemon_config(existing, wrapper=wrapper, runtime_name=runtime_name)
    previous = existing.get("default-runtime")
    previous_default = previous if isinstance(previous, str) else None
    if merged == existing:
        return DaemonConfigChange(path=path, changed=False, previous_default=previous_default)
    # 0644 as dpkg ships /etc/docker files: root writes, anyone may read the daemon's settings.
    atomic_write(path, render_daemon_config(merged).encode(), mode=0o644, step=_STEP)
    return DaemonConfigChange(path=path, changed=True, previous_default=previous_default)


def config_file_from_cmdline(argv: Sequence[str]) -> Path:
    """The configuration file a running dockerd reads, from its command line."""
    for i, arg in enumerate(argv):
        if arg == "--config-file" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config-file="):
            return Path(arg.split("=", 1)[1])
    return DEFAULT_DAEMON_JSON


def check_cmdline_conflicts(argv: Sequence[str]) -> None:
    """dockerd refuses a directive given both as a flag and in daemon.json; catch that up front."""
    for arg in argv:
        if arg == "--default-runtime" or arg.startswith("--default-runtime="):
            raise EngineError(
                f"{_STEP}: dockerd runs with {arg.split('=')[0]} on its command line, which conflicts "
                "with default-runtime in daemon.json; restart dockerd without that flag, then rerun"
            )
