"""Tests that need the machine to themselves, inside a lane of a parallel e2e run.

Why: `make e2e` runs several pytest sessions (lanes) at once, each on its own cluster; a test
marked ``exclusive`` (a client paced on a schedule) would measure the other lanes' CPU use, not
the system under test. Instead of a separate session with a cluster of its own after the lanes,
one lane runs its exclusive tests last and, before the first of them, waits until every other
lane has written its "done" file: the tests then run alone, on a cluster that is already up.

Each lane's pytest writes its own done file (``--lane-done``) when it ends, whatever its outcome,
after its cluster is down; the Makefile touches it again after the process exits, for a lane
that died before pytest could (a crash, a usage error). A done file that depended on the shell
alone was lost once: with ``set -e``, a failing lane's pipeline ended its subshell before the
``touch``, and the exclusive tests waited out the whole timeout for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from meshcert.errors import WaitTimeout

EXCLUSIVE = "exclusive"
#: Longest wait for the other lanes. Every lane took under 20 minutes in CI, and the core lane's
#: own tests take about 15 of them before its exclusive tests start, so a wait of half an hour
#: means a lane hangs: the exclusive tests then fail, naming the lanes that never ended.
LANES_TIMEOUT = 1800.0
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
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Seconds until every file in ``done_files`` exists; WaitTimeout naming the missing ones.

    ``timeout`` defaults to ``LANES_TIMEOUT`` as it is when called (tests shorten it)."""
    if timeout is None:
        timeout = LANES_TIMEOUT
    start = clock()
    while True:
        missing = [str(p) for p in done_files if not p.exists()]
        if not missing:
            return clock() - start
        if clock() - start >= timeout:
            raise WaitTimeout("the other e2e lanes to finish", timeout, f"not done: {', '.join(missing)}")
        sleep(POLL)


def write_lane_done(path: Path, *, exitstatus: int) -> None:
    """Mark this lane ended (the file's text: its pytest exit status, for whoever reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"exitstatus {exitstatus}\n")
