"""Convergence, not retries: N consecutive correct observations within a deadline.

Why: STYLE.md §5 and Gateway API conformance (conformance/utils/http: MaxTimeToConsistency and
RequiredConsecutiveSuccesses): a check that holds "eventually" is polled until it has held N
times in a row, and the time until the final streak began is *recorded* (M6, E1, E9), never
hidden behind a rerun. A failure resets the streak; the deadline bounds the whole wait.

Pure: the probe (supplied by the kube/mesh layers) does the I/O; `clock` and `sleep` are
injectable, so tests run without sleeping. Exceptions from the probe propagate unchanged: the
caller decides which errors are "not yet" (return a failed `Observation`) and which are fatal.
`converge_stream` is the watch-driven variant: it consumes an iterator of observations (e.g.
one per watch event) instead of polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from meshcert.errors import WaitTimeout

T = TypeVar("T")

# Gateway API's conformance default for RequiredConsecutiveSuccesses is 3: one success can be luck
# (a stale backend answering right), three in a row at `interval` apart rarely are.
DEFAULT_CONSECUTIVE = 3
DEFAULT_INTERVAL = 1.0  # seconds; a probe per second is cheap and resolves convergence to ~1 s


@dataclass(frozen=True)
class Observation(Generic[T]):
    """One probe result: whether the condition holds, what was seen, and a diff if it does not."""

    ok: bool
    observed: T
    diff: str = ""


@dataclass(frozen=True)
class Converged(Generic[T]):
    """The final streak: when it began (seconds after start), attempts made, last observation."""

    time_to_converge: float
    elapsed: float
    attempts: int
    observed: T


def _as_observation(result: Observation[T] | tuple[bool, T]) -> Observation[T]:
    if isinstance(result, Observation):
        return result
    ok, observed = result
    return Observation(ok, observed)


def _timeout(what: str, timeout: float, last: Observation[T] | None, attempts: int) -> WaitTimeout:
    if last is None:
        state = f"no observation in {attempts} attempt(s)"
    else:
        state = f"{last.observed!r}" + (f"; {last.diff}" if last.diff else "")
    return WaitTimeout(what, timeout, state)


def converge(
    probe: Callable[[], Observation[T] | tuple[bool, T]],
    *,
    what: str,
    timeout: float,
    consecutive: int = DEFAULT_CONSECUTIVE,
    interval: float = DEFAULT_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Converged[T]:
    """Poll ``probe`` every ``interval`` s until it succeeds ``consecutive`` times in a row.

    Every probe of the streak must *start* before the deadline (start + ``timeout``); otherwise
    raise WaitTimeout carrying the last observed state and its diff. ``what`` names the condition
    for the message ("EndpointSlices of default/web to equal Ready pods").
    """
    if consecutive < 1:
        raise ValueError(f"consecutive must be >= 1, got {consecutive}")
    start = clock()
    deadline = start + timeout
    attempts, streak = 0, 0
    streak_start = start
    last: Observation[T] | None = None
    while True:
        probed_at = clock()
        if probed_at > deadline:
            raise _timeout(what, timeout, last, attempts)
        last = _as_observation(probe())
        attempts += 1
        if last.ok:
            if streak == 0:
                streak_start = probed_at
            streak += 1
            if streak >= consecutive:
                return Converged(streak_start - start, clock() - start, attempts, last.observed)
        else:
            streak = 0
        sleep(interval)


def converge_value(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    consecutive: int = 1,
    interval: float = DEFAULT_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Converged[T]:
    """`converge` for probes that return the awaited value, or None for "not yet"."""

    def wrapped() -> Observation[T | None]:
        value = probe()
        return Observation(value is not None, value)

    result = converge(
        wrapped,
        what=what,
        timeout=timeout,
        consecutive=consecutive,
        interval=interval,
        clock=clock,
        sleep=sleep,
    )
    assert result.observed is not None  # ok implies a value
    return Converged(result.time_to_converge, result.elapsed, result.attempts, result.observed)


def converge_stream(
    observations: Iterable[Observation[T]],
    *,
    what: str,
    timeout: float,
    consecutive: int = 1,
    clock: Callable[[], float] = time.monotonic,
) -> Converged[T]:
    """Watch-driven: consume observations (one per event) until ``consecutive`` ok in a row.

    The iterator must not block past the deadline on its own (give the watch a timeout); an
    exhausted iterator or an observation arriving after the deadline raises WaitTimeout.
    """
    start = clock()
    deadline = start + timeout
    attempts, streak = 0, 0
    streak_start = start
    last: Observation[T] | None = None
    for obs in observations:
        now = clock()
        if now > deadline:
            break
        last, attempts = obs, attempts + 1
        if obs.ok:
            streak_start = now if streak == 0 else streak_start
            streak += 1
            if streak >= consecutive:
                return Converged(streak_start - start, now - start, attempts, obs.observed)
        else:
            streak = 0
    raise _timeout(what, timeout, last, attempts)
