"""What every checker returns: `Violation` records, and the one way to turn them into a failure.

Why: checkers stay pure and composable (a suite may merge the findings of several checkers, or
poll them inside `converge`), while the failure message keeps the e2e framework's habit of
printing "missing: …, extra: …" for every set comparison (test/e2e/framework, STYLE.md §4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshcert.errors import InvariantViolation


@dataclass(frozen=True)
class ObjectRef:
    """Which object a finding is about (``Pod default/web-0``)."""

    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def _fmt(items: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(items)) + "}"


@dataclass(frozen=True)
class SetDiff:
    """Expected vs observed sets: ``missing`` were expected and not seen, ``extra`` the reverse."""

    missing: frozenset[str]
    extra: frozenset[str]

    @classmethod
    def of(cls, *, expected: Iterable[str], observed: Iterable[str]) -> SetDiff:
        exp, obs = frozenset(expected), frozenset(observed)
        return cls(missing=exp - obs, extra=obs - exp)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra)

    def __str__(self) -> str:
        return f"missing: {_fmt(self.missing)}, extra: {_fmt(self.extra)}"


@dataclass(frozen=True)
class Violation:
    """One broken invariant: its catalogue id (DESIGN.md §4), the object, what is wrong."""

    invariant: str
    ref: ObjectRef | None
    message: str
    diff: SetDiff | None = None

    def __str__(self) -> str:
        where = f" {self.ref}:" if self.ref else ""
        tail = f" ({self.diff})" if self.diff else ""
        return f"[{self.invariant}]{where} {self.message}{tail}"


def set_violation(
    invariant: str, ref: ObjectRef | None, what: str, *, expected: Iterable[str], observed: Iterable[str]
) -> list[Violation]:
    """[] when the sets are equal, else one violation carrying the missing/extra diff."""
    diff = SetDiff.of(expected=expected, observed=observed)
    return [Violation(invariant, ref, what, diff)] if diff else []


def assert_no_violations(violations: Sequence[Violation], *, context: str = "") -> None:
    """Raise InvariantViolation listing every finding (ids joined, one line each); no-op if none."""
    if not violations:
        return
    ids = ",".join(sorted({v.invariant for v in violations}))
    head = f"{context}: " if context else ""
    lines = "\n".join(f"  {v}" for v in violations)
    raise InvariantViolation(ids, f"{head}{len(violations)} violation(s)\n{lines}")
