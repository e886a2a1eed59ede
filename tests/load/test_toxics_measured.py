"""Each toxic's effect, measured through the real toxiproxy-server (v2.12.0) on loopback.

Locust child → Toxiproxy → local HTTP server for latency and reset_peer; a plain client for
bandwidth and timeout, where one request's timing is the measurement. The `proxy` fixture fails
the test if any toxic is left on the server afterwards. Measured figures are printed (-s).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from meshcert.faults.toxics import toxic
from meshcert.faults.toxiproxy import (
    Bandwidth,
    Latency,
    Proxy,
    ResetPeer,
    Stream,
    Timeout,
    Toxic,
    ToxiproxyClient,
)
from meshcert.invariants.stats import wilson_interval
from meshcert.load.runner import run_load
from meshcert.load.spec import LoadSpec

#: Confidence of the intervals these tests assert on: 99.9 %, so a correct system fails a run
#: about once in a thousand rather than once in twenty (the report's own intervals use 95 %).
ASSERT_CONFIDENCE = 0.999


def test_latency_toxic_shifts_p50_by_its_latency(toxi: ToxiproxyClient, proxy: Proxy, tmp_path: Path) -> None:
    spec = LoadSpec(target=f"http://{proxy.listen}", rate=20, duration=3, users=10)
    base = run_load(spec, out_dir=tmp_path / "base", timeout=60)
    with toxic(toxi, proxy.name, Toxic(Latency(latency=100), stream=Stream.DOWNSTREAM)):
        hurt = run_load(spec, out_dir=tmp_path / "toxic", timeout=60)
    p50_base, p50_hurt = base.percentile(50), hurt.percentile(50)
    assert p50_base is not None and p50_hurt is not None
    shift = p50_hurt - p50_base
    print(
        f"\nMEASURED latency: p50 base {p50_base:.2f} ms (n={base.latency_ms.n}), "
        f"with 100 ms toxic {p50_hurt:.2f} ms (n={hurt.latency_ms.n}), shift {shift:.2f} ms"
    )
    assert base.failures == hurt.failures == 0
    for run in (base, hurt):
        # Every planned request is accounted for; on a loaded 2-core host the scheduler may miss
        # a slot (counted as late, never silently dropped), so require most, not all, were sent.
        assert run.ledger.planned == 60
        assert run.latency_ms.n + run.ledger.late + run.ledger.no_user == 60
        assert run.latency_ms.n >= 40  # two thirds: p50 of >= 40 samples is still well determined
    assert shift == pytest.approx(100.0, abs=15.0)


def test_reset_peer_error_ratio_matches_toxicity(toxi: ToxiproxyClient, proxy: Proxy, tmp_path: Path) -> None:
    toxicity = 0.3
    # Toxicity is drawn once per connection: a new connection per request makes it per request.
    spec = LoadSpec(target=f"http://{proxy.listen}", rate=50, duration=4, users=20, keep_alive=False)
    with toxic(toxi, proxy.name, Toxic(ResetPeer(timeout=0), stream=Stream.UPSTREAM, toxicity=toxicity)):
        r = run_load(spec, out_dir=tmp_path, timeout=60)
    ci = wilson_interval(r.failures, r.requests, confidence=ASSERT_CONFIDENCE)
    lo, hi = ci.lower, ci.upper
    print(
        f"\nMEASURED reset_peer: {r.failures}/{r.requests} failed = {r.error_ratio:.3f}, "
        f"{ASSERT_CONFIDENCE:.1%} Wilson CI [{lo:.3f}, {hi:.3f}], errors {r.errors}"
    )
    assert r.ledger.planned == 200 and r.requests >= 190  # a late tick or two on a busy box
    assert lo <= toxicity <= hi


def test_bandwidth_toxic_caps_throughput(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    rate_kb = 100  # KB/s, KB = 1000 bytes (toxics/bandwidth.go)
    size = 200_000  # 2 s at the cap: long enough that connection setup is noise
    with toxic(toxi, proxy.name, Toxic(Bandwidth(rate=rate_kb), stream=Stream.DOWNSTREAM)):
        start = time.perf_counter()
        body = requests.get(f"http://{proxy.listen}/bytes/{size}", timeout=30).content
        elapsed = time.perf_counter() - start
    throughput = len(body) / elapsed
    kbps = throughput / 1000
    print(f"\nMEASURED bandwidth: {len(body)} B in {elapsed:.3f} s = {kbps:.1f} KB/s (cap {rate_kb})")
    assert len(body) == size
    assert throughput == pytest.approx(rate_kb * 1000, rel=0.20)


def test_timeout_toxic_stalls_then_closes(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    stall_ms = 1000
    with toxic(toxi, proxy.name, Toxic(Timeout(timeout=stall_ms), stream=Stream.DOWNSTREAM)):
        start = time.perf_counter()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{proxy.listen}/", timeout=(2, 5))
        elapsed = time.perf_counter() - start
    print(f"\nMEASURED timeout({stall_ms} ms): request failed after {elapsed * 1000:.0f} ms")
    assert stall_ms / 1000 <= elapsed < 5


def test_timeout_zero_stalls_until_the_client_gives_up(toxi: ToxiproxyClient, proxy: Proxy) -> None:
    client_timeout = 0.5
    with toxic(toxi, proxy.name, Toxic(Timeout(timeout=0), stream=Stream.DOWNSTREAM)):
        start = time.perf_counter()
        with pytest.raises(requests.ReadTimeout):
            requests.get(f"http://{proxy.listen}/", timeout=(2, client_timeout))
        elapsed = time.perf_counter() - start
    print(
        f"\nMEASURED timeout(0): client read timeout {client_timeout} s fired after {elapsed * 1000:.0f} ms"
    )
    assert client_timeout <= elapsed < client_timeout + 1.0
