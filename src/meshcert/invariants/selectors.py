"""Label selectors and node selectors, parsed and matched exactly as the API defines them.

Why: S1 (nodeSelector / required node affinity), S6 (spread selectors), S7 (pod (anti-)affinity
terms), E1 (Service selectors) and S9 (PDB selectors) all reduce to "does this label set match".

Oracles: k8s.io/apimachinery/pkg/labels (LabelSelectorAsSelector: matchLabels AND matchExpressions;
an empty selector matches everything, a null one nothing) and
k8s.io/component-helpers/scheduling/corev1/nodeaffinity (NodeSelectorTerms are ORed, requirements
inside a term ANDed, an empty term matches nothing; Gt/Lt compare integers; matchFields supports
only ``metadata.name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from meshcert.errors import ConfigError
from meshcert.invariants import _wire as w


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


def _operator(raw: Mapping[str, object], *, allowed: frozenset[Operator]) -> Operator:
    text = w.string(raw, "operator")
    try:
        op = Operator(text)
    except ValueError as e:
        raise ConfigError("selector", "operator", f"unknown operator {text!r}") from e
    if op not in allowed:
        raise ConfigError("selector", "operator", f"{op} is not valid here")
    return op


@dataclass(frozen=True)
class Requirement:
    """One ``{key, operator, values}`` expression of a label or node selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.operator:
            case Operator.IN:
                return present and labels[self.key] in self.values
            case Operator.NOT_IN:
                return not present or labels[self.key] not in self.values
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.GT | Operator.LT:
                return present and _compare_int(
                    labels[self.key], self.values, gt=self.operator is Operator.GT
                )

    def __str__(self) -> str:
        vals = f" ({','.join(self.values)})" if self.values else ""
        return f"{self.key} {self.operator}{vals}"


def _compare_int(label: str, values: tuple[str, ...], *, gt: bool) -> bool:
    """Gt/Lt: both the label and the single value must parse as integers, else no match."""
    if len(values) != 1:
        return False
    try:
        have, want = int(label), int(values[0])
    except ValueError:
        return False
    return have > want if gt else have < want


_LABEL_OPS = frozenset({Operator.IN, Operator.NOT_IN, Operator.EXISTS, Operator.DOES_NOT_EXIST})


@dataclass(frozen=True)
class LabelSelector:
    """metav1.LabelSelector. ``LabelSelector()`` (empty) matches every label set."""

    match_labels: Mapping[str, str]
    match_expressions: tuple[Requirement, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> LabelSelector:
        exprs = tuple(
            Requirement(w.string(e, "key"), _operator(e, allowed=_LABEL_OPS), w.strings(e, "values"))
            for e in w.objs(raw, "matchExpressions")
        )
        return cls(w.string_map(raw, "matchLabels"), exprs)

    @classmethod
    def opt(cls, raw: Mapping[str, object], key: str) -> LabelSelector | None:
        """A nullable selector field: absent → None (matches nothing), ``{}`` → everything."""
        sub = w.opt_obj(raw, key)
        return None if sub is None else cls.from_api(sub)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            r.matches(labels) for r in self.match_expressions
        )

    def with_requirement(self, req: Requirement) -> LabelSelector:
        return LabelSelector(self.match_labels, (*self.match_expressions, req))

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        parts += [str(r) for r in self.match_expressions]
        return ",".join(parts) or "<everything>"


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A plain map selector (Service spec.selector, pod nodeSelector): every pair present."""
    return all(labels.get(k) == v for k, v in selector.items())


_NODE_OPS = frozenset(Operator)
_FIELD_OPS = frozenset({Operator.IN, Operator.NOT_IN})
NODE_NAME_FIELD = "metadata.name"


@dataclass(frozen=True)
class NodeSelectorTerm:
    """One term of a required node affinity: expressions on labels AND fields on metadata.name."""

    match_expressions: tuple[Requirement, ...] = ()
    match_fields: tuple[Requirement, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> NodeSelectorTerm:
        exprs = tuple(
            Requirement(w.string(e, "key"), _operator(e, allowed=_NODE_OPS), w.strings(e, "values"))
            for e in w.objs(raw, "matchExpressions")
        )
        fields = tuple(
            Requirement(w.string(e, "key"), _operator(e, allowed=_FIELD_OPS), w.strings(e, "values"))
            for e in w.objs(raw, "matchFields")
        )
        for f in fields:
            if f.key != NODE_NAME_FIELD:
                raise ConfigError("nodeSelectorTerm", "matchFields.key", f"unsupported field {f.key!r}")
        return cls(exprs, fields)

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        if not self.match_expressions and not self.match_fields:
            return False  # an empty term matches no objects (nodeaffinity.go)
        fields = {NODE_NAME_FIELD: node_name}
        return all(r.matches(labels) for r in self.match_expressions) and all(
            r.matches(fields) for r in self.match_fields
        )

    def __str__(self) -> str:
        return " AND ".join(str(r) for r in (*self.match_expressions, *self.match_fields)) or "<empty term>"


@dataclass(frozen=True)
class NodeSelector:
    """requiredDuringSchedulingIgnoredDuringExecution: the terms are ORed."""

    terms: tuple[NodeSelectorTerm, ...]

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> NodeSelector:
        return cls(tuple(NodeSelectorTerm.from_api(t) for t in w.objs(raw, "nodeSelectorTerms")))

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        return any(t.matches(node_name, labels) for t in self.terms)

    def __str__(self) -> str:
        return " OR ".join(f"({t})" for t in self.terms) or "<no terms>"
