"""The Locust image for in-cluster load (load/incluster.py), written offline as an image archive.

Why it exists: distributed Locust "as pods" needs an image holding Python, Locust and the one
entry point the local runner already uses (``python -m meshcert.load._child``). Locust's own
image is built FROM a pulled Python image; here nothing is pulled. Three layers, each cached on
what decides it, so a change to our sources is a cheap rebuild:

1. **base**: a debootstrapped bookworm minbase with Debian's python3 (3.11, the version our
   package targets) — keyed by recipe, packages and mirror;
2. **site**: Locust and its dependencies as binary wheels, installed by the host's pip into a
   directory (``--target``) for CPython 3.11 on glibc ≤ 2.36 (bookworm's), byte-compiled with
   unchecked-hash pycs (layers carry mtime 0, so timestamp pycs would never validate) — keyed by
   the Locust version the harness runs (the venv's) and the recipe;
3. **meshcert**: the modules the child imports (`CHILD_SOURCES`) — keyed by their content.

What it is not: it loads nothing anywhere; `load_into_kind` is the explicit step that copies the
archive into a kind cluster's nodes (as the mesh images are loaded), the images never being
pulled (imagePullPolicy Never).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meshcert.errors import ToolchainError
from meshcert.runid import MANAGED_LABEL
from meshcert.toolchain import oci, rootfs
from meshcert.toolchain.docker_cli import docker, exec_in
from meshcert.toolchain.gobuild import find_binary, locked
from meshcert.toolchain.paths import digest

#: Bump when the recipe below changes so cached layers and archives are rebuilt.
RECIPE = "1"
REPO = "meshcert/locust"
#: Debian packages beyond minbase: python3 (bookworm: 3.11.2, same minor as the harness, so the
#: same wheels and pycs apply); ca-certificates for https targets.
PACKAGES = ("python3", "ca-certificates")
PYTHON_VERSION = "3.11"
#: bookworm's glibc is 2.36: every manylinux tag up to it runs there. pip does not expand a
#: manylinux platform to older ones by itself, so each is named (plus the legacy aliases).
GLIBC_MINOR = 36
SITE_DIR = "/opt/locust/site"
SRC_DIR = "/opt/meshcert"
#: Files of src/meshcert the child process imports (meshcert.load._child and what it imports,
#: transitively); a unit test imports the child and fails if it loads a module not listed here.
CHILD_SOURCES = (
    "__init__.py",
    "errors.py",
    "load/__init__.py",
    "load/_child.py",
    "load/_engine.py",
    "load/arrival.py",
    "load/histogram.py",
    "load/recorder.py",
    "load/spec.py",
)
#: One `kind load image-archive` of ~100 MB copies and imports in ~10-30 s; 300 s covers a
#: loaded host (same bound as the mesh images).
LOAD_TIMEOUT = 300.0
#: The label kind puts on its node containers (value: the cluster name).
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LocustImage:
    ref: str
    archive: Path
    locust_version: str
    #: What this call had to build ("base", "site", "meshcert", "archive"); empty when cached.
    built: tuple[str, ...]
    seconds: float

    @property
    def size(self) -> int:
        return self.archive.stat().st_size


def locust_version() -> str:
    """The Locust version the harness itself runs (the pods run the same release)."""
    try:
        return importlib.metadata.version("locust")
    except importlib.metadata.PackageNotFoundError as e:
        raise ToolchainError("locust image", "locust is not installed in this environment") from e


def platforms() -> list[str]:
    """pip ``--platform`` values for CPython wheels that run on bookworm (glibc 2.36)."""
    tags = [f"manylinux_2_{m}_x86_64" for m in range(5, GLIBC_MINOR + 1)]
    return [*tags, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]


def pip_argv(version: str, target: Path, *, python: str = sys.executable) -> list[str]:
    argv = [python, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target),
            "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION,
            "--abi", f"cp{PYTHON_VERSION.replace('.', '')}"]  # fmt: skip
    for p in platforms():
        argv += ["--platform", p]
    return [*argv, f"locust=={version}"]


def package_root() -> Path:
    """src/meshcert of this installation (an editable install points at the checkout)."""
    return Path(__file__).resolve().parents[1]


def source_entries(root: Path | None = None) -> list[oci.Entry]:
    base = root or package_root()
    missing = [rel for rel in CHILD_SOURCES if not (base / rel).is_file()]
    if missing:
        raise ToolchainError("locust image", f"meshcert sources missing under {base}: {missing}")
    return [oci.Entry(f"{SRC_DIR}/meshcert/{rel}", source=base / rel, mode=0o644) for rel in CHILD_SOURCES]


def sources_digest(root: Path | None = None) -> str:
    entries = source_entries(root)
    return digest(*(part for e in entries if e.source for part in (e.path, e.source.read_bytes())))


def image_config(version: str) -> oci.ImageConfig:
    env = (
        *oci.ImageConfig().env,
        f"PYTHONPATH={SRC_DIR}:{SITE_DIR}",
        "PYTHONUNBUFFERED=1",  # log lines reach `kubectl logs` at once
        "PYTHONDONTWRITEBYTECODE=1",  # the layers' pycs are used; nothing to write at runtime
    )
    return oci.ImageConfig(
        entrypoint=("python3", "-m", "meshcert.load._child"),
        env=env,
        # The pods run as nobody: Locust needs no privilege.
        user="65534:65534",
        labels={MANAGED_LABEL: "true", "meshcert.io/locust-version": version},
    )


def _run(
    step: str, argv: list[str], *, log: Path, env: dict[str, str] | None = None, check: bool = True
) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
        except OSError as e:
            raise ToolchainError(step, f"cannot run {argv[0]}: {e}") from e
    if check and proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ToolchainError(step, f"exit {proc.returncode}: {tail[0]} (log: {log})")


def _base_layer(cache: Path, *, mirror: str, log: Path, progress: Progress) -> tuple[oci.Layer, bool]:
    key = digest(RECIPE, rootfs.SUITE, ",".join(PACKAGES), mirror)
    work = cache / "locust-rootfs" / key
    tar = work / "rootfs.tar"
    memo = work / "rootfs.sha256"
    if tar.is_file() and memo.is_file():
        return oci.Layer(tar, memo.read_text().strip()), False
    progress("locust base: debootstrap bookworm minbase + python3 (2-6 min cold on a shared host)")
    root = work / "rootfs"
    shutil.rmtree(root, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    _run(
        "debootstrap locust rootfs",
        ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", rootfs.SUITE,
         str(root), mirror],
        log=log,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )  # fmt: skip
    for sub in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(root / sub, ignore_errors=True)
    partial = tar.with_suffix(".partial")
    rootfs.tar_rootfs(root, partial, log=log)
    partial.rename(tar)
    shutil.rmtree(root)
    memo.write_text("sha256:" + oci.sha256_file(tar) + "\n")
    return oci.Layer(tar, memo.read_text().strip()), True


def _site_layer(cache: Path, *, version: str, log: Path, progress: Progress) -> tuple[oci.Layer, bool]:
    key = digest(RECIPE, version, PYTHON_VERSION, str(GLIBC_MINOR))
    work = cache / "locust-site" / key
    tar = work / "site.tar"
    memo = work / "site.sha256"
    if tar.is_file() and memo.is_file():
        return oci.Layer(tar, memo.read_text().strip()), False
    progress(f"locust site-packages: pip install locust=={version} (binary wheels, cp311, glibc<=2.36)")
    target = work / "site"
    shutil.rmtree(target, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    _run("pip install locust for the image", pip_argv(version, target), log=log)
    _run(
        "byte-compile locust site-packages",
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
         "-d", SITE_DIR, str(target)],
        log=log,
        # A wheel may ship files that do not compile on 3.11 (py2 leftovers, templates named
        # .py): those stay uncompiled and import as before; the log lists them.
        check=False,
    )  # fmt: skip
    entries = [
        oci.Entry(f"{SITE_DIR}/{p.relative_to(target)}", source=p, mode=p.stat().st_mode & 0o777)
        for p in sorted(target.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]
    layer = oci.write_layer(entries, tar.with_suffix(".partial"))
    layer.path.rename(tar)
    shutil.rmtree(target)
    memo.write_text(layer.diff_id + "\n")
    return oci.Layer(tar, layer.diff_id), True


def build_locust_image(
    *, cache_dir: Path, debian_mirror: str | None = None, progress: Progress = lambda _: None
) -> LocustImage:
    """Build (or find) the archive; a lookup of three cache keys when nothing changed."""
    with locked(cache_dir, "locust-image"):
        return _build(cache_dir=cache_dir, debian_mirror=debian_mirror, progress=progress)


def _build(*, cache_dir: Path, debian_mirror: str | None, progress: Progress) -> LocustImage:
    start = time.monotonic()
    version = locust_version()
    log = cache_dir / "logs" / "locust-image.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    src_key = sources_digest()
    mirror = rootfs.debian_mirror(debian_mirror)
    base, base_built = _base_layer(cache_dir, mirror=mirror, log=log, progress=progress)
    site, site_built = _site_layer(cache_dir, version=version, log=log, progress=progress)
    key = digest(RECIPE, base.diff_id, site.diff_id, src_key)
    ref = f"{REPO}:{version}-{key}"
    out = cache_dir / "images" / f"locust-{key}"
    archive = out / "locust.tar"
    built = [n for n, b in (("base", base_built), ("site", site_built)) if b]
    if not archive.is_file():
        progress(f"locust image {ref}: meshcert layer + archive")
        src = oci.write_layer(source_entries(), out / "meshcert.tar")
        oci.write_archive(archive, tags=[ref], layers=[base, site, src], cfg=image_config(version))
        src.path.unlink()
        built += ["meshcert", "archive"]
        _prune(cache_dir, keep=out)
    else:
        progress(f"locust image {ref}: cached")
    (cache_dir / "images" / "locust-image").write_text(f"{ref}\n{archive}\n")
    return LocustImage(ref, archive, version, tuple(built), time.monotonic() - start)


def _prune(cache_dir: Path, *, keep: Path) -> None:
    """Superseded archives (~100 MB each) go; the cached base and site layers stay."""
    for old in (cache_dir / "images").glob("locust-*"):
        if old.is_dir() and old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _nodes_missing(ref: str, cluster: str) -> list[str]:
    """Node containers of kind cluster ``cluster`` whose containerd lacks ``ref``."""
    nodes = docker(
        "list kind nodes", "ps", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster}", "--format", "{{.Names}}"
    ).split()
    if not nodes:
        raise ToolchainError(
            "kind load locust image", f"no running node containers of kind cluster {cluster!r}"
        )
    have = {
        n: exec_in("list node images", n, "ctr", "-n", "k8s.io", "images", "list", "-q").split()
        for n in nodes
    }
    # containerd stores the name fully qualified (a default registry host prefixed): match the tail.
    return sorted(n for n in nodes if not any(r == ref or r.endswith(f"/{ref}") for r in have[n]))


def load_into_kind(
    image: LocustImage, *, cache_dir: Path, cluster: str, timeout: float = LOAD_TIMEOUT
) -> float:
    """`kind load image-archive` into the nodes of kind cluster ``cluster`` that lack the image
    (a no-op when all have it: the tag carries the content key); returns seconds taken."""
    start = time.monotonic()
    missing = _nodes_missing(image.ref, cluster)
    if not missing:
        return 0.0
    kind = str(find_binary(cache_dir, "kind"))
    argv = [
        kind,
        "load",
        "image-archive",
        str(image.archive),
        "--name",
        cluster,
        "--nodes",
        ",".join(missing),
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError("kind load locust image", str(e)) from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ToolchainError("kind load locust image", f"exit {proc.returncode}: {tail}")
    return time.monotonic() - start
