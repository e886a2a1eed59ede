"""Entry point of a Locust load process: ``python -m meshcert.load._child --role ... --spec FILE``.

CHILD-PROCESS ONLY (it imports Locust, which monkey-patches the interpreter). Roles:

- ``local``: one process runs users and dispatcher, writes the result document to ``--out``.
- ``master``: a Locust MasterRunner; waits for ``spec.workers`` workers, spawns the users on
  them, broadcasts the schedule start time, collects one document per worker, merges them and
  writes the result to ``--out``.
- ``worker``: a Locust WorkerRunner connected to ``spec.master_host:master_port``; runs its share
  of the plan (share = the worker index the master assigned) and sends its document back.

The same entry point and spec file serve local processes and Locust pods (load/incluster.py).
Exit codes: 0 success, 2 a run error (message on stderr). A process whose parent dies exits on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

# Locust first: it must monkey-patch before anything else touches sockets or threads.
import locust  # noqa: F401

# isort: split
import gevent
from locust.rpc.protocol import Message
from locust.runners import MasterRunner, WorkerRunner

from meshcert.errors import LoadError
from meshcert.load._engine import TicketPool, attach_recorder, dispatch, drain, new_environment, wait_until
from meshcert.load.arrival import ArrivalLedger
from meshcert.load.recorder import Recorder, merge_documents
from meshcert.load.spec import LoadSpec

#: Users spawn instantly (they only wait for tickets), so spawn them all at once.
_SPAWN_RATE = 100_000.0
#: Delay between deciding to start and the first planned request, so every process is waiting
#: when it comes; covers a message round trip to workers and users re-queuing on a busy box.
_START_MARGIN_LOCAL_S = 0.2
_START_MARGIN_DISTRIBUTED_S = 1.0
#: How long all users may take to become idle (ready for tickets) after spawning.
_USERS_READY_S = 10.0
#: How often a child checks that its parent is still alive.
_PARENT_POLL_S = 0.5
_GO = "meshcert_go"
_PART = "meshcert_part"


_STARTED = time.monotonic()


def _say(role: str, message: str) -> None:
    """One timestamped progress line on stderr: what a pod's log (and a LoadError's tail) shows."""
    print(f"meshcert load {role} +{time.monotonic() - _STARTED:.1f}s: {message}", file=sys.stderr, flush=True)


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _watch_parent() -> None:
    """Exit if the parent that started us dies (it can no longer collect or stop us)."""
    parent = os.getppid()
    if parent == 1:  # started by init (e.g. as a pod's main process): nothing to watch
        return

    def loop() -> None:
        while os.getppid() == parent:
            gevent.sleep(_PARENT_POLL_S)
        os._exit(3)

    gevent.spawn(loop)


def _run_share(
    spec: LoadSpec, pool: TicketPool, recorder: Recorder, *, users: int, t0: float, share: int, shares: int
) -> dict[str, Any]:
    if not wait_until(lambda: pool.idle() >= users, timeout=_USERS_READY_S):
        raise LoadError(f"only {pool.idle()} of {users} users became ready in {_USERS_READY_S:g} s")
    recorder.t0 = t0
    ledger = ArrivalLedger()
    schedule = dispatch(spec, pool, ledger, t0_wall=t0, share=share, shares=shares)
    drain(pool, users=users, spec=spec)
    return recorder.document(ledger=ledger, schedule_seconds=schedule, cpu_seconds=_cpu_seconds())


def run_local(spec: LoadSpec) -> dict[str, Any]:
    pool, recorder = TicketPool(), Recorder()
    env = new_environment(spec, pool)
    attach_recorder(env, recorder)
    runner = env.create_local_runner()
    try:
        runner.start(spec.users, spawn_rate=_SPAWN_RATE, wait=True)
        t0 = time.time() + _START_MARGIN_LOCAL_S
        return _run_share(spec, pool, recorder, users=spec.users, t0=t0, share=0, shares=1)
    finally:
        runner.quit()


def run_master(spec: LoadSpec) -> dict[str, Any]:
    env = new_environment(spec, TicketPool())
    bind = spec.master_bind_host or spec.master_host
    runner = env.create_master_runner(master_bind_host=bind, master_bind_port=spec.master_port)
    assert isinstance(runner, MasterRunner)
    parts: list[dict[str, Any]] = []
    failures: list[str] = []

    def on_part(environment: Any, msg: Message, **_kw: Any) -> None:
        data = msg.data
        if isinstance(data, dict) and "error" in data:
            failures.append(str(data["error"]))
        else:
            parts.append(data)

    runner.register_message(_PART, on_part)
    _say("master", f"listening on {bind}:{spec.master_port}, waiting for {spec.workers} worker(s)")
    try:
        if not wait_until(
            lambda: len(runner.clients.ready) >= spec.workers, timeout=spec.worker_connect_timeout
        ):
            raise LoadError(
                f"only {len(runner.clients.ready)} of {spec.workers} workers connected to "
                f"{spec.master_host}:{spec.master_port} within {spec.worker_connect_timeout:g} s"
            )
        _say("master", f"{len(runner.clients.ready)} worker(s) connected; spawning {spec.users} users")
        runner.start(spec.users, spawn_rate=_SPAWN_RATE)
        runner.send_message(_GO, {"t0": time.time() + _START_MARGIN_DISTRIBUTED_S})
        _say("master", f"schedule starts in {_START_MARGIN_DISTRIBUTED_S:g} s")
        bound = _START_MARGIN_DISTRIBUTED_S + _USERS_READY_S + spec.duration + spec.request_timeout + 10.0
        done = wait_until(lambda: len(parts) + len(failures) >= spec.workers, timeout=bound)
        _say("master", f"{len(parts)} part(s), {len(failures)} failure(s) received")
        if failures:
            raise LoadError("worker(s) failed: " + "; ".join(failures))
        if not done:
            raise LoadError(f"only {len(parts)} of {spec.workers} workers reported within {bound:g} s")
        return merge_documents(parts, extra_cpu_seconds=_cpu_seconds())
    finally:
        runner.quit()


def run_worker(spec: LoadSpec) -> None:
    pool, recorder = TicketPool(), Recorder()
    env = new_environment(spec, pool)
    attach_recorder(env, recorder)
    _say("worker", f"connecting to {spec.master_host}:{spec.master_port}")
    runner = env.create_worker_runner(master_host=spec.master_host, master_port=spec.master_port)
    assert isinstance(runner, WorkerRunner)
    _say("worker", f"connected as index {runner.worker_index}")

    def on_go(environment: Any, msg: Message, **_kw: Any) -> None:
        try:
            share = runner.worker_index
            if not 0 <= share < spec.workers:
                raise LoadError(f"master assigned worker index {share}, expected 0..{spec.workers - 1}")
            users = sum(runner.user_classes_count.values())
            t0 = float(msg.data["t0"])
            _say("worker", f"index {share}: go with {users} users, t0 in {t0 - time.time():+.2f} s")
            doc = _run_share(spec, pool, recorder, users=users, t0=t0, share=share, shares=spec.workers)
            _say("worker", f"index {share}: sent {doc['ledger']['sent']} of {doc['ledger']['planned']}")
            runner.send_message(_PART, doc)
        except Exception as e:  # report any failure to the master instead of hanging it
            runner.send_message(_PART, {"error": f"worker {runner.worker_index}: {type(e).__name__}: {e}"})

    runner.register_message(_GO, on_go, concurrent=True)
    runner.greenlet.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshcert.load._child", description=__doc__)
    parser.add_argument("--role", choices=("local", "master", "worker"), required=True)
    parser.add_argument("--spec", type=Path, required=True, help="LoadSpec JSON file")
    parser.add_argument("--out", type=Path, help="result document (local and master roles)")
    args = parser.parse_args(argv)
    _watch_parent()
    try:
        spec = LoadSpec.read(args.spec)
        if args.role == "worker":
            run_worker(spec)
            return 0
        if args.out is None:
            raise LoadError(f"--out is required for role {args.role}")
        doc = run_local(spec) if args.role == "local" else run_master(spec)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc) + "\n")
        os.replace(tmp, args.out)
        return 0
    except LoadError as e:
        print(f"meshcert load {args.role}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
