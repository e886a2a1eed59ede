"""Compile the pinned Go components and the C pause binary into the cache.

`go install module@version` does not work for Kubernetes or etcd (their go.mod files carry
replace directives), so each component has a small wrapper module in toolchain/<name>/ that
requires the pinned version; its go.sum makes the download verifiable. Builds use CGO_ENABLED=0
so the binaries run in any rootfs (the node images have no Go and may lack a matching libc).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meshcert.errors import ToolchainError
from meshcert.toolchain.paths import digest, project_root, tree_digest
from meshcert.toolchain.pins import GO_COMPONENTS, PAUSE_VERSION, GoComponent

_STAMP = ".complete"


@dataclass(frozen=True)
class BuildResult:
    name: str
    version: str
    directory: Path
    cached: bool
    seconds: float


def go_version() -> str:
    try:
        out = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise ToolchainError("go", f"Go is not usable: {e}") from e
    return out.stdout.strip()


def component_dir(cache_dir: Path, comp: GoComponent, root: Path, gover: str) -> Path:
    key = digest(tree_digest(root / comp.source_dir), gover, *comp.ldflags)
    return cache_dir / "bin" / f"{comp.name}-{comp.version}-{key}"


@contextmanager
def locked(cache_dir: Path, name: str) -> Iterator[None]:
    """Serialise builds of one component across processes (two test sessions may build at once)."""
    lock = cache_dir / "locks" / f"{name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(step: str, argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ToolchainError(step, f"exit {proc.returncode}: {tail[0]} (full log: {log})")


def build_go_component(
    comp: GoComponent, *, cache_dir: Path, root: Path | None = None, gover: str | None = None
) -> BuildResult:
    """Build ``comp`` unless its keyed cache directory is already complete."""
    root = root or project_root()
    gover = gover or go_version()
    out = component_dir(cache_dir, comp, root, gover)
    if (out / _STAMP).is_file():
        return BuildResult(comp.name, comp.version, out, True, 0.0)
    with locked(cache_dir, comp.name):
        return _build_go_locked(comp, cache_dir=cache_dir, root=root, out=out)


def _build_go_locked(comp: GoComponent, *, cache_dir: Path, root: Path, out: Path) -> BuildResult:
    start = time.monotonic()
    if (out / _STAMP).is_file():  # built by another process while we waited for the lock
        return BuildResult(comp.name, comp.version, out, True, 0.0)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log = cache_dir / "logs" / f"{comp.name}-{comp.version}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    ldflags = " ".join(("-s", "-w", *comp.ldflags))
    for binary, pkg in comp.binaries:
        argv = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp / binary), pkg]
        _run(f"build {comp.name} {binary}", argv, cwd=root / comp.source_dir, env=env, log=log)
    first = comp.binaries[0][0]
    for alias in comp.aliases:
        (tmp / alias).symlink_to(first)
    (tmp / _STAMP).write_text(comp.version + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return BuildResult(comp.name, comp.version, out, False, time.monotonic() - start)


def build_pause(*, cache_dir: Path, root: Path | None = None) -> BuildResult:
    """The pod sandbox binary, statically linked so the image needs no libc."""
    root = root or project_root()
    src = root / "images" / "pause" / "pause.c"
    out = cache_dir / "bin" / f"pause-{PAUSE_VERSION}-{digest(src.read_bytes())}"
    start = time.monotonic()
    if (out / _STAMP).is_file():
        return BuildResult("pause", PAUSE_VERSION, out, True, 0.0)
    out.mkdir(parents=True, exist_ok=True)
    log = cache_dir / "logs" / "pause.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        "gcc",
        "-static",
        "-O2",
        f'-DMESHCERT_PAUSE_VERSION="{PAUSE_VERSION}"',
        "-o",
        str(out / "pause"),
        str(src),
    ]
    _run("build pause", argv, cwd=root, env=dict(os.environ), log=log)
    (out / _STAMP).write_text(PAUSE_VERSION + "\n")
    return BuildResult("pause", PAUSE_VERSION, out, False, time.monotonic() - start)


def build_all(
    *,
    cache_dir: Path,
    only: set[str] | None = None,
    on_start: Callable[[str, str], None] | None = None,
    on_done: Callable[[BuildResult], None] | None = None,
) -> dict[str, BuildResult]:
    """Build every pinned component (or those in ``only``); a no-op when all are cached."""
    root = project_root()
    gover = go_version()
    known = {c.name for c in GO_COMPONENTS} | {"pause"}
    unknown = (only or set()) - known
    if unknown:
        raise ToolchainError("select", f"unknown component(s) {sorted(unknown)}; known: {sorted(known)}")
    results: dict[str, BuildResult] = {}
    for comp in GO_COMPONENTS:
        if only and comp.name not in only:
            continue
        if on_start:
            on_start(comp.name, comp.version)
        results[comp.name] = build_go_component(comp, cache_dir=cache_dir, root=root, gover=gover)
        if on_done:
            on_done(results[comp.name])
    if not only or "pause" in only:
        if on_start:
            on_start("pause", PAUSE_VERSION)
        results["pause"] = build_pause(cache_dir=cache_dir, root=root)
        if on_done:
            on_done(results["pause"])
    return results


def find_binary(cache_dir: Path, name: str) -> Path:
    """Path of a built binary (e.g. ``kubeadm``, ``etcd``); raises if the toolchain is not built."""
    root = project_root()
    gover = go_version()
    for comp in GO_COMPONENTS:
        names = {b for b, _ in comp.binaries} | set(comp.aliases)
        if name in names:
            path = component_dir(cache_dir, comp, root, gover) / name
            if path.exists():
                return path
            raise ToolchainError("locate", f"{name} is not built yet: run `meshcert toolchain build`")
    if name == "pause":
        return build_pause(cache_dir=cache_dir, root=root).directory / "pause"
    raise ToolchainError("locate", f"no pinned component provides {name!r}")
