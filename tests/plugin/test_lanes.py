"""Exclusive tests inside a lane: they run last, and only after the other lanes' done files exist."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from meshcert import lanes
from meshcert.errors import WaitTimeout
from meshcert.lanes import POLL, exclusive_last, parse_done_files, wait_for_lanes_done

NO_ALLURE = ("-p", "no:allure_pytest")


class _Item:
    def __init__(self, name: str, exclusive: bool) -> None:
        self.name, self.exclusive = name, exclusive

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "exclusive" and self.exclusive else None


def test_exclusive_items_move_to_the_end_in_order() -> None:
    items = [_Item("x1", True), _Item("a", False), _Item("x2", True), _Item("b", False)]
    exclusive_last(items)
    assert [i.name for i in items] == ["a", "b", "x1", "x2"]


def test_parse_done_files() -> None:
    assert parse_done_files(" a/x , ,b") == [Path("a/x"), Path("b")]
    assert parse_done_files("") == []


def test_wait_returns_when_every_file_exists(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s
        if now[0] >= 3 * POLL:
            a.touch()
        if now[0] >= 5 * POLL:
            b.touch()

    assert wait_for_lanes_done([a, b], timeout=60, clock=lambda: now[0], sleep=sleep) == 5 * POLL


def test_wait_times_out_naming_the_missing_lane(tmp_path: Path) -> None:
    (tmp_path / "a").touch()
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(WaitTimeout, match=r"not done: .*/b$"):
        wait_for_lanes_done([tmp_path / "a", tmp_path / "b"], timeout=10, clock=lambda: now[0], sleep=sleep)


SUITE = """
import pytest

@pytest.mark.exclusive
def test_paced():
    pass

def test_first():
    pass
"""


def test_plugin_runs_exclusive_last_after_the_other_lanes(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    exclusive: paced\n")
    pytester.makepyfile(SUITE)
    done = tmp_path / "mesh-a.done"
    timer = threading.Timer(1.0, done.touch)
    timer.start()
    try:
        # A subprocess, without -s: the progress lines must show through pytest's capture.
        result = pytester.runpytest_subprocess("-v", *NO_ALLURE, f"--exclusive-after={done}")
    finally:
        timer.cancel()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_first PASSED*",
            f"*exclusive tests wait for the other lanes: {done}*",
            "*other lanes done after * s; exclusive tests run alone now*",
            "*test_paced PASSED*",
        ]
    )


def test_without_the_option_order_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    exclusive: paced\n")
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-v", *NO_ALLURE)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_paced PASSED*", "*test_first PASSED*"])


TWO_EXCLUSIVE = """
import pytest

def test_first():
    pass

@pytest.mark.exclusive
def test_paced_a():
    pass

@pytest.mark.exclusive
def test_paced_b():
    pass
"""


def test_a_lane_that_never_ends_fails_every_exclusive_test_after_one_wait(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lanes, "LANES_TIMEOUT", 0.5)
    pytester.makeini("[pytest]\nmarkers =\n    exclusive: paced\n")
    pytester.makepyfile(TWO_EXCLUSIVE)
    result = pytester.runpytest("-v", "-s", *NO_ALLURE, f"--exclusive-after={tmp_path / 'mesh-b'}")
    result.assert_outcomes(passed=1, errors=2)
    assert result.stdout.str().count("exclusive tests wait for the other lanes") == 1  # one wait, not two
    result.stdout.fnmatch_lines(["*ERROR at setup of test_paced_b*", "*not done: */mesh-b"])


@pytest.mark.parametrize(("body", "status"), [("pass", 0), ("assert False", 1)])
def test_the_lane_writes_its_done_file_pass_or_fail(
    pytester: pytest.Pytester, tmp_path: Path, body: str, status: int
) -> None:
    pytester.makepyfile(f"def test_one():\n    {body}\n")
    done = tmp_path / "lanes" / "mesh-a"
    result = pytester.runpytest(*NO_ALLURE, f"--lane-done={done}")
    assert result.ret == status
    assert done.read_text() == f"exitstatus {status}\n"
