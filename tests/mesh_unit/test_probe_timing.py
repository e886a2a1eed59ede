"""converge_batches_timed brackets the convergence instant with the first probe of the streak."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from meshcert.mesh import probe
from meshcert.mesh.adapter import Feature, Support
from meshcert.mesh.echo import EchoBatch, Exchange
from meshcert.mesh.suite import MeshEnv


@dataclass
class _Mesh:
    checked: list[str] = field(default_factory=list)

    def assert_config_accepted(self, namespace: str) -> None:
        self.checked.append(namespace)


def test_bounds_come_from_the_streaks_first_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["v1", "v2", "v2"])

    def fake_send(*_: Any, **__: Any) -> EchoBatch:
        v = next(answers)
        return EchoBatch([Exchange(0, code="200", version=v)])

    monkeypatch.setattr(probe, "send", fake_send)
    mesh = _Mesh()
    env = MeshEnv(mesh, None, "ns", "client", "", "run", 0.0)  # type: ignore[arg-type]
    since = probe.time.monotonic()
    check = lambda b: "" if b.versions["v2"] else "no v2"  # noqa: E731
    conv = probe.converge_batches_timed(env, "http://server/", check, what="v2", since=since, consecutive=2)
    bounds = conv.bounds
    assert bounds.attempts == 3 and conv.observed.versions == {"v2": 1}
    # The first probe (v1, wrong) ran before a 1 s poll interval; the streak began at the second.
    assert 0.9 <= bounds.lower <= bounds.upper < 5
    assert mesh.checked == ["ns"]


class _Partial:
    def support(self, feature: Feature) -> Support:
        return Support(feature, feature is not Feature.MIRRORING, "no mirror filter")


def test_unsupported_names_each_missing_feature() -> None:
    env = MeshEnv(_Partial(), None, "ns", "client", "", "run", 0.0)  # type: ignore[arg-type]
    assert probe.unsupported(env, Feature.HTTP) == ""
    assert probe.unsupported(env, Feature.HTTP, Feature.MIRRORING) == "mirroring: no mirror filter"
