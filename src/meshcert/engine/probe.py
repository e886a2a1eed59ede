"""Prove the engine can do what kind does: run a privileged container and `docker exec` into it.

A `docker info` that looks right is not proof: on this kind of host both `docker run
--privileged` and `docker exec` fail with "unable to apply caps" unless the runc wrapper is in
place. So the check is behavioural. It needs an image, and there is no registry to pull one
from, so the probe image is assembled here: Debian's statically linked busybox in one layer,
written as a `docker load` archive (manifest.json + config + layer tar). The archive is
deterministic (fixed mtimes, fixed config), so rebuilding yields the same image id.

Not a general image builder: one binary, a few applet links, nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import platform
import secrets
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors

from meshcert.engine.client import SDK_ERRORS, connect
from meshcert.errors import EngineError
from meshcert.runid import MANAGED_LABEL

#: The probe image's name. No registry part: it only ever exists locally.
PROBE_IMAGE = "meshcert-probe:busybox"
#: Where Debian's busybox-static puts its binary (the plain `busybox` package uses the same path
#: for a dynamically linked one, which would not run in an image without libc: hence the check).
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
#: Applets the probe (and anyone debugging with the image) uses.
APPLETS = ("sh", "sleep", "cat", "grep", "ls", "id", "ps", "mount", "true", "echo")
#: The probe container's lifetime if our cleanup never runs (killed process): long enough for
#: run + exec on a loaded host (~2 s here), short enough not to linger.
PROBE_SLEEP_SECONDS = 300
_ELF_MAGIC = b"\x7fELF"
#: Program header type of the dynamic loader's path (elf.h); a static binary has none.
_PT_INTERP = 3
#: Size of an ELF64 file header; anything shorter cannot be an executable.
_ELF64_HEADER = 64
_DOCKER_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


@dataclass(frozen=True)
class ProbeResult:
    """A privileged container ran and accepted a privileged exec."""

    image: str
    #: CapEff of the exec'd process as the container saw it (hex from /proc/self/status).
    exec_cap_eff: str
    seconds: float


def is_static_elf(data: bytes) -> bool:
    """Whether ``data`` is an ELF executable without a program interpreter (statically linked)."""
    if len(data) < _ELF64_HEADER or not data.startswith(_ELF_MAGIC):
        return False
    # e_ident[EI_CLASS] 2 = 64-bit, e_ident[EI_DATA] 1 = little-endian; the offsets below are
    # e_phoff and e_phentsize/e_phnum in the 64- and 32-bit header layouts (elf.h).
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    for i in range(phnum):
        offset = phoff + i * phentsize
        if offset + 4 > len(data):
            return False
        (p_type,) = struct.unpack_from(endian + "I", data, offset)
        if p_type == _PT_INTERP:
            return False
    return True


def find_static_busybox(*, candidates: Sequence[Path] = BUSYBOX_CANDIDATES) -> Path | None:
    """The first statically linked busybox among ``candidates``."""
    for path in candidates:
        with contextlib.suppress(OSError):
            if is_static_elf(path.read_bytes()):
                return path
    return None


def fetch_busybox_static(workdir: Path) -> Path:
    """Download (not install) Debian's busybox-static and unpack its binary into ``workdir``.

    Installing it would replace the dynamically linked `busybox` package some hosts depend on.
    """
    step = "build probe image"
    try:
        subprocess.run(
            ["apt-get", "download", "busybox-static"], cwd=workdir, check=True, capture_output=True, text=True
        )
        debs = sorted(workdir.glob("busybox-static_*.deb"))
        if not debs:
            raise EngineError(f"{step}: apt-get download busybox-static produced no .deb; run apt-get update")
        subprocess.run(
            ["dpkg-deb", "-x", str(debs[0]), str(workdir / "root")],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise EngineError(
            f"{step}: cannot fetch busybox-static ({detail.strip()}); apt-get install busybox-static"
        ) from e
    found = find_static_busybox(candidates=[workdir / "root" / "bin" / "busybox"])
    if found is None:
        raise EngineError(f"{step}: busybox-static's binary is not a static ELF; check the Debian mirror")
    return found


def _tar_member(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0  # fixed, so the layer digest (and the image id) depends on content only
    if link:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
        tar.addfile(info)
    elif data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))


def _tar_bytes(members: Sequence[tuple[str, bytes | None, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, link in members:
            _tar_member(tar, name, data=data, link=link)
    return buf.getvalue()


def image_archive(busybox: bytes, *, tag: str = PROBE_IMAGE, applets: Sequence[str] = APPLETS) -> bytes:
    """A `docker load` archive of a one-layer image: /bin/busybox plus applet symlinks."""
    layer = _tar_bytes(
        [("bin", None, ""), ("bin/busybox", busybox, ""), ("tmp", None, "")]
        + [(f"bin/{a}", None, "busybox") for a in applets]
    )
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": _DOCKER_ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {MANAGED_LABEL: "true"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "meshcert probe image"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]
    return _tar_bytes(
        [
            ("layer", None, ""),
            ("layer/layer.tar", layer, ""),
            (config_name, config_bytes, ""),
            ("manifest.json", json.dumps(manifest).encode(), ""),
        ]
    )


def _image_present(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_probe_image(client: Any, *, tag: str = PROBE_IMAGE, busybox: Path | None = None) -> bool:
    """Load the probe image under ``tag`` unless an image by that name exists; returns whether it built.

    An existing image is accepted as is (whoever made it, it has a shell and sleep or the probe
    will say so); meshcert never pulls.
    """
    step = "build probe image"
    try:
        if _image_present(client, tag):
            return False
        with tempfile.TemporaryDirectory(prefix="meshcert-probe-") as tmp:
            source = busybox or find_static_busybox() or fetch_busybox_static(Path(tmp))
            archive = image_archive(source.read_bytes(), tag=tag)
            client.images.load(archive)
        if not _image_present(client, tag):
            raise EngineError(f"{step}: docker load succeeded but {tag} is not listed; check `docker images`")
    except SDK_ERRORS as e:
        raise EngineError(f"{step}: loading {tag} failed ({e}); check dockerd's log") from e
    except OSError as e:
        raise EngineError(f"{step}: cannot read busybox ({e}); apt-get install busybox-static") from e
    return True


def run_privileged_probe(client: Any, *, image: str = PROBE_IMAGE) -> ProbeResult:
    """Start a privileged container, exec into it privileged (as kind does), remove it."""
    start = time.monotonic()
    name = f"meshcert-probe-{secrets.token_hex(4)}"  # 8 hex digits: concurrent probes never collide
    try:
        container = client.containers.run(
            image,
            ["sleep", str(PROBE_SLEEP_SECONDS)],
            name=name,
            detach=True,
            privileged=True,
            network_mode="none",  # no iptables rules or veths: the probe is about capabilities
            labels={MANAGED_LABEL: "true"},
        )
    except SDK_ERRORS as e:
        raise EngineError(
            f"probe: `docker run --privileged` failed ({e}); run `meshcert engine up` (runc wrapper)"
        ) from e
    failed = True
    try:
        code, output = container.exec_run(["grep", "^CapEff:", "/proc/self/status"], privileged=True)
        text = (output or b"").decode(errors="replace").strip()
        if code != 0:
            raise EngineError(
                f"probe: `docker exec --privileged` exited {code} ({text}); run `meshcert engine up`"
            )
        failed = False
    except SDK_ERRORS as e:
        raise EngineError(
            f"probe: `docker exec --privileged` into {name} failed ({e}); run `meshcert engine up`"
        ) from e
    finally:
        try:
            container.remove(force=True)
        except SDK_ERRORS as e:
            if not failed:
                raise EngineError(
                    f"probe: cannot remove container {name} ({e}); `docker rm -f {name}`"
                ) from e
    return ProbeResult(
        image=image, exec_cap_eff=text.split(":", 1)[-1].strip(), seconds=time.monotonic() - start
    )


def verify_privileged(*, image: str = PROBE_IMAGE) -> ProbeResult:
    """Ensure the probe image exists, then run the privileged run + exec probe."""
    with connect(step="probe") as client:
        ensure_probe_image(client, tag=image)
        return run_privileged_probe(client, image=image)
