"""Parent-side API: run a load spec in Locust child processes and return a typed result.

Locust monkey-patches the interpreter with gevent on import, which would break pytest, the
Kubernetes client and threads in the harness process. So the harness never imports it: it
writes the spec to a file, starts ``python -m meshcert.load._child`` (one local process, or a
master plus ``spec.workers`` workers talking ZeroMQ over loopback), waits with a deadline, and
reads the child's result document. A crash or timeout becomes `LoadError` with the tail of the
child's stderr. A missed SLO is not an error: it is a verdict on the returned `LoadResult`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from meshcert.errors import LoadError
from meshcert.load.result import LoadResult, parse_child_result
from meshcert.load.spec import LoadSpec

CHILD_MODULE = "meshcert.load._child"
#: Allowance on top of the schedule and request timeout: Locust imports in ~1-2 s, workers
#: connect and users spawn in < 1 s locally; 60 s covers a 2-core box busy with Go builds.
_STARTUP_ALLOWANCE_S = 60.0
#: How long workers get to exit after the master is done (they exit on its quit message).
_WORKER_EXIT_S = 10.0
#: Lines of child stderr quoted in a LoadError.
_STDERR_TAIL = 30
_POLL_S = 0.1


def default_timeout(spec: LoadSpec) -> float:
    return spec.duration + spec.request_timeout + spec.connect_timeout + _STARTUP_ALLOWANCE_S


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no stderr)"
    return "\n".join(lines[-_STDERR_TAIL:]) or "(empty stderr)"


@dataclasses.dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    stderr: Path


def _spawn(name: str, argv: list[str], out_dir: Path) -> _Child:
    stderr = out_dir / f"{name}.stderr.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with stderr.open("wb") as err:
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=env, cwd=out_dir
            )
        except OSError as e:
            raise LoadError(f"cannot start load child {name}: {e}") from e
    return _Child(name, proc, stderr)


def _stop(children: list[_Child]) -> None:
    for c in children:
        if c.proc.poll() is None:
            c.proc.kill()
    for c in children:
        c.proc.wait()


def run_load(
    spec: LoadSpec, *, out_dir: Path, timeout: float | None = None, python: str = sys.executable
) -> LoadResult:
    """Run ``spec``; write spec.json, result.json, summary.json, history.csv into ``out_dir``.

    ``timeout`` bounds the whole run (default: duration + request/connect timeouts + 60 s).
    Raises `LoadError` if a child exits non-zero, produces no result, or overruns ``timeout``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.workers and spec.master_port == 0:
        spec = dataclasses.replace(spec, master_port=_free_port())
    spec_path = out_dir / "spec.json"
    raw_path = out_dir / "result.json"
    raw_path.unlink(missing_ok=True)
    spec.write(spec_path)
    base = [python, "-m", CHILD_MODULE, "--spec", str(spec_path)]
    limit = timeout if timeout is not None else default_timeout(spec)
    children: list[_Child] = []
    try:
        if spec.workers == 0:
            main = _spawn("local", [*base, "--role", "local", "--out", str(raw_path)], out_dir)
            children.append(main)
        else:
            main = _spawn("master", [*base, "--role", "master", "--out", str(raw_path)], out_dir)
            children.append(main)
            children += [
                _spawn(f"worker-{i}", [*base, "--role", "worker"], out_dir) for i in range(spec.workers)
            ]
        deadline = time.monotonic() + limit
        while main.proc.poll() is None:
            crashed = [c for c in children[1:] if c.proc.poll() not in (None, 0)]
            if crashed:
                c = crashed[0]
                raise LoadError(f"load {c.name} exited with {c.proc.returncode}:\n{_tail(c.stderr)}")
            if time.monotonic() >= deadline:
                raise LoadError(
                    f"load run exceeded its {limit:g} s timeout; {main.name} stderr:\n{_tail(main.stderr)}"
                )
            time.sleep(_POLL_S)
        if main.proc.returncode != 0 or not raw_path.is_file():
            raise LoadError(
                f"load {main.name} exited with {main.proc.returncode}"
                f"{'' if raw_path.is_file() else ' without a result'}:\n{_tail(main.stderr)}"
            )
        for c in children[1:]:
            try:
                c.proc.wait(timeout=_WORKER_EXIT_S)
            except subprocess.TimeoutExpired:
                c.proc.kill()
    finally:
        _stop(children)
    try:
        raw = json.loads(raw_path.read_text())
    except (OSError, ValueError) as e:
        raise LoadError(f"{raw_path}: unreadable load result: {e}") from e
    result = parse_child_result(raw, spec=spec, out_dir=out_dir)
    result.write()
    return result
