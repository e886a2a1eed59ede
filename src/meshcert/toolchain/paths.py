"""Where the project's build recipes live and where their outputs are cached.

Build outputs are keyed by a hash of everything that decides them (the wrapper module's files, the
Go version, the flags), so a second build is a lookup and a changed pin is a rebuild, never a
stale binary.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from meshcert.errors import ToolchainError

_MARKER = Path("toolchain") / "kubernetes" / "go.mod"


def project_root(start: Path | None = None) -> Path:
    """The checkout holding toolchain/ and images/ (searched upward from cwd, then this file)."""
    candidates = [start or Path.cwd(), Path(__file__).resolve()]
    for base in candidates:
        for d in [base, *base.parents]:
            if (d / _MARKER).is_file():
                return d
    raise ToolchainError("locate", f"no {_MARKER} above {candidates[0]}: run meshcert from its checkout")


def digest(*parts: bytes | str, length: int = 12) -> str:
    """A short content hash used as a cache key (12 hex digits: collisions are not a concern)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:length]


def tree_digest(directory: Path) -> str:
    """Hash of every regular file below ``directory`` (names and contents, sorted)."""
    parts: list[bytes | str] = []
    for f in sorted(p for p in directory.rglob("*") if p.is_file()):
        parts += [str(f.relative_to(directory)), f.read_bytes()]
    return digest(*parts)
