"""The pinned upstream versions, in one place, and what each build produces.

Why these pins fit together (see ../shared/DESIGN.md §3): kind v0.30.0 was released for
Kubernetes 1.34 and its base image is bookworm (systemd 252 still boots on the cgroup v1 host);
etcd 3.6.5, CoreDNS v1.12.1 and pause 3.10.1 are the versions kubeadm v1.34.4 deploys
(cmd/kubeadm/app/constants), so the image tags kubeadm prints name what we really built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KUBERNETES_VERSION = "v1.34.4"
KIND_VERSION = "v0.30.0"
ETCD_VERSION = "v3.6.5"
COREDNS_VERSION = "v1.12.1"
TOXIPROXY_VERSION = "v2.12.0"
KWOK_VERSION = "v0.7.0"
CRICTL_VERSION = "v1.34.0"
PAUSE_VERSION = "3.10.1"
#: Our own workload (images/testapp); bump when its behaviour changes.
TESTAPP_VERSION = "0.1.0"

#: The Kubernetes components linked into the one multi-call `kube` binary.
KUBE_COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubelet",
    "kubeadm",
    "kubectl",
)


def _kube_ldflags(version: str) -> tuple[str, ...]:
    """Version stamps; without them kubeadm reports v1.0.0-placeholder-version and refuses."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags: list[str] = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            # The module proxy carries no commit; a fixed value keeps builds reproducible.
            f"-X {pkg}.gitCommit=0000000000000000000000000000000000000000",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


@dataclass(frozen=True)
class GoComponent:
    """One wrapper module under toolchain/ and the binaries built from it."""

    name: str
    version: str
    #: (output binary name, Go package path); "." is the wrapper module's own main package.
    binaries: tuple[tuple[str, str], ...]
    ldflags: tuple[str, ...] = ()
    #: Extra names that are symlinks to the first binary (multi-call dispatch on argv[0]).
    aliases: tuple[str, ...] = field(default=())
    #: Module directory relative to the project root; default toolchain/<name>.
    source: str = ""

    @property
    def source_dir(self) -> str:
        return self.source or f"toolchain/{self.name}"


GO_COMPONENTS: tuple[GoComponent, ...] = (
    GoComponent("kind", KIND_VERSION, (("kind", "sigs.k8s.io/kind"),)),
    GoComponent(
        "kubernetes",
        KUBERNETES_VERSION,
        (("kube", "."),),
        ldflags=_kube_ldflags(KUBERNETES_VERSION),
        aliases=KUBE_COMPONENTS,
    ),
    GoComponent("etcd", ETCD_VERSION, (("etcd", "go.etcd.io/etcd/server/v3"),)),
    GoComponent("coredns", COREDNS_VERSION, (("coredns", "."),)),
    GoComponent("crictl", CRICTL_VERSION, (("crictl", "sigs.k8s.io/cri-tools/cmd/crictl"),)),
    GoComponent(
        "toxiproxy",
        TOXIPROXY_VERSION,
        (
            ("toxiproxy-server", "github.com/Shopify/toxiproxy/v2/cmd/server"),
            ("toxiproxy-cli", "github.com/Shopify/toxiproxy/v2/cmd/cli"),
        ),
        # Without it GET /version answers "git" and reports cannot name the server version.
        ldflags=(f"-X github.com/Shopify/toxiproxy/v2.Version={TOXIPROXY_VERSION}",),
    ),
    GoComponent(
        "kwok",
        KWOK_VERSION,
        (("kwok", "sigs.k8s.io/kwok/cmd/kwok"), ("kwokctl", "sigs.k8s.io/kwok/cmd/kwokctl")),
    ),
    GoComponent("testapp", TESTAPP_VERSION, (("testapp", "."),), source="images/testapp"),
)


def component(name: str) -> GoComponent:
    for c in GO_COMPONENTS:
        if c.name == name:
            return c
    raise KeyError(name)
