"""Install runc-wrapper.sh (package data) on the host with the real runc's path filled in.

The script itself explains what it does (it strips capabilities absent from CapBnd before runc
sees them). This module only renders and places it: the real runc must be a fixed absolute path
baked in at install time, because dockerd runs the wrapper with its own PATH, and because a
wrapper that finds itself as "runc" would exec itself forever.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from meshcert.engine._files import atomic_write, read_text_or_none
from meshcert.errors import EngineError

#: Where the wrapper is installed: outside dpkg's trees (an upgrade of runc or docker.io must not
#: overwrite it) and on no PATH (nothing but dockerd should run it).
WRAPPER_PATH = Path("/usr/local/libexec/meshcert/runc-wrapper")
#: Debian's runc package installs here; used when `runc` is not on PATH.
DEBIAN_RUNC = Path("/usr/sbin/runc")
_PLACEHOLDER = "@REAL_RUNC@"
_STEP = "install runc wrapper"


def wrapper_template() -> str:
    """The script as shipped in the package, with its ``@REAL_RUNC@`` placeholder."""
    try:
        return resources.files("meshcert.engine").joinpath("runc-wrapper.sh").read_text()
    except OSError as e:
        raise EngineError(
            f"{_STEP}: runc-wrapper.sh is missing from the package ({e}); reinstall meshcert"
        ) from e


def render_wrapper(*, real_runc: Path) -> str:
    """The wrapper text with ``real_runc`` substituted (an absolute path)."""
    if not real_runc.is_absolute():
        raise EngineError(f"{_STEP}: real runc path {real_runc} is not absolute; pass an absolute path")
    template = wrapper_template()
    if _PLACEHOLDER not in template:
        raise EngineError(f"{_STEP}: runc-wrapper.sh lacks {_PLACEHOLDER}; reinstall meshcert")
    return template.replace(_PLACEHOLDER, str(real_runc))


def resolve_real_runc(*, wrapper: Path = WRAPPER_PATH, which: str | None = None) -> Path:
    """The runc binary the wrapper should exec: `runc` on PATH, else Debian's path; never the wrapper.

    ``which`` is the result of ``shutil.which("runc")`` (a parameter so tests can steer it).
    """
    found = shutil.which("runc") if which is None else which
    candidates = [Path(found)] if found else []
    candidates.append(DEBIAN_RUNC)
    wrapper_real = os.path.realpath(wrapper)
    for candidate in candidates:
        if os.path.realpath(candidate) == wrapper_real:
            continue
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
    raise EngineError(
        f"{_STEP}: no runc binary found (looked at PATH and {DEBIAN_RUNC}); apt-get install runc"
    )


def install_wrapper(*, real_runc: Path, path: Path = WRAPPER_PATH) -> bool:
    """Write the rendered wrapper to ``path`` (mode 0755) unless it is already current.

    Returns whether the file changed.
    """
    text = render_wrapper(real_runc=real_runc)
    current = read_text_or_none(path, step=_STEP)
    if current == text and os.access(path, os.X_OK):
        return False
    # 0755: dockerd (root) executes it; others may read it to see what it does.
    atomic_write(path, text.encode(), mode=0o755, step=_STEP)
    return True
