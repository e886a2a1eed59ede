"""Typed scheduling views back to API manifests: PodView/NodeView → the JSON the API server takes.

Why it exists: the scheduler property test (conformance/scheduling, on kwok) draws clusters and
pods from `meshcert.invariants.strategies` as *views*, and must create exactly those objects for
the real kube-scheduler to place. This is the inverse of ``PodView.from_api`` / ``NodeView.from_api``
for the fields the placement oracle reads (requests, host ports, nodeSelector, required
(anti-)affinity, tolerations, DoNotSchedule spread constraints; labels, taints, cordon,
allocatable), so ``from_api(pod_manifest(v)) == v`` for generated views (unit-tested).

What it is not: no defaults of its own and no scoring fields (preferred terms never change
feasibility); resource amounts are written in canonical units (millicores, bytes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshcert.invariants.placement_spec import Affinity, PodAffinityTerm, Toleration, TopologySpreadConstraint
from meshcert.invariants.quantities import CPU
from meshcert.invariants.selectors import LabelSelector, NodeSelector, Operator, Requirement
from meshcert.invariants.views import ContainerPort, NodeView, PodView

#: kwok manages nodes carrying this annotation (it marks them Ready and runs their pods).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
#: The image of generated pods: never pulled (kwok runs nothing); any name would do.
PLACEHOLDER_IMAGE = "meshcert/testapp:0.1.0"
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def quantity(resource: str, amount: int) -> str:
    """Canonical amount → API quantity (CPU in millicores, everything else as a plain integer)."""
    return f"{amount}m" if resource == CPU else str(amount)


def resource_list(amounts: Mapping[str, int]) -> dict[str, str]:
    return {k: quantity(k, v) for k, v in sorted(amounts.items()) if v}


def requirement(r: Requirement) -> dict[str, Any]:
    out: dict[str, Any] = {"key": r.key, "operator": str(r.operator)}
    if r.values:
        out["values"] = list(r.values)
    return out


def label_selector(s: LabelSelector) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.match_labels:
        out["matchLabels"] = dict(s.match_labels)
    if s.match_expressions:
        out["matchExpressions"] = [requirement(r) for r in s.match_expressions]
    return out


def node_selector(s: NodeSelector) -> dict[str, Any]:
    terms = []
    for t in s.terms:
        term: dict[str, Any] = {}
        if t.match_expressions:
            term["matchExpressions"] = [requirement(r) for r in t.match_expressions]
        if t.match_fields:
            term["matchFields"] = [requirement(r) for r in t.match_fields]
        terms.append(term)
    return {"nodeSelectorTerms": terms}


def pod_affinity_term(t: PodAffinityTerm) -> dict[str, Any]:
    out: dict[str, Any] = {"topologyKey": t.topology_key}
    if t.label_selector is not None:
        out["labelSelector"] = label_selector(t.label_selector)
    if t.namespaces:
        out["namespaces"] = list(t.namespaces)
    if t.namespace_selector is not None:
        out["namespaceSelector"] = label_selector(t.namespace_selector)
    return out


def affinity(a: Affinity) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if a.node_required is not None:
        out["nodeAffinity"] = {_REQUIRED: node_selector(a.node_required)}
    if a.pod_affinity:
        out["podAffinity"] = {_REQUIRED: [pod_affinity_term(t) for t in a.pod_affinity]}
    if a.pod_anti_affinity:
        out["podAntiAffinity"] = {_REQUIRED: [pod_affinity_term(t) for t in a.pod_anti_affinity]}
    return out


def toleration(t: Toleration) -> dict[str, Any]:
    out: dict[str, Any] = {"operator": t.operator}
    for key, value in (("key", t.key), ("value", t.value), ("effect", t.effect)):
        if value:
            out[key] = value
    if t.toleration_seconds is not None:
        out["tolerationSeconds"] = t.toleration_seconds
    return out


def spread(c: TopologySpreadConstraint) -> dict[str, Any]:
    out: dict[str, Any] = {
        "maxSkew": c.max_skew,
        "topologyKey": c.topology_key,
        "whenUnsatisfiable": c.when_unsatisfiable,
        "nodeAffinityPolicy": c.node_affinity_policy,
        "nodeTaintsPolicy": c.node_taints_policy,
    }
    if c.label_selector is not None:
        out["labelSelector"] = label_selector(c.label_selector)
    if c.min_domains is not None:
        out["minDomains"] = c.min_domains
    if c.match_label_keys:
        out["matchLabelKeys"] = list(c.match_label_keys)
    return out


def container_port(p: ContainerPort) -> dict[str, Any]:
    out: dict[str, Any] = {"containerPort": p.container_port, "protocol": p.protocol}
    if p.host_port:
        out["hostPort"] = p.host_port
    if p.host_ip:
        out["hostIP"] = p.host_ip
    if p.name:
        out["name"] = p.name
    return out


def pod_manifest(pod: PodView, *, extra_node_selector: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Pod manifest the scheduler sees as ``pod`` (plus ``extra_node_selector`` pairs, e.g. to
    keep generated pods on the generated nodes of a shared cluster)."""
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": c.name,
                "image": PLACEHOLDER_IMAGE,
                "imagePullPolicy": "Never",
                "resources": {"requests": resource_list(c.requests)} if resource_list(c.requests) else {},
                **({"ports": [container_port(p) for p in c.ports]} if c.ports else {}),
            }
            for c in pod.containers
        ],
        "terminationGracePeriodSeconds": 0,
    }
    selector = {**pod.node_selector, **(extra_node_selector or {})}
    if selector:
        spec["nodeSelector"] = selector
    if aff := affinity(pod.affinity):
        spec["affinity"] = aff
    if pod.tolerations:
        spec["tolerations"] = [toleration(t) for t in pod.tolerations]
    if pod.topology_spread:
        spec["topologySpreadConstraints"] = [spread(c) for c in pod.topology_spread]
    if pod.priority:
        spec["priority"] = pod.priority
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)},
        "spec": spec,
    }


def node_manifest(node: NodeView, *, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Node kwok simulates with ``node``'s labels, taints, cordon and allocatable."""
    resources = resource_list(node.allocatable)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {**node.labels, **(extra_labels or {})},
            "annotations": {KWOK_NODE_ANNOTATION: "fake"},
        },
        "spec": {
            "taints": [
                {"key": t.key, "effect": str(t.effect), **({"value": t.value} if t.value else {})}
                for t in node.taints
            ],
            "unschedulable": node.unschedulable,
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


def api_valid_pod(pod: PodView) -> PodView:
    """``pod`` narrowed to what the API server accepts: a node *field* selector with operator In
    or NotIn takes exactly one value (core/v1 validation), which the strategies may exceed; the
    extra values are dropped. The oracle judges the objects read back, so nothing is assumed."""
    required = pod.affinity.node_required
    if required is None:
        return pod
    terms = tuple(
        dataclasses.replace(
            t,
            match_fields=tuple(
                dataclasses.replace(r, values=r.values[:1])
                if r.operator in (Operator.IN, Operator.NOT_IN)
                else r
                for r in t.match_fields
            ),
        )
        for t in required.terms
    )
    narrowed = dataclasses.replace(pod.affinity, node_required=dataclasses.replace(required, terms=terms))
    return dataclasses.replace(pod, affinity=narrowed)
