"""Latency Toxiproxy adds with no toxics: p50/p99 of direct vs proxied requests on loopback.

Not a test. One keep-alive HTTP/1.1 connection each way (http.client), requests sent one at a
time, alternating blocks of direct and proxied requests so drift (other processes on the box)
hits both equally. Percentiles are exact over all samples (nearest rank); sample sizes are in
the output. Writes reports/benchmarks/toxiproxy_overhead.json and prints it.

Usage: .venv/bin/python benchmarks/toxiproxy_overhead.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from load.localhttp import LocalHTTPServer  # noqa: E402
from meshcert.faults.server import start_toxiproxy  # noqa: E402
from meshcert.faults.toxiproxy import ProxyConfig  # noqa: E402
from meshcert.runid import new_run_id  # noqa: E402
from meshcert.settings import load_settings  # noqa: E402
from meshcert.toolchain.pins import TOXIPROXY_VERSION  # noqa: E402

#: Requests per alternating block: long enough to keep the connection warm, short enough that
#: load from other processes lands on both sides.
BLOCK = 100


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[max(1, math.ceil(q / 100 * len(s))) - 1]


def _timed(conn: http.client.HTTPConnection) -> float:
    start = time.perf_counter()
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    elapsed = (time.perf_counter() - start) * 1000.0
    if resp.status != 200:
        raise RuntimeError(f"unexpected status {resp.status}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000, help="per path (direct and proxied)")
    args = ap.parse_args()
    direct: list[float] = []
    proxied: list[float] = []
    with tempfile.TemporaryDirectory() as state, LocalHTTPServer() as up:
        settings = load_settings()
        with start_toxiproxy(run_id=new_run_id(), state_dir=Path(state), cache_dir=settings.cache_dir) as tp:
            client = tp.client()
            proxy = client.create_proxy(ProxyConfig("bench", f"127.0.0.1:{up.port}"))
            d = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
            p = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
            for _ in range(BLOCK):  # warm both paths up (connection setup, caches)
                _timed(d), _timed(p)
            while len(direct) < args.requests:
                direct += [_timed(d) for _ in range(BLOCK)]
                proxied += [_timed(p) for _ in range(BLOCK)]
            d.close()
            p.close()
            client.delete_proxy("bench")
            client.close()
    d50, d99, p50, p99 = _pct(direct, 50), _pct(direct, 99), _pct(proxied, 50), _pct(proxied, 99)
    figures = {
        "benchmark": "toxiproxy_overhead",
        "toxiproxy": TOXIPROXY_VERSION,
        "toxics": [],
        "method": f"sequential keep-alive GET / (2-byte body), alternating blocks of {BLOCK}",
        "direct_ms": {"n": len(direct), "p50": d50, "p99": d99},
        "proxied_ms": {"n": len(proxied), "p50": p50, "p99": p99},
        "added_ms": {"p50": p50 - d50, "p99": p99 - d99},
    }
    out = ROOT / "reports" / "benchmarks" / "toxiproxy_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
