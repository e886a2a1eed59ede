"""The scheduling-relevant parts of a pod and node spec: taints, tolerations, affinity, spread.

Why: the placement oracle (scheduling.py) and the S-group checkers need these as typed values.
Oracles: core/v1 types.go field semantics; toleration matching as in
k8s.io/component-helpers/scheduling/corev1 (Toleration.ToleratesTaint): operator Exists with an
empty key tolerates every taint, an empty effect matches every effect, Equal compares values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from meshcert.invariants import _wire as w
from meshcert.invariants.selectors import LabelSelector, NodeSelector


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


@dataclass(frozen=True)
class Taint:
    key: str
    effect: TaintEffect
    value: str = ""

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> Taint:
        return cls(w.string(raw, "key"), TaintEffect(w.string(raw, "effect")), w.string(raw, "value"))

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


# The taint the NodeUnschedulable plugin treats ``spec.unschedulable: true`` as (cordon).
UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", TaintEffect.NO_SCHEDULE)


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""  # "" = every effect
    toleration_seconds: int | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> Toleration:
        return cls(
            key=w.string(raw, "key"),
            operator=w.string(raw, "operator", "Equal") or "Equal",
            value=w.string(raw, "value"),
            effect=w.string(raw, "effect"),
            toleration_seconds=w.opt_integer(raw, "tolerationSeconds"),
        )

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


def tolerated(taint: Taint, tolerations: tuple[Toleration, ...]) -> bool:
    return any(t.tolerates(taint) for t in tolerations)


@dataclass(frozen=True)
class PodAffinityTerm:
    """A required pod (anti-)affinity term.

    ``namespaces`` empty and ``namespace_selector`` None mean "the pod's own namespace";
    an empty namespace_selector means every namespace. matchLabelKeys are merged into
    ``label_selector`` by the API server at creation (1.31+), so the stored selector is complete.
    """

    topology_key: str
    label_selector: LabelSelector | None
    namespaces: tuple[str, ...] = ()
    namespace_selector: LabelSelector | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> PodAffinityTerm:
        return cls(
            topology_key=w.string(raw, "topologyKey"),
            label_selector=LabelSelector.opt(raw, "labelSelector"),
            namespaces=w.strings(raw, "namespaces"),
            namespace_selector=LabelSelector.opt(raw, "namespaceSelector"),
        )

    def selects(
        self,
        *,
        owner_namespace: str,
        namespace: str,
        labels: Mapping[str, str],
        namespace_labels: Mapping[str, Mapping[str, str]],
    ) -> bool:
        """Does this term (declared by a pod in ``owner_namespace``) select a pod with these labels?"""
        if self.label_selector is None or not self.label_selector.matches(labels):
            return False
        if not self.namespaces and self.namespace_selector is None:
            return namespace == owner_namespace
        if namespace in self.namespaces:
            return True
        return self.namespace_selector is not None and self.namespace_selector.matches(
            namespace_labels.get(namespace, {})
        )


@dataclass(frozen=True)
class Affinity:
    """Only the *required* parts: preferred terms affect scoring, never feasibility."""

    node_required: NodeSelector | None = None
    pod_affinity: tuple[PodAffinityTerm, ...] = ()
    pod_anti_affinity: tuple[PodAffinityTerm, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> Affinity:
        required = "requiredDuringSchedulingIgnoredDuringExecution"
        node = w.opt_obj(w.obj(raw, "nodeAffinity"), required)
        return cls(
            node_required=None if node is None else NodeSelector.from_api(node),
            pod_affinity=tuple(
                PodAffinityTerm.from_api(t) for t in w.objs(w.obj(raw, "podAffinity"), required)
            ),
            pod_anti_affinity=tuple(
                PodAffinityTerm.from_api(t) for t in w.objs(w.obj(raw, "podAntiAffinity"), required)
            ),
        )


@dataclass(frozen=True)
class TopologySpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    label_selector: LabelSelector | None
    min_domains: int | None = None
    node_affinity_policy: str = "Honor"  # API default
    node_taints_policy: str = "Ignore"  # API default
    match_label_keys: tuple[str, ...] = field(default=())

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> TopologySpreadConstraint:
        return cls(
            max_skew=w.integer(raw, "maxSkew", 1),
            topology_key=w.string(raw, "topologyKey"),
            when_unsatisfiable=w.string(raw, "whenUnsatisfiable", "DoNotSchedule"),
            label_selector=LabelSelector.opt(raw, "labelSelector"),
            min_domains=w.opt_integer(raw, "minDomains"),
            node_affinity_policy=w.string(raw, "nodeAffinityPolicy", "Honor") or "Honor",
            node_taints_policy=w.string(raw, "nodeTaintsPolicy", "Ignore") or "Ignore",
            match_label_keys=w.strings(raw, "matchLabelKeys"),
        )

    @property
    def hard(self) -> bool:
        return self.when_unsatisfiable == "DoNotSchedule"
