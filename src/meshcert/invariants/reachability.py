"""E3/E4 traffic, E6 multi-port, E7 ClusterIP/NodePort/ClientIP affinity: judging probe results.

Why: the data-plane checks send requests from inside the cluster (STYLE.md §8) and record who
answered; these functions turn those records into violations with missing/extra diffs. The I/O
(exec'ing curl in a client pod) lives in the kube layer.

Oracle: test/e2e/network/service.go — every Service port answers (E6), a ClusterIP Service answers
by IP and by name, a NodePort on every node's InternalIP (E7), sessionAffinity ClientIP pins one
client to one backend (execAffinityTestForNonLBService: all answers from one host).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meshcert.invariants.service_views import ServiceView
from meshcert.invariants.timeline import RequestOutcome
from meshcert.invariants.views import NodeView
from meshcert.invariants.violations import ObjectRef, Violation, set_violation


def check_traffic_only_to(
    outcomes: Sequence[RequestOutcome],
    *,
    allowed: Iterable[str],
    invariant: str,
    ref: ObjectRef | None = None,
    since: float = float("-inf"),
) -> list[Violation]:
    """E3/E4: requests sent at or after ``since`` were answered only by ``allowed`` backends.

    E3: allowed = Ready pods (unready ones receive nothing). E4: allowed = non-terminating pods,
    from the moment termination began, while some of them are ready (no new connections).
    """
    allowed_set = set(allowed)
    hit = {o.backend for o in outcomes if o.ok and o.at >= since and o.backend}
    extra = hit - allowed_set
    if not extra:
        return []
    return set_violation(
        invariant, ref, "traffic reached disallowed backends", expected=hit & allowed_set, observed=hit
    )


def check_all_ports_reachable(service: ServiceView, reachable: Mapping[int, bool]) -> list[Violation]:
    """E6: every Service port answered (``reachable`` maps port → a request succeeded)."""
    expected = {str(p.port) for p in service.ports}
    observed = {str(port) for port, ok in reachable.items() if ok}
    return set_violation("E6", service.ref, "Service ports reachable", expected=expected, observed=observed)


def check_clusterip_reachable(service: ServiceView, *, by_ip: bool, by_name: bool) -> list[Violation]:
    """E7: the ClusterIP answers both at its IP and at its DNS name."""
    out: list[Violation] = []
    if not by_ip:
        out.append(Violation("E7", service.ref, f"unreachable by ClusterIP {list(service.cluster_ips)}"))
    if not by_name:
        out.append(Violation("E7", service.ref, f"unreachable by name {service.name}.{service.namespace}"))
    return out


def check_nodeport_on_every_node(
    service: ServiceView, nodes: Sequence[NodeView], reachable: Mapping[str, bool]
) -> list[Violation]:
    """E7: the NodePort answers on every Ready node (``reachable`` maps node name → success)."""
    expected = {n.name for n in nodes if n.ready}
    observed = {name for name, ok in reachable.items() if ok}
    return set_violation(
        "E7", service.ref, "NodePort answering on nodes", expected=expected, observed=observed
    )


def check_client_ip_affinity(service: ServiceView, outcomes: Sequence[RequestOutcome]) -> list[Violation]:
    """E7: with sessionAffinity ClientIP every successful answer to one client is from one backend."""
    if service.session_affinity != "ClientIP":
        return [Violation("E7", service.ref, "precondition: sessionAffinity is not ClientIP")]
    backends = {o.backend for o in outcomes if o.ok}
    if len(backends) <= 1:
        return [] if backends else [Violation("E7", service.ref, "no successful request to judge affinity")]
    counts = {b: sum(o.backend == b for o in outcomes if o.ok) for b in sorted(backends)}
    return [Violation("E7", service.ref, f"ClientIP affinity broken: answers from {counts}")]
