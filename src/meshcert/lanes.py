"""Tests that need the machine to themselves, inside a lane of a parallel e2e run.

Why: `make e2e` runs several pytest sessions (lanes) at once, each on its own cluster; a test
marked ``exclusive`` (a client paced on a schedule) would measure the other lanes' CPU use, not
the system under test. Instead of a separate session with a cluster of its own after the lanes,
one lane runs its exclusive tests last and, before the first of them, waits until every other
lane has written its "done" file: the tests then run alone, on a cluster that is already up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from meshcert.errors import WaitTimeout

EXCLUSIVE = "exclusive"
#: Longest wait for the other lanes: the whole e2e run fits in CI's 90 minutes, so an hour is
#: only reached if a lane hangs, and then the exclusive tests fail with the lanes still missing.
LANES_TIMEOUT = 3600.0
#: A lane's end is seen within this many seconds; nothing else is done while waiting.
POLL = 2.0


class _Item(Protocol):
    def get_closest_marker(self, name: str) -> object | None: ...


ItemT = TypeVar("ItemT", bound=_Item)


def exclusive_last(items: list[ItemT]) -> None:
    """Move the items marked exclusive to the end, keeping the order within both groups."""
    items.sort(key=lambda i: i.get_closest_marker(EXCLUSIVE) is not None)


def parse_done_files(value: str) -> list[Path]:
    """``--exclusive-after a,b`` → [Path(a), Path(b)] (empty entries ignored)."""
    return [Path(p.strip()) for p in value.split(",") if p.strip()]


def wait_for_lanes_done(
    done_files: Sequence[Path],
    *,
    timeout: float = LANES_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Seconds until every file in ``done_files`` exists; WaitTimeout naming the missing ones."""
    start = clock()
    while True:
        missing = [str(p) for p in done_files if not p.exists()]
        if not missing:
            return clock() - start
        if clock() - start >= timeout:
            raise WaitTimeout("the other e2e lanes to finish", timeout, f"not done: {', '.join(missing)}")
        sleep(POLL)
