"""Locust throughput per core: FastHttpUser in one load process against a local HTTP server.

Not a test. Runs the harness's own path (run_load → Locust child, open-model scheduler) at a
target rate well above what one process can send, so the achieved rate is the process's
capacity, and divides requests by the child's CPU seconds (user + system) to get requests per
CPU-second ("per core"). The upstream is the tests' threaded http.server on 127.0.0.1, which
shares the same cores: on a 2-core box the figure is a lower bound. Writes
reports/benchmarks/locust_rps.json and prints it.

Usage: .venv/bin/python benchmarks/locust_rps.py [--rate 3000] [--duration 8] [--users 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' tiny local HTTP server

from load.localhttp import LocalHTTPServer  # noqa: E402
from meshcert.load.runner import run_load  # noqa: E402
from meshcert.load.spec import LoadSpec  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=3000.0, help="target req/s, above one process's capacity")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--users", type=int, default=50)
    args = ap.parse_args()
    with LocalHTTPServer() as server, tempfile.TemporaryDirectory() as tmp:
        spec = LoadSpec(target=server.url, rate=args.rate, duration=args.duration, users=args.users)
        r = run_load(spec, out_dir=Path(tmp), timeout=args.duration + 120)
    figures = {
        "benchmark": "locust_rps",
        "user_class": "FastHttpUser",
        "load_processes": 1,
        "host_cpus": os.cpu_count(),
        "target_rate": args.rate,
        "duration_s": args.duration,
        "users": args.users,
        "planned": r.ledger.planned,
        "sent": r.ledger.sent,
        "missed_late": r.ledger.late,
        "missed_no_user": r.ledger.no_user,
        "completed": r.requests,
        "failures": r.failures,
        "achieved_rps": round(r.achieved_rate, 1),
        "child_cpu_seconds": round(r.cpu_seconds, 3),
        "rps_per_core": round(r.requests / r.cpu_seconds, 1) if r.cpu_seconds else None,
        "latency_ms": {"p50": r.percentile(50), "p99": r.percentile(99), "n": r.latency_ms.n},
        "note": "upstream is a Python threaded http.server on the same cores; rps is a lower bound",
    }
    out = ROOT / "reports" / "benchmarks" / "locust_rps.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
