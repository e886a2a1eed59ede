"""Steady-state probes of chaos experiments: each returns a `ProbeResult` with its evidence.

Traffic is measured from inside the cluster (STYLE §8) with ``testapp load`` in a client pod:
an open-model steady rate, one connection per request (``--keepalive=false``) so the Service
spreads requests over its endpoints and a dead endpoint shows up as failures rather than
hiding behind one kept-alive connection. A ratio carries its sample size and Wilson interval
(DESIGN §4, invariants.stats).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient, DiscoveryV1Api

from meshcert.errors import FaultError, MeshcertError
from meshcert.faults.experiment import Probe
from meshcert.invariants.stats import wilson_interval
from meshcert.kube.client import call
from meshcert.kube.exec import _last_json_line, run_client_pod

#: Default probe load: 20 req/s for 100 requests = 5 s, enough to see a 1 % error ratio's order
#: of magnitude and short enough to poll for recovery.
DEFAULT_RATE = 20.0
DEFAULT_COUNT = 100
#: Per-request timeout: the test app answers in ~1 ms; 2 s separates "slow" from "dead".
DEFAULT_TIMEOUT_S = 2.0


@dataclass
class ProbeResult:
    probe: str
    ok: bool
    detail: str
    at: float = field(default_factory=time.time)
    n: int | None = None
    successes: int | None = None
    ratio: float | None = None
    ci95: tuple[float, float] | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


def _url(probe: Probe, namespace: str, proxy_url: str | None) -> str:
    p = probe.params
    if p.get("via_toxiproxy"):
        if proxy_url is None:
            raise FaultError(f"{probe.where}: via_toxiproxy needs an active 'toxic' fault")
        base = proxy_url
    else:
        base = f"http://{p['service']}.{namespace}.svc.cluster.local:{int(str(p.get('port', 80)))}"
    return base + str(p.get("path", "/"))


def load_summary(
    api: ApiClient, namespace: str, *, url: str, rate: float, count: int, timeout_s: float, run_id: str
) -> dict[str, Any]:
    """``testapp load`` with one connection per request; its JSON summary."""
    args = ["load", "--url", url, "--rate", str(rate), "--count", str(count),
            "--timeout", f"{timeout_s}s", "--keepalive=false"]  # fmt: skip
    budget = count / rate + timeout_s + 120  # send time + last reply + pod start on a busy host
    result = run_client_pod(api, namespace, args, run_id=run_id, timeout=budget)
    summary = _last_json_line(result.output, f"testapp load {url}")
    if not isinstance(summary, dict):
        raise FaultError(f"testapp load {url}: expected a JSON object, got {summary!r}")
    return summary


def judge_latency(params: Mapping[str, object], res: ProbeResult, *, replies: int) -> tuple[bool, str]:
    """A latency probe's verdict: the percentile within [min_ms, max_ms] over at least one reply.

    ``min_ms`` is how an experiment proves its fault showed up (a 100 ms latency toxic cannot
    answer sooner); ``max_ms`` that it did no more than that.
    """
    value = res.p50_ms if params["percentile"] == "p50" else res.p99_ms
    low, high = float(str(params.get("min_ms", 0))), float(str(params["max_ms"]))
    ok = value is not None and low <= value <= high and replies > 0
    wanted = f"{low:g}..{high:g}" if low else f"<= {high:g}"
    shown = "none" if value is None else f"{value:.1f} ms"
    return ok, f"{params['percentile']} {shown} ({wanted} ms wanted) over {replies} replies"


def run_probe(
    api: ApiClient, namespace: str, probe: Probe, *, run_id: str, proxy_url: str | None = None
) -> ProbeResult:
    """Run one probe; a harness failure (pod never ran) is a failed probe with the reason."""
    try:
        return _run(api, namespace, probe, run_id=run_id, proxy_url=proxy_url)
    except MeshcertError as e:
        return ProbeResult(probe.kind, False, f"probe error: {e}")


def _run(api: ApiClient, namespace: str, probe: Probe, *, run_id: str, proxy_url: str | None) -> ProbeResult:
    p = probe.params
    if probe.kind in ("success_ratio", "latency"):
        s = load_summary(
            api, namespace, url=_url(probe, namespace, proxy_url),
            rate=float(str(p.get("rate", DEFAULT_RATE))), count=int(str(p.get("count", DEFAULT_COUNT))),
            timeout_s=float(str(p.get("timeout_s", DEFAULT_TIMEOUT_S))), run_id=run_id,
        )  # fmt: skip
        n, ok_n = int(s.get("sent", 0)), int(s.get("ok", 0))
        ci = wilson_interval(ok_n, n) if n else None
        res = ProbeResult(
            probe.kind, False, "", n=n, successes=ok_n, ratio=ok_n / n if n else None,
            ci95=(ci.lower, ci.upper) if ci else None, p50_ms=float(s.get("p50_ms", 0)),
            p99_ms=float(s.get("p99_ms", 0)),
        )  # fmt: skip
        if probe.kind == "success_ratio":
            bound = float(str(p["min_ratio"]))
            res.ok = res.ratio is not None and res.ratio >= bound
            res.detail = f"{ok_n}/{n} ok (>= {bound:.3f} wanted; 95% CI {ci}); errors {s.get('errors')}"
        else:
            res.ok, res.detail = judge_latency(p, res, replies=ok_n)
        return res
    if probe.kind == "endpoint_count":
        disc = DiscoveryV1Api(api)
        slices = call("list endpointslices", disc.list_namespaced_endpoint_slice, namespace,
                      label_selector=f"kubernetes.io/service-name={p['service']}").items  # fmt: skip
        ready = {
            addr for s in slices for ep in s.endpoints or []
            if ep.conditions is None or ep.conditions.ready is not False for addr in ep.addresses
        }  # fmt: skip
        lo, hi = int(str(p.get("min", 1))), int(str(p.get("max", 1 << 30)))
        return ProbeResult(probe.kind, lo <= len(ready) <= hi, f"{len(ready)} ready endpoints ({lo}..{hi})",
                           n=len(ready))  # fmt: skip
    module, _, name = str(p["callable"]).partition(":")
    fn = getattr(importlib.import_module(module), name)
    ok, detail = fn(api, namespace, **dict(p.get("args") or {}))  # type: ignore[call-overload]
    return ProbeResult("custom", bool(ok), str(detail))
