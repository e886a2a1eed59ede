"""Reading a mirror's count until it settles: stops when it stops growing, at n, or after the
last round (never waits forever)."""

from __future__ import annotations

from meshcert.mesh.mirroring import SETTLE, SETTLE_ROUNDS, marked_url, settled_count


def test_stops_when_the_count_stops_growing() -> None:
    slept: list[float] = []
    it = iter([3, 7, 7, 9])
    assert settled_count(lambda: next(it), 100, sleep=slept.append) == 7
    assert slept == [SETTLE] * 3


def test_stops_at_n_and_after_the_last_round() -> None:
    it = iter([5, 100])
    assert settled_count(lambda: next(it), 100, sleep=lambda _: None) == 100
    growing = iter(range(1, 100))
    slept: list[float] = []
    assert settled_count(lambda: next(growing), 1000, sleep=slept.append) == SETTLE_ROUNDS
    assert len(slept) == SETTLE_ROUNDS


def test_marked_url() -> None:
    assert marked_url("abc") == "http://server/?m=abc"
    assert marked_url("abc", "/slow", host="sink") == "http://sink/slow?m=abc"
