"""Write container image archives directly: a layer tar, a config JSON and a manifest.

No builder, no base image and no registry are involved, which is what makes the air-gapped path
possible: the archive is in the `docker save` layout (manifest.json with RepoTags), which both
`docker load` and `ctr images import` accept. Layers are written reproducibly (mtime 0, root
owner, sorted entries), so the same inputs give the same digests and containerd stores a layer
shared by several images (e.g. the multi-call Kubernetes binary) once.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_CHUNK = 1 << 20  # 1 MiB reads: large binaries (150 MB) hash and copy without holding them in memory


@dataclass(frozen=True)
class Entry:
    """One path in a layer: a file from disk, inline bytes, a directory or a symlink."""

    path: str  # absolute path inside the image, e.g. "/usr/local/bin/etcd"
    source: Path | None = None
    data: bytes | None = None
    link: str | None = None
    mode: int = 0o755
    is_dir: bool = False


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    workdir: str = "/"
    user: str = ""
    stop_signal: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """A layer tar on disk with its uncompressed digest (the diff_id)."""

    path: Path
    diff_id: str


def _parents(paths: Iterable[str]) -> list[str]:
    dirs: set[str] = set()
    for p in paths:
        parts = p.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs)


def write_layer(entries: Iterable[Entry], dest: Path) -> Layer:
    """Write ``entries`` (plus their parent directories) as a reproducible tar at ``dest``."""
    items = sorted(entries, key=lambda e: e.path)
    declared_dirs = {e.path.strip("/") for e in items if e.is_dir}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in _parents(e.path for e in items):
            if d not in declared_dirs:
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
        for e in items:
            info = tarfile.TarInfo(e.path.strip("/"))
            info.mode = e.mode
            if e.is_dir:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, e.link
                tar.addfile(info)
            elif e.data is not None:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            elif e.source is not None:
                info.size = e.source.stat().st_size
                with e.source.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                raise ValueError(f"entry {e.path} has no content")
    return Layer(dest, "sha256:" + sha256_file(dest))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def config_json(layers: list[Layer], cfg: ImageConfig) -> bytes:
    """The image config (OCI/Docker v1 shape), deterministic for the same inputs."""
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": list(cfg.entrypoint) or None,
            "Cmd": list(cfg.cmd) or None,
            "Env": list(cfg.env),
            "WorkingDir": cfg.workdir,
            "User": cfg.user,
            "Labels": dict(cfg.labels) or None,
            **({"StopSignal": cfg.stop_signal} if cfg.stop_signal else {}),
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "meshcert"} for _ in layers],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def write_archive(dest: Path, *, tags: list[str], layers: list[Layer], cfg: ImageConfig) -> str:
    """Write a `docker save`-layout archive at ``dest``; returns the image id (config digest)."""
    config = config_json(layers, cfg)
    config_id = hashlib.sha256(config).hexdigest()
    manifest = [
        {
            "Config": f"{config_id}.json",
            "RepoTags": tags,
            "Layers": [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in layers],
        }
    ]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".partial") as tmp:
        tmp_path = Path(tmp.name)
    try:
        with tarfile.open(tmp_path, "w", format=tarfile.PAX_FORMAT) as tar:
            for layer in layers:
                tar.add(layer.path, arcname=f"{layer.diff_id.removeprefix('sha256:')}/layer.tar")
            _add_bytes(tar, f"{config_id}.json", config)
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        tmp_path.rename(dest)
    finally:
        tmp_path.unlink(missing_ok=True)
    return "sha256:" + config_id


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def read_archive_tags(archive: Path) -> list[str]:
    """The RepoTags an archive declares (used to verify what an import will create)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{archive}: no manifest.json")
        manifest = json.loads(member.read())
    return [t for entry in manifest for t in entry.get("RepoTags") or []]
