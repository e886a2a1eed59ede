"""`meshcert images build`: component image archives, the kind node image and the test app.

Every image is written locally (see oci.py) from binaries the toolchain built; nothing is
pulled. The node image is assembled the way kind's own `build node-image` does it (run the base
with `sleep`, copy the Kubernetes binaries in, import the component images into the node's
containerd, `docker commit`), because that command itself fetches images from a registry.
The tags of the component images are whatever the built kubeadm prints for
`kubeadm config images list`, so kubeadm finds them and never tries to pull.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meshcert.errors import ToolchainError
from meshcert.runid import MANAGED_LABEL
from meshcert.toolchain import oci, rootfs
from meshcert.toolchain.docker_cli import docker, exec_in, image_exists
from meshcert.toolchain.gobuild import find_binary, locked
from meshcert.toolchain.paths import digest
from meshcert.toolchain.pins import KUBERNETES_VERSION, TESTAPP_VERSION, TOXIPROXY_VERSION

#: Bump when the image recipes below change, so cached archives and node images are rebuilt.
RECIPE = "2"
TESTAPP_IMAGE = f"meshcert/testapp:{TESTAPP_VERSION}"
TOXIPROXY_IMAGE = f"meshcert/toxiproxy:{TOXIPROXY_VERSION}"
NODE_REPO = "meshcert/node"
BASE_REPO = "meshcert/kind-base"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImages:
    node_image: str
    testapp_image: str
    archives: dict[str, Path]
    seconds: float


def kubeadm_image_list(kubeadm: Path) -> list[str]:
    """The exact image references kubeadm will ask the node's containerd for."""
    proc = subprocess.run(
        [str(kubeadm), "config", "images", "list", "--kubernetes-version", KUBERNETES_VERSION],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ToolchainError("kubeadm config images list", proc.stderr.strip()[:300])
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def image_name(ref: str) -> str:
    """Last path segment without tag: '.../coredns/coredns:v1.12.1' -> 'coredns'."""
    return ref.rsplit("/", 1)[-1].split(":", 1)[0]


_SANDBOX = re.compile(r'sandbox_image\s*=\s*"([^"]+)"')


def _base_image(settings_cache: Path, *, mirror: str, progress: Progress) -> tuple[str, Path]:
    """Build (or reuse) the node base image; returns (image ref, rootfs tar)."""
    key = rootfs.base_key(mirror)
    ref = f"{BASE_REPO}:bookworm-{key}"
    work = settings_cache / "rootfs" / key
    tar = work / "rootfs.tar"
    if image_exists(ref) and tar.is_file():
        progress(f"node base {ref}: cached")
        return ref, tar
    log = settings_cache / "logs" / f"rootfs-{key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    progress("node base: debootstrap bookworm (2-4 min cold)")
    root = rootfs.build_rootfs(work, mirror=mirror, log=log)
    progress("node base: tar + docker load")
    rootfs.tar_rootfs(root, tar, log=log)
    # Written as an image archive rather than `docker import`ed: import cannot set STOPSIGNAL,
    # and systemd as PID 1 needs SIGRTMIN+3 to shut down cleanly on `docker stop`.
    archive = work / "base-image.tar"
    cfg = oci.ImageConfig(
        entrypoint=("/usr/local/bin/entrypoint", "/sbin/init"),
        env=(oci.ImageConfig().env[0], "container=docker"),
        stop_signal="SIGRTMIN+3",
        labels={MANAGED_LABEL: "true"},
    )
    oci.write_archive(archive, tags=[ref], layers=[oci.Layer(tar, _diff_id(tar))], cfg=cfg)
    docker("docker load node base", "load", "-i", str(archive))
    archive.unlink()
    return ref, tar


def _component_archives(
    cache: Path, *, refs: list[str], sandbox: str, rootfs_tar: Path, progress: Progress
) -> dict[str, Path]:
    """One archive per kubeadm image (plus the test app), sharing the multi-call layer."""
    kube = find_binary(cache, "kube").resolve()
    bins = {
        n: find_binary(cache, n).resolve()
        for n in ("etcd", "coredns", "pause", "testapp", "toxiproxy-server", "toxiproxy-cli")
    }
    key = digest(RECIPE, str(kube.parent), *(str(b.parent) for b in bins.values()), rootfs_tar.parent.name)
    out_dir = cache / "images" / key
    layers_dir = out_dir / "layers"
    archives: dict[str, Path] = {}
    layer_cache: dict[str, oci.Layer] = {}

    def layer(name: str, entries: list[oci.Entry]) -> oci.Layer:
        if name not in layer_cache:
            layer_cache[name] = oci.write_layer(entries, layers_dir / f"{name}.tar")
        return layer_cache[name]

    def archive(name: str, tags: list[str], layers: list[oci.Layer], cfg: oci.ImageConfig) -> None:
        dest = out_dir / f"{name}.tar"
        if not dest.is_file():
            progress(f"image archive {name}")
            oci.write_archive(dest, tags=tags, layers=layers, cfg=cfg)
        archives[name] = dest

    tmp = oci.Entry("/tmp", is_dir=True, mode=0o1777)
    for ref in refs:
        name = image_name(ref)
        if name.startswith("kube-"):
            shared = layer("kube", [oci.Entry("/usr/local/bin/kube", source=kube), tmp])
            link = layer(name, [oci.Entry(f"/usr/local/bin/{name}", link="kube")])
            # kube-proxy execs iptables/nft/conntrack: it gets the node rootfs underneath.
            base = [oci.Layer(rootfs_tar, _diff_id(rootfs_tar))] if name == "kube-proxy" else []
            archive(
                name, [ref], [*base, shared, link], oci.ImageConfig(entrypoint=(f"/usr/local/bin/{name}",))
            )
        elif name == "etcd":
            lay = layer("etcd", [oci.Entry("/usr/local/bin/etcd", source=bins["etcd"]), tmp])
            archive(name, [ref], [lay], oci.ImageConfig(entrypoint=("/usr/local/bin/etcd",)))
        elif name == "coredns":
            lay = layer("coredns", [oci.Entry("/coredns", source=bins["coredns"]), tmp])
            archive(name, [ref], [lay], oci.ImageConfig(entrypoint=("/coredns",)))
        elif name == "pause":
            lay = layer("pause", [oci.Entry("/pause", source=bins["pause"])])
            tags = sorted({ref, sandbox})  # containerd's sandbox_image may lag kubeadm's pause tag
            archive(name, tags, [lay], oci.ImageConfig(entrypoint=("/pause",)))
        else:
            raise ToolchainError("images", f"kubeadm lists an image meshcert does not build: {ref}")
    app = layer("testapp", [oci.Entry("/testapp", source=bins["testapp"]), tmp])
    archive("testapp", [TESTAPP_IMAGE], [app], oci.ImageConfig(entrypoint=("/testapp",), cmd=("serve",)))
    toxi = layer(
        "toxiproxy",
        [
            oci.Entry("/toxiproxy-server", source=bins["toxiproxy-server"]),
            oci.Entry("/toxiproxy-cli", source=bins["toxiproxy-cli"]),
            tmp,
        ],
    )
    # Listens on all interfaces in a pod (the API must be reachable through its Service).
    archive(
        "toxiproxy",
        [TOXIPROXY_IMAGE],
        [toxi],
        oci.ImageConfig(entrypoint=("/toxiproxy-server",), cmd=("-host=0.0.0.0", "-port=8474")),
    )
    shutil.rmtree(layers_dir, ignore_errors=True)
    return archives


def _diff_id(tar: Path) -> str:
    """sha256 of a (large) tar, memoised next to it so warm builds don't re-hash 300 MB."""
    memo = tar.with_suffix(".sha256")
    if memo.is_file() and memo.stat().st_mtime >= tar.stat().st_mtime:
        return memo.read_text().strip()
    value = "sha256:" + oci.sha256_file(tar)
    memo.write_text(value + "\n")
    return value


def _assemble_node(
    *, base: str, tag: str, cache: Path, archives: dict[str, Path], sandbox: str, progress: Progress
) -> None:
    """kind's node-image steps, offline: binaries in, images imported into containerd, commit."""
    kube = find_binary(cache, "kube").resolve()
    crictl = find_binary(cache, "crictl").resolve()
    name = f"mc-nodebuild-{secrets.token_hex(4)}"
    docker(
        "start build container", "run", "-d", "--name", name, "--label", f"{MANAGED_LABEL}=true",
        "--entrypoint", "sleep", "--security-opt", "seccomp=unconfined", base, "infinity",
    )  # fmt: skip
    try:
        progress("node image: copying Kubernetes binaries")
        docker("copy kube", "cp", str(kube), f"{name}:/usr/bin/kube")
        # kind's kubelet.service expects /usr/bin/kubelet; kubeadm/kubectl are called by kind.
        exec_in(
            "link kube",
            name,
            "sh",
            "-c",
            "cd /usr/bin && for c in kubelet kubeadm kubectl; do ln -sf kube $c; done",
        )
        docker("copy crictl", "cp", str(crictl), f"{name}:/usr/local/bin/crictl")
        exec_in("write version", name, "sh", "-c", f"echo {KUBERNETES_VERSION} > /kind/version")
        exec_in("storage manifest", name, "sh", "-c", f"mkdir -p /kind/manifests && cat > "
                f"/kind/manifests/default-storage.yaml <<'EOF'\n{_STORAGE_CLASS}EOF")  # fmt: skip
        progress("node image: importing component images into containerd")
        exec_in("start containerd", name, "sh", "-c", "nohup containerd >/tmp/containerd.log 2>&1 &")
        _wait_containerd(name)
        exec_in("mkdir", name, "mkdir", "-p", "/tmp/images")
        for img, path in sorted(archives.items()):
            docker(f"copy {img}", "cp", str(path), f"{name}:/tmp/images/{img}.tar")
            # --no-unpack: overlay-on-overlay fails in the build container; containerd's CRI
            # unpacks on first use. (Debian's ctr 1.6 has no --label, so images are not pinned.)
            exec_in(f"import {img}", name, "ctr", "-n", "k8s.io", "images", "import", "--all-platforms",
                    "--no-unpack", "--digests", f"/tmp/images/{img}.tar")  # fmt: skip
        listed = exec_in("list images", name, "ctr", "-n", "k8s.io", "images", "list", "-q")
        missing = {sandbox} - set(listed.split())
        if missing:
            raise ToolchainError("node image", f"sandbox image {sorted(missing)} not imported")
        exec_in(
            "stop containerd", name, "sh", "-c", "pkill containerd; rm -rf /tmp/images /tmp/containerd.log"
        )
        progress("node image: docker commit")
        docker(
            "commit node image", "commit",
            "--change", 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
            "--change", f"LABEL {MANAGED_LABEL}=true",
            name, tag,
        )  # fmt: skip
    finally:
        docker("remove build container", "rm", "-f", "-v", name, check=False)


#: kind applies /kind/manifests/default-storage.yaml; a plain StorageClass with no provisioner
#: pod keeps the node image free of images we would otherwise have to build.
_STORAGE_CLASS = """apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
"""


def _wait_containerd(container: str, *, timeout: float = 30.0) -> None:
    """containerd starts in ~1 s; 30 s covers a loaded 2-core machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker("ctr info", "exec", container, "ctr", "version", check=False).strip():
            return
        time.sleep(0.5)
    log = docker("containerd log", "exec", container, "tail", "-3", "/tmp/containerd.log", check=False)
    raise ToolchainError("start containerd in build container", f"not ready after {timeout:.0f}s: {log}")


def build_images(
    *, cache_dir: Path, debian_mirror: str | None = None, progress: Progress = lambda _: None
) -> BuiltImages:
    """Build everything; a no-op (seconds) when the node image for these inputs exists.

    Serialised across processes: two test sessions may ask at once, and both write the same
    archive paths and node image tag.
    """
    with locked(cache_dir, "images"):
        return _build_images(cache_dir=cache_dir, debian_mirror=debian_mirror, progress=progress)


def _build_images(*, cache_dir: Path, debian_mirror: str | None, progress: Progress) -> BuiltImages:
    start = time.monotonic()
    mirror = rootfs.debian_mirror(debian_mirror)
    base, rootfs_tar = _base_image(cache_dir, mirror=mirror, progress=progress)
    refs = kubeadm_image_list(find_binary(cache_dir, "kubeadm"))
    config = rootfs_tar.parent / "rootfs" / "etc/containerd/config.toml"
    match = _SANDBOX.search(config.read_text()) if config.is_file() else None
    if not match:
        raise ToolchainError("images", f"no sandbox_image in {config}")
    sandbox = match.group(1)
    archives = _component_archives(
        cache_dir, refs=refs, sandbox=sandbox, rootfs_tar=rootfs_tar, progress=progress
    )
    key = digest(RECIPE, base, *(str(p) for p in sorted(archives.values())))
    tag = f"{NODE_REPO}:{KUBERNETES_VERSION}-{key}"
    if image_exists(tag):
        progress(f"node image {tag}: cached")
    else:
        _assemble_node(
            base=base, tag=tag, cache=cache_dir, archives=archives, sandbox=sandbox, progress=progress
        )
    # Always (re)load: 7 MB, and the tag stays the same when only the app's source changed.
    docker("docker load testapp", "load", "-i", str(archives["testapp"]))
    (cache_dir / "images" / "node-image").write_text(tag + "\n")
    _prune_node_images(keep=tag)
    return BuiltImages(tag, TESTAPP_IMAGE, archives, time.monotonic() - start)


def _prune_node_images(*, keep: str) -> None:
    """Drop superseded node images (~1 GB each). Docker refuses (and we ignore) any image a
    container still uses, so a cluster created from an older image keeps working."""
    tags = docker(
        "list node images", "images", NODE_REPO, "--format", "{{.Repository}}:{{.Tag}}", check=False
    )
    for ref in tags.split():
        if ref != keep:
            docker("remove old node image", "rmi", ref, check=False)


def current_node_image(cache_dir: Path) -> str:
    """The node image the last `images build` produced (what `cluster up` uses by default)."""
    marker = cache_dir / "images" / "node-image"
    if not marker.is_file():
        raise ToolchainError("locate node image", "no node image built yet: run `meshcert images build`")
    tag = marker.read_text().strip()
    if not image_exists(tag):
        raise ToolchainError("locate node image", f"{tag} is gone from Docker: run `meshcert images build`")
    return tag
