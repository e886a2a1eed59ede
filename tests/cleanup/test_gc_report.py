"""gc reports what it removed: a run record whose kind cluster is already gone names nothing."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from meshcert import gc
from meshcert.runs import ClusterRecord, RunRecord
from meshcert.settings import Settings


class _Kind:
    """KindCluster with node containers only for the names in ``alive``; records each down()
    (which, like the real one, says whether there were node containers to remove)."""

    alive: ClassVar[set[str]] = set()
    downed: ClassVar[list[str]] = []

    def __init__(self, *, settings: Settings, run_id: str, name: str) -> None:
        self.name = name

    def down(self) -> bool:
        self.downed.append(self.name)
        return self.name in self.alive


@pytest.fixture
def kind(monkeypatch: pytest.MonkeyPatch) -> type[_Kind]:
    monkeypatch.setattr(_Kind, "alive", set())
    monkeypatch.setattr(_Kind, "downed", [])
    monkeypatch.setattr(gc, "KindCluster", _Kind)
    return _Kind


def _record(*names: str) -> RunRecord:
    clusters = [ClusterRecord("kind", n, f"/tmp/{n}/kubeconfig", created=True) for n in names]
    return RunRecord(run_id="mc-0badc0de", pid=1, started=0.0, clusters=clusters)


def test_only_clusters_that_still_existed_are_reported(kind: type[_Kind]) -> None:
    kind.alive = {"mc-live"}
    report = gc.GcReport()
    gc._collect_record(Settings(state_dir=Path("/nonexistent")), _record("mc-live", "mc-gone"), report)
    assert report.containers == ["kind:mc-live"]
    # down() runs for both: a cluster without nodes may still have left its network and state dir
    assert kind.downed == ["mc-live", "mc-gone"]
    assert report.errors == []
