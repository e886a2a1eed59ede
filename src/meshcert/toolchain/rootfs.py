"""The kind node base: a debootstrapped Debian bookworm rootfs with kind's own base files.

kind's official base image is built from a Dockerfile on top of a pulled Debian image and
containerd/runc/CNI built from source; neither pull works here. Instead we debootstrap bookworm
(systemd 252 still boots on a cgroup v1 host; trixie's 257 refuses), install Debian's containerd
1.6, runc and CNI plugins, lay kind's images/base/files from the pinned kind module over it, and
apply the steps of kind's Dockerfile by hand (see ../shared/DESIGN.md §3 for what was verified).
The result is imported with `docker import` as the base image the node image is assembled from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from meshcert.errors import ToolchainError
from meshcert.toolchain.paths import digest
from meshcert.toolchain.pins import KIND_VERSION

SUITE = "bookworm"

#: What a kind node needs, by role: init (systemd, dbus), container runtime (containerd, runc),
#: pod networking (CNI plugins, iptables/nftables, iproute2, conntrack, ethtool), kubelet
#: dependencies (mount, util-linux, kmod, procps, socat for port-forward), kind's scripts (bash,
#: jq, curl, ca-certificates), image layers (pigz).
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
    "iptables", "nftables", "iproute2", "conntrack", "ethtool", "mount", "util-linux", "kmod",
    "procps", "socat", "libseccomp2", "bash", "jq", "curl", "ca-certificates", "pigz",
)  # fmt: skip

#: Version of this recipe; bump when the steps below change so cached base images are rebuilt.
RECIPE = "4"


def debian_mirror(override: str | None = None) -> str:
    """The host's configured Debian mirror for bookworm (never a hard-coded host)."""
    if override:
        return override
    sources = Path("/etc/apt/sources.list.d")
    for f in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in f.read_text().split("\n\n"):
            fields = dict(
                (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in stanza.splitlines()) if v
            )
            if SUITE in fields.get("Suites", "").split() and "main" in fields.get("Components", ""):
                return fields["URIs"].split()[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            m = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s+.*\bmain\b", line)
            if m:
                return m.group(1)
    raise ToolchainError("debootstrap", f"no Debian {SUITE} mirror in /etc/apt; set debian_mirror")


def kind_module_dir() -> Path:
    """Where the pinned kind module (with images/base/files) sits in the Go module cache."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"sigs.k8s.io/kind@{KIND_VERSION}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ToolchainError("kind base files", f"go mod download failed: {proc.stderr.strip()[:200]}")
    return Path(json.loads(proc.stdout)["Dir"])


def base_key(mirror: str) -> str:
    return digest(RECIPE, SUITE, KIND_VERSION, ",".join(PACKAGES), mirror)


def _sh(step: str, argv: list[str], *, log: Path, **kw: object) -> str:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
    proc = subprocess.run(argv, capture_output=True, check=False, **kw)  # type: ignore[call-overload]
    with log.open("ab") as out:
        out.write(proc.stdout if isinstance(proc.stdout, bytes) else proc.stdout.encode())
        out.write(proc.stderr if isinstance(proc.stderr, bytes) else proc.stderr.encode())
    if proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        raise ToolchainError(step, f"exit {proc.returncode}: {last} (log: {log})")
    out_text = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode(errors="replace")
    return str(out_text)


def _copy_kind_files(files: Path, root: Path) -> None:
    """kind's Dockerfile COPY steps: executables 0755, everything else 0644."""
    for src in sorted(p for p in files.rglob("*") if p.is_file()):
        rel = src.relative_to(files)
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        executable = rel.parts[:3] == ("usr", "local", "bin") or rel.parts[:2] == ("kind", "bin")
        dest.chmod(0o755 if executable else 0o644)


_FUSE_BLOCK = re.compile(r"\[proxy_plugins\].*?(?=\n\[plugins)", re.S)


def _configure(root: Path, kind_files: Path, log: Path) -> None:
    """Apply the RUN steps of kind's base Dockerfile to the rootfs."""
    _copy_kind_files(kind_files, root)
    # fuse-overlayfs is for rootless hosts; Debian ships no snapshotter plugin for it and
    # containerd 1.6 fails CRI start-up on the dangling proxy plugin.
    cfg = root / "etc/containerd/config.toml"
    text = _FUSE_BLOCK.sub("", cfg.read_text())
    # Hosts whose capability bounding set lacks CAP_SYS_RESOURCE (this one) cannot lower
    # oom_score_adj, and kubelet asks -998 for every pod sandbox: runc then dies with "can't get
    # final child's PID from pipe". Restricting clamps scores at containerd's own, which costs
    # only OOM-kill ordering among system pods; kind enables the same switch for rootless nodes.
    text = text.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
    if "restrict_oom_score_adj = true" not in text:
        raise ToolchainError("containerd config", "kind's config.toml no longer has restrict_oom_score_adj")
    cfg.write_text(text)
    (root / "etc/systemd/system/containerd-fuse-overlayfs.service").unlink(missing_ok=True)
    for pattern in (
        "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
        "lib/systemd/system/multi-user.target.wants/*",
        "etc/systemd/system/*.wants/*",
        "lib/systemd/system/local-fs.target.wants/*",
        "lib/systemd/system/sockets.target.wants/*udev*",
        "lib/systemd/system/sockets.target.wants/*initctl*",
        "lib/systemd/system/basic.target.wants/*",
    ):
        for p in root.glob(pattern):
            p.unlink()
    with (root / "etc/systemd/journald.conf").open("a") as fh:
        fh.write("ReadKMsg=no\n")
    # kind's unit files expect its own build paths; Debian installs to /usr/bin and /usr/lib/cni.
    for name in ("containerd", "ctr", "containerd-shim-runc-v2"):
        link = root / "usr/local/bin" / name
        link.unlink(missing_ok=True)
        link.symlink_to(f"/usr/bin/{name}")
    (root / "opt/cni").mkdir(parents=True, exist_ok=True)
    cni = root / "opt/cni/bin"
    if cni.is_symlink() or cni.exists():
        shutil.rmtree(cni) if cni.is_dir() and not cni.is_symlink() else cni.unlink()
    cni.symlink_to("/usr/lib/cni")
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    chroot = ["chroot", str(root)]
    _sh("systemctl enable", [*chroot, "systemctl", "enable", "kubelet.service", "containerd.service",
                             "undo-mount-hacks.service"], log=log)  # fmt: skip
    _sh("systemctl mask", [*chroot, "systemctl", "mask", "systemd-binfmt.service"], log=log)
    spec = json.loads(_sh("ctr oci spec", [*chroot, "ctr", "oci", "spec"], log=log, text=True))
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
        {"path": "/kind/bin/mount-product-files.sh"}
    )
    spec.get("process", {}).pop("rlimits", None)
    (root / "etc/containerd/cri-base.json").write_text(json.dumps(spec, indent=2))
    # Trim what a node never reads (apt lists and caches, docs, man pages, locales).
    for sub in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(root / sub, ignore_errors=True)


def build_rootfs(work: Path, *, mirror: str, log: Path) -> Path:
    """Debootstrap and configure a node rootfs under ``work``; returns the rootfs directory."""
    root = work / "rootfs"
    if root.exists():
        shutil.rmtree(root)
    work.mkdir(parents=True, exist_ok=True)
    _sh(
        "debootstrap",
        ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror],
        log=log,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    _configure(root, kind_module_dir() / "images" / "base" / "files", log)
    return root


def tar_rootfs(root: Path, dest: Path, *, log: Path) -> Path:
    """Tar the rootfs with numeric owners and xattrs (file capabilities), minus /dev, /proc, /sys
    contents, which the container runtime provides."""
    _sh(
        "tar rootfs",
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(root),
         "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-cf", str(dest), "."],
        log=log,
    )  # fmt: skip
    return dest
