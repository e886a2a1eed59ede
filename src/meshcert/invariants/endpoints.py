"""E1 to E5: the EndpointSlices of a Service agree with its pods.

Why: the EndpointSlice controller is the bridge between pod readiness and traffic; each checker
takes the Service, its slices and the namespace's pods (all views, one consistent snapshot) and
returns violations with missing/extra diffs. Poll them with `converge` (E1 holds "within a
deadline", not at every instant).

Oracle: pkg/controller/endpointslice and its utils (podToEndpoint): a selector-matching pod with
an IP that is not terminal becomes an endpoint; ``ready = (podReady and not terminating) or
publishNotReadyAddresses``, ``serving = podReady``, ``terminating = deletionTimestamp set``;
named targetPorts resolve per pod against its container ports (FindPort); slices carry the
kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by labels and hold at most
--max-endpoints-per-slice endpoints. e2e: test/e2e/network/endpointslice.go.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from meshcert.invariants.selectors import labels_match
from meshcert.invariants.service_views import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    EndpointSliceView,
    EndpointView,
    ServicePort,
    ServiceView,
)
from meshcert.invariants.views import PodView
from meshcert.invariants.violations import Violation, set_violation

# kube-controller-manager --max-endpoints-per-slice default (pkg/controller/endpointslice/config).
DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100
_FAMILY = {"IPv4": 4, "IPv6": 6}


def service_slices(service: ServiceView, slices: Iterable[EndpointSliceView]) -> list[EndpointSliceView]:
    """The slices labelled as belonging to ``service`` (same namespace)."""
    return [s for s in slices if s.service_name == service.name and s.meta.namespace == service.namespace]


def selected_pods(service: ServiceView, pods: Iterable[PodView]) -> list[PodView]:
    """Pods the controller turns into endpoints: selector match, same namespace, an IP, not terminal."""
    if service.selector is None:
        return []
    return [
        p
        for p in pods
        if p.namespace == service.namespace
        and labels_match(service.selector, p.labels)
        and p.pod_ips
        and not p.terminal
    ]


def _family_ok(service: ServiceView, ip: str) -> bool:
    if not service.ip_families:
        return True
    version = ipaddress.ip_address(ip).version
    return any(_FAMILY.get(f) == version for f in service.ip_families)


def _ips(service: ServiceView, pods: Iterable[PodView]) -> set[str]:
    return {ip for p in pods for ip in p.pod_ips if _family_ok(service, ip)}


def _endpoints(slices: Iterable[EndpointSliceView]) -> list[EndpointView]:
    return [e for s in slices for e in s.endpoints]


def expected_ready(service: ServiceView, pod: PodView) -> bool:
    return service.publish_not_ready_addresses or (pod.ready and not pod.terminating)


def check_ready_endpoints(
    service: ServiceView, slices: Sequence[EndpointSliceView], pods: Sequence[PodView]
) -> list[Violation]:
    """E1: ready endpoint addresses == IPs of selector-matching Ready (not terminating) pods."""
    own = service_slices(service, slices)
    expected = _ips(service, [p for p in selected_pods(service, pods) if expected_ready(service, p)])
    observed = {a for e in _endpoints(own) if e.ready for a in e.addresses}
    return set_violation(
        "E1", service.ref, "ready endpoints differ from Ready pods", expected=expected, observed=observed
    )


def resolve_target_port(port: ServicePort, pod: PodView) -> int | None:
    """The container port a Service port reaches on ``pod`` (numbers as is, names via FindPort)."""
    if isinstance(port.target_port, int):
        return port.target_port
    for c in pod.containers:
        for p in c.ports:
            if p.name == port.target_port and p.protocol == port.protocol:
                return p.container_port
    return None


def check_endpoint_ports(
    service: ServiceView, slices: Sequence[EndpointSliceView], pods: Sequence[PodView]
) -> list[Violation]:
    """E1 (ports): each slice port equals the targetPort resolved on every pod the slice lists."""
    by_key = {p.key: p for p in pods}
    out: list[Violation] = []
    for s in service_slices(service, slices):
        published = {p.name: p.port for p in s.ports}
        for e in s.endpoints:
            pod = by_key.get(e.target_pod)
            if pod is None:
                continue
            for sp in service.ports:
                want = resolve_target_port(sp, pod)
                got = published.get(sp.name)
                if want is not None and got != want:
                    out.append(
                        Violation(
                            "E1",
                            s.ref,
                            f"port {sp.name or sp.port!s} for {pod.key} is {got}, "
                            f"targetPort {sp.target_port!s} resolves to {want}",
                        )
                    )
    return out


def check_no_endpoints_without_pods(
    service: ServiceView, slices: Sequence[EndpointSliceView], pods: Sequence[PodView]
) -> list[Violation]:
    """E2: when no pod matches the selector, the Service's slices list no endpoints at all."""
    if selected_pods(service, pods):
        return [Violation("E2", service.ref, "precondition failed: some pods match the selector")]
    observed = {a for e in _endpoints(service_slices(service, slices)) for a in e.addresses}
    return set_violation("E2", service.ref, "endpoints without matching pods", expected=(), observed=observed)


def check_unready_endpoints(
    service: ServiceView, slices: Sequence[EndpointSliceView], pods: Sequence[PodView]
) -> list[Violation]:
    """E3: unready (not terminating) pods are listed with ready=false — or ready=true when the
    Service sets publishNotReadyAddresses."""
    unready = [p for p in selected_pods(service, pods) if not p.ready and not p.terminating]
    endpoints = [e for e in _endpoints(service_slices(service, slices)) if not e.terminating]
    want_ready = service.publish_not_ready_addresses
    expected = _ips(service, unready)
    observed = {a for e in endpoints if e.ready == want_ready for a in e.addresses if a in expected}
    listed_ready = {a for e in endpoints if e.ready for a in e.addresses}
    what = "unready pods not published as ready" if want_ready else "unready pods not listed with ready=false"
    out = set_violation("E3", service.ref, what, expected=expected, observed=observed)
    if not want_ready and expected & listed_ready:
        out.append(
            Violation("E3", service.ref, f"unready pods listed as ready: {sorted(expected & listed_ready)}")
        )
    return out


def check_terminating_endpoints(
    service: ServiceView, slices: Sequence[EndpointSliceView], pods: Sequence[PodView]
) -> list[Violation]:
    """E4: terminating pods are listed with terminating=true, ready=false, serving=podReady."""
    terminating = [p for p in selected_pods(service, pods) if p.terminating]
    by_ip = {a: e for e in _endpoints(service_slices(service, slices)) for a in e.addresses}
    expected = _ips(service, terminating)
    observed = {a for a, e in by_ip.items() if e.terminating}
    out = set_violation(
        "E4", service.ref, "terminating pods vs terminating endpoints", expected=expected, observed=observed
    )
    for pod in terminating:
        for ip in pod.pod_ips:
            e = by_ip.get(ip)
            if e is None or not e.terminating:
                continue
            if e.serving != pod.ready:
                out.append(
                    Violation("E4", pod.ref, f"endpoint {ip} serving={e.serving}, pod Ready={pod.ready}")
                )
            if e.ready and not service.publish_not_ready_addresses:
                out.append(Violation("E4", pod.ref, f"terminating endpoint {ip} has ready=true"))
    return out


def _address_family_ok(address_type: str, address: str) -> bool:
    if address_type == "FQDN":
        return True
    try:
        return ipaddress.ip_address(address).version == _FAMILY.get(address_type)
    except ValueError:
        return False


def check_slice_structure(
    service: ServiceView,
    slices: Sequence[EndpointSliceView],
    *,
    max_endpoints_per_slice: int = DEFAULT_MAX_ENDPOINTS_PER_SLICE,
) -> list[Violation]:
    """E5: labels, owner, size limit, address types and no duplicate addresses across slices."""
    out: list[Violation] = []
    seen: dict[tuple[str, str], str] = {}
    for s in service_slices(service, slices):
        if s.meta.labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME:
            out.append(
                Violation("E5", s.ref, f"{MANAGED_BY_LABEL} is {s.meta.labels.get(MANAGED_BY_LABEL)!r}")
            )
        if ("Service", service.name) not in s.meta.owner_kinds:
            out.append(Violation("E5", s.ref, f"not owned by Service {service.name}"))
        if len(s.endpoints) > max_endpoints_per_slice:
            out.append(Violation("E5", s.ref, f"{len(s.endpoints)} endpoints > {max_endpoints_per_slice}"))
        for e in s.endpoints:
            for a in e.addresses:
                if not _address_family_ok(s.address_type, a):
                    out.append(Violation("E5", s.ref, f"address {a} is not {s.address_type}"))
                first = seen.setdefault((s.address_type, a), s.meta.name)
                if first != s.meta.name or sum(a in x.addresses for x in s.endpoints) > 1:
                    out.append(Violation("E5", s.ref, f"duplicate address {a} (also in {first})"))
    return out
