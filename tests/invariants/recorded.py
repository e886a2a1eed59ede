"""Load recorded API objects from fixtures/recorded (real camelCase shape, Kubernetes 1.34)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"


def load(name: str) -> Mapping[str, object]:
    data = json.loads((RECORDED / name).read_text())
    assert isinstance(data, dict)
    return data


def items(name: str) -> list[Mapping[str, object]]:
    data = load(name)
    raw = data.get("items", [data])
    assert isinstance(raw, list)
    return raw
