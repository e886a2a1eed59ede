"""docker pause of a node: runc's freeze timeout is tried again, anything else fails at once."""

from __future__ import annotations

import pytest
from docker.errors import APIError

from meshcert.errors import FaultError
from meshcert.faults import nodes

FREEZE = APIError("Cannot pause container 34f8: OCI runtime pause failed: unable to freeze: unknown")


class _Node:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def pause(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> _Node:
    fake = _Node([])
    monkeypatch.setattr(nodes.revert, "container", lambda _name: fake)
    monkeypatch.setattr(nodes.time, "sleep", lambda _s: None)
    return fake


def test_a_freeze_timeout_is_tried_again(node: _Node) -> None:
    node.errors = [FREEZE, FREEZE]
    assert nodes.pause_container("kind-worker2") == 3 and node.calls == 3


def test_freeze_timeouts_past_the_bound_fail_naming_the_node(node: _Node) -> None:
    node.errors = [FREEZE] * nodes.PAUSE_ATTEMPTS
    with pytest.raises(
        FaultError, match=r"docker pause kind-worker2: runc could not freeze it in 5 attempts"
    ):
        nodes.pause_container("kind-worker2")
    assert node.calls == nodes.PAUSE_ATTEMPTS


def test_any_other_error_fails_at_once(node: _Node) -> None:
    node.errors = [APIError("Container 34f8 is not running")]
    with pytest.raises(FaultError, match="not running"):
        nodes.pause_container("kind-worker2")
    assert node.calls == 1
