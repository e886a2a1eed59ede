"""The Locust side of a constant-arrival-rate run: ticket pool, dispatcher, user class, recording.

CHILD-PROCESS ONLY. Importing this module imports Locust, which gevent-monkey-patches the whole
interpreter (sockets, threads, time.sleep). It is imported solely by ``meshcert.load._child``,
which runs as ``python -m meshcert.load._child``; nothing the parent imports may import it.

How the open model maps onto Locust: ``spec.users`` FastHttpUsers each loop "wait for a ticket,
send one request". A dispatcher greenlet walks the planned schedule (arrival.py) and at each
planned time hands a ticket to one idle user, or — if it woke up too late or no user is idle —
records the miss by cause instead of sending.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from gevent.queue import Empty, Queue
from locust import FastHttpUser, constant, task
from locust.env import Environment

from meshcert.errors import LoadError
from meshcert.load.arrival import ArrivalLedger, Outcome, classify, planned_offsets
from meshcert.load.recorder import Recorder
from meshcert.load.spec import LoadSpec

#: Poll interval while draining in-flight requests; the drain bound is the request timeout.
_DRAIN_POLL_S = 0.02


class TicketPool:
    """Idle users wait here; the dispatcher wakes exactly one per ticket."""

    def __init__(self) -> None:
        self._idle: Queue[Event] = Queue()

    def wait_for_ticket(self) -> None:
        ready = Event()
        self._idle.put(ready)
        ready.wait()

    def idle(self) -> int:
        return int(self._idle.qsize())

    def hand_out(self) -> bool:
        try:
            ready = self._idle.get_nowait()
        except Empty:
            return False
        ready.set()
        return True


def make_user_class(spec: LoadSpec, pool: TicketPool) -> type[FastHttpUser]:
    """A FastHttpUser class bound to ``spec`` and ``pool`` (same class name in every process)."""
    headers = dict(spec.headers)
    if not spec.keep_alive:
        headers["Connection"] = "close"

    class MeshcertUser(FastHttpUser):
        host = spec.target
        network_timeout = spec.request_timeout
        connection_timeout = spec.connect_timeout
        wait_time = constant(0)

        @task
        def planned_request(self) -> None:
            pool.wait_for_ticket()
            self.client.request(spec.method, spec.path, headers=headers, name=spec.path)

    return MeshcertUser


def attach_recorder(env: Environment, recorder: Recorder) -> None:
    """Feed Locust's ``request`` event into ``recorder`` (failures keyed by status or error type)."""

    def on_request(
        response_time: float,
        response_length: int,
        exception: BaseException | None = None,
        response: Any = None,
        start_time: float | None = None,
        **_kw: Any,
    ) -> None:
        failure: str | None = None
        if exception is not None:
            status = getattr(response, "status_code", None)
            failure = (
                f"HTTP {status}" if isinstance(status, int) and status >= 400 else type(exception).__name__
            )
        recorder.record(
            start_time=start_time if start_time is not None else time.time(),
            response_time_ms=float(response_time),
            length=int(response_length or 0),
            failure=failure,
        )

    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]


def wait_until(predicate: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(_DRAIN_POLL_S)
    return True


def dispatch(
    spec: LoadSpec, pool: TicketPool, ledger: ArrivalLedger, *, t0_wall: float, share: int, shares: int
) -> float:
    """Walk this process's share of the plan from ``t0_wall``; return the schedule's wall length."""
    # The plan is in wall-clock time (shared by workers); pacing uses the monotonic clock.
    base = time.perf_counter() + (t0_wall - time.time())
    offsets = planned_offsets(spec.rate, spec.duration, share=share, shares=shares)
    for off in offsets:
        delay = base + off - time.perf_counter()
        if delay > 0:
            gevent.sleep(delay)
        now = time.perf_counter() - base
        outcome = classify(off, now, lag_bound=spec.lag_bound, free_user=pool.idle() > 0)
        if outcome is Outcome.SENT and not pool.hand_out():
            outcome = Outcome.NO_USER  # pragma: no cover - cooperative scheduling: cannot change
        ledger.record(outcome, max(0.0, now - off))
    return time.perf_counter() - base


def drain(pool: TicketPool, *, users: int, spec: LoadSpec) -> bool:
    """Wait until every user is idle again (all sent requests finished or timed out)."""
    bound = spec.request_timeout + spec.connect_timeout + 1.0
    return wait_until(lambda: pool.idle() >= users, timeout=bound)


def disable_transport_retries() -> None:
    """Make geventhttpclient fail a request whose connection closes instead of re-sending it.

    Its HTTPClient.request retries idempotent methods after a reset or close by asking the
    module function ``_may_retry_after_send_error`` (geventhttpclient 2.6 client.py); answering
    "no" is the only switch it offers. Safe here: this process is a dedicated load child.
    """
    import geventhttpclient.client as ghc

    if not callable(getattr(ghc, "_may_retry_after_send_error", None)):
        raise LoadError(
            "geventhttpclient no longer has _may_retry_after_send_error: cannot disable its "
            "transport retries; set transport_retries=true or adapt meshcert.load._engine"
        )
    setattr(ghc, "_may_retry_after_send_error", lambda method: False)  # noqa: B010


def new_environment(spec: LoadSpec, pool: TicketPool) -> Environment:
    if not spec.transport_retries:
        disable_transport_retries()
    return Environment(user_classes=[make_user_class(spec, pool)], host=spec.target)
