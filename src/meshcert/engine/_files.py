"""Atomic file replacement for the host files `engine up` owns (daemon.json, the runc wrapper).

dockerd reads daemon.json on SIGHUP and execs the wrapper for every container operation, so
either may be read at any moment: a half-written file would break a running engine. Writing a
sibling temporary file and renaming it over the target makes each reader see old or new, never
a mix.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from meshcert.errors import EngineError


def atomic_write(path: Path, data: bytes, *, mode: int, step: str) -> None:
    """Replace ``path`` with ``data`` (file mode ``mode``); parents are created as needed."""
    tmp = path.with_name(f".{path.name}.meshcert-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.chmod(mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise EngineError(f"{step}: cannot write {path}: {e}; run `meshcert engine up` as root") from e


def read_text_or_none(path: Path, *, step: str) -> str | None:
    """The text of ``path``, or None when it does not exist."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise EngineError(f"{step}: cannot read {path}: {e}; check its permissions") from e
