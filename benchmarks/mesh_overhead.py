"""Mesh overhead: echo service latency with and without sidecars at fixed rates, and sidecar CPU/memory.

Not a test: it measures, it does not judge. Two namespaces on the target cluster hold the same
echo server (1 replica) and echo client: one injected (client and server each with an
istio-proxy sidecar, mTLS between them, PERMISSIVE default), one not. For each repeat and rate,
the echo client in the client pod sends rate x duration requests to http://server/ paced by its
``--qps`` ticker, each with a 1 KB request header the server echoes back in its body (≈1 KB each
way), once per namespace, the order alternating per repeat. Per run: p50/p90/p99 of the client's
per-request latency (new TCP connection per request, as the echo client always does), status
counts and the most requests in flight (20 = the client's own limit, i.e. the run could not keep
its pace). Sidecar CPU and memory come from the node's CRI stats (`crictl stats`, cgroup
usage_usec and working set) read just before and after each injected run: CPU-seconds per run,
as average cores over the nominal duration and as ms CPU per 1000 requests.

Per rate the report gives Δp50/Δp90/Δp99 = mean over repeats of (mesh - plain) with a Student-t
95 % interval (and a bootstrap one as a cross-check; see meshcert.mesh.overhead).
Needs: a kind cluster with the reference mesh installed (`meshcert mesh install NAME`); the node
containers are read with docker exec. Output: reports/benchmarks/mesh_overhead.json.

The client is exec'd with crictl in the kind node by default (``--exec node``): it prints ~3 KB
per answer after the run, and moving 30 MB per 1000 req/s run through the API server's exec stream
took minutes on a loaded host; ``--exec api`` uses the API server anyway. A run whose answers
came back while requests queued behind the client's 20 slots is flagged ``client_limited`` (with
the share of such answers): it did not hold the nominal rate, and the queueing is not in its
latencies, so its percentiles describe a lower effective rate.

Usage: .venv/bin/python benchmarks/mesh_overhead.py --kubeconfig PATH
           [--rates 200,500,1000] [--repeats 5] [--duration 10] [--exec node|api] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from kubernetes.client import ApiClient, CoreV1Api

from meshcert.errors import MeshcertError
from meshcert.faults.revert import node_exec
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import call, new_api_client
from meshcert.kube.namespaces import create_namespace, delete_namespace
from meshcert.kube.waits import wait_for_pods_ready
from meshcert.mesh.echo import APP_CONTAINER, PROXY_CONTAINER, echo_manifests, pod_names
from meshcert.mesh.istio import IstioMesh
from meshcert.mesh.overhead import (
    QUANTILES,
    ContainerStat,
    RunSample,
    bootstrap_interval,
    check_run,
    client_argv,
    container_use,
    paced_run,
    paired_deltas,
    parse_crictl_stats,
    parse_run,
    t_interval,
)
from meshcert.runid import new_run_id
from meshcert.runs import RunStore
from meshcert.settings import load_settings
from meshcert.toolchain.pins import ENVOY_VERSION, ISTIO_VERSION

ROOT = Path(__file__).resolve().parents[1]
#: 1 KB of payload in a request header; the echo server writes request headers into its body.
PAYLOAD = "x" * 1024
#: Warm-up before measuring: connection pools, certificates, the client's first DNS lookups.
WARMUP_QPS, WARMUP_SECONDS = 50, 2.0
#: Pods start in ~10-40 s (sidecar first); 240 s as the mesh suite allows.
READY_TIMEOUT = 240.0
URL = "http://server/"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        print(f"mesh_overhead: error: {message}", file=sys.stderr)
        sys.exit(2)


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from e
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"every rate must be a positive integer: {text!r}")
    return values


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = _Parser(prog="mesh_overhead", description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the kind cluster")
    ap.add_argument("--rates", type=_positive_ints, default=[200, 500, 1000], help="req/s, comma-separated")
    ap.add_argument("--repeats", type=int, default=5, help="paired runs per rate (>= 2 for an interval)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument(
        "--exec", choices=["node", "api"], default="node",
        help="run the client via crictl in the kind node (default) or the API server's exec",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks" / "mesh_overhead.json")
    args = ap.parse_args(argv)
    if args.repeats < 2:
        ap.error(f"--repeats: need at least 2 for a confidence interval, got {args.repeats}")
    if not 0 < args.duration <= 600:
        ap.error(f"--duration: must be in (0, 600] seconds, got {args.duration}")
    if not args.kubeconfig.is_file():
        ap.error(f"--kubeconfig: no such file: {args.kubeconfig}")
    return args


def _deploy(api: ApiClient, mesh: IstioMesh, namespace: str, *, injected: bool, run_id: str) -> str:
    """Server and client in ``namespace``; returns the client pod's name."""
    if injected:
        mesh.inject_namespace(namespace)
    manifests = [
        *echo_manifests("server", "v1", inject=injected),
        *echo_manifests("client", "v1", inject=injected),
    ]
    apply_manifests(api, manifests, namespace=namespace, run_id=run_id)
    for app in ("server", "client"):
        wait_for_pods_ready(api, namespace, label_selector=f"app={app}", count=1, timeout=READY_TIMEOUT)
    return pod_names(api, namespace, "app=client")[0]


def _node(api: ApiClient, namespace: str) -> str:
    pods = call("list pods", CoreV1Api(api).list_namespaced_pod, namespace, label_selector="app=server").items
    node = pods[0].spec.node_name if pods and pods[0].spec else None
    if not node:
        raise MeshcertError(f"server pod in {namespace} has no node")
    return str(node)


def _stats(node: str, namespace: str) -> list[ContainerStat]:
    code, out = node_exec(
        node, ["crictl", "stats", "-o", "json", "--label", f"io.kubernetes.pod.namespace={namespace}"]
    )
    if code != 0:
        raise MeshcertError(f"crictl stats on {node}: {out.strip()[-300:]}")
    return parse_crictl_stats(out)


def _node_run(
    api: ApiClient, node: str, namespace: str, pod: str, *, qps: int, seconds: float, headers: dict[str, str]
) -> RunSample:
    """One paced run exec'd with crictl in the node container: the same client in the same pod,
    but its output (~3 KB per request) comes back over a local pipe, not the API server."""
    obj = call(f"get pod {namespace}/{pod}", CoreV1Api(api).read_namespaced_pod, pod, namespace)
    statuses = (obj.status.container_statuses if obj.status else None) or []
    ids = [
        str(c.container_id).split("://", 1)[-1]
        for c in statuses
        if c.name == APP_CONTAINER and c.container_id
    ]
    if not ids:
        raise MeshcertError(f"{namespace}/{pod}: no running {APP_CONTAINER} container")
    argv = client_argv(URL, qps=qps, seconds=seconds, headers=headers)
    start = time.monotonic()
    code, out = node_exec(node, ["crictl", "exec", ids[0], *argv])
    wall = time.monotonic() - start
    what = f"echo client in {namespace}/{pod} at {qps} req/s"
    if code != 0:
        raise MeshcertError(f"{what}: exit {code}: {(out.strip().splitlines() or [''])[-1][:300]}")
    return check_run(parse_run(out, requested=int(qps * seconds), wall_seconds=wall), what=what)


def _run_record(sample: RunSample) -> dict[str, Any]:
    return {
        **{k: round(v * 1000, 3) for k, v in sample.quantiles().items()},  # ms
        "n": len(sample.latencies),
        "codes": sample.codes,
        "max_in_flight": sample.max_active,
        "client_limited": sample.saturated,
        "client_limited_share": round(sample.limited_share, 3),
        "exec_wall_seconds": round(sample.wall_seconds, 2),
    }


def _summary(rate: int, runs: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """Statistics over the repeats where both runs completed (a failed run drops its pair)."""
    repeats = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {
        "rate": rate,
        "requests_per_run": int(rate * duration),
        "complete_repeats": len(repeats),
        "failed_runs": [r["error"] for r in runs if "error" in r],
    }
    if len(repeats) < 2:
        out["note"] = "fewer than 2 complete repeats: no interval"
        return out
    for q in (f"p{round(q * 100)}" for q in QUANTILES):
        mesh = [float(r["mesh"][q]) for r in repeats]
        plain = [float(r["plain"][q]) for r in repeats]
        deltas = paired_deltas(mesh, plain)
        out[f"delta_{q}_ms"] = {
            "t": t_interval(deltas).as_dict(),
            "bootstrap": bootstrap_interval(deltas).as_dict(),
        }
        out[f"plain_{q}_ms"] = t_interval(plain).as_dict()
        out[f"mesh_{q}_ms"] = t_interval(mesh).as_dict()
    for side in ("client", "server"):
        cores = [float(r["sidecars"][side]["cpu_cores"]) for r in repeats]
        per_1k = [float(r["sidecars"][side]["cpu_ms_per_1k_requests"]) for r in repeats]
        mem = [float(r["sidecars"][side]["working_set_mib"]) for r in repeats]
        out[f"{side}_sidecar"] = {
            "cpu_cores": t_interval(cores).as_dict(),
            "cpu_ms_per_1k_requests": t_interval(per_1k).as_dict(),
            "working_set_mib_max": round(max(mem), 1),
        }
    out["client_limited_runs"] = sum(1 for r in repeats for m in ("mesh", "plain") if r[m]["client_limited"])
    return out


def _measure(api: ApiClient, args: argparse.Namespace, spaces: dict[str, str], clients: dict[str, str],
             node: str) -> list[dict[str, Any]]:  # fmt: skip
    headers = {"X-Payload": PAYLOAD}

    def run(mode: str, qps: int, seconds: float) -> RunSample:
        if args.exec == "api":
            return paced_run(api, spaces[mode], clients[mode], URL, qps=qps, seconds=seconds, headers=headers)
        return _node_run(api, node, spaces[mode], clients[mode], qps=qps, seconds=seconds, headers=headers)

    for mode in ("plain", "mesh"):
        run(mode, WARMUP_QPS, WARMUP_SECONDS)
    per_rate: dict[int, list[dict[str, Any]]] = {rate: [] for rate in args.rates}
    for rep in range(args.repeats):
        for rate in args.rates:
            record: dict[str, Any] = {"repeat": rep + 1}
            for mode in ("plain", "mesh") if rep % 2 == 0 else ("mesh", "plain"):
                before = _stats(node, spaces[mode])
                try:
                    sample = run(mode, rate, args.duration)
                except MeshcertError as e:  # recorded; the pair is left out of the statistics
                    record["error"] = f"{mode}: {e}"
                    print(f"  repeat {rep + 1} {rate:>5} req/s {mode:<5} FAILED: {e}", file=sys.stderr)
                    break
                after = _stats(node, spaces[mode])
                record[mode] = _run_record(sample)
                if mode == "mesh":
                    record["sidecars"] = {
                        side: _use(
                            before,
                            after,
                            spaces[mode],
                            side,
                            requests=len(sample.latencies),
                            duration=args.duration,
                        )
                        for side in ("client", "server")
                    }
                print(f"  repeat {rep + 1} {rate:>5} req/s {mode:<5} {record[mode]}", file=sys.stderr)
            per_rate[rate].append(record)
            # Raw runs so far, so a run that dies late (a node hiccup) still leaves its data.
            partial = args.out.with_suffix(".partial.json")
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps({str(k): v for k, v in per_rate.items()}, indent=1) + "\n")
    return [{"rate": rate, "repeats": reps} for rate, reps in per_rate.items()]


def _use(
    before: list[ContainerStat],
    after: list[ContainerStat],
    namespace: str,
    side: str,
    *,
    requests: int,
    duration: float,
) -> dict[str, float]:
    use = container_use(before, after, namespace=namespace, container=PROXY_CONTAINER, pod_prefix=f"{side}-")
    return {
        "cpu_seconds": round(use.cpu_seconds, 3),
        "cpu_cores": round(use.cpu_seconds / duration, 4),
        "cpu_ms_per_1k_requests": round(use.per_1k_requests_ms(requests), 2),
        "working_set_mib": round(use.working_set_mib, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    settings = load_settings()
    api = new_api_client(args.kubeconfig)
    mesh = IstioMesh(api, args.kubeconfig, settings.cache_dir, "")
    if mesh.status().startswith("istiod: not installed"):
        print(
            "mesh_overhead: error: no istiod on the cluster; run `meshcert mesh install NAME` first",
            file=sys.stderr,
        )
        return 1
    run_id = new_run_id()
    store = RunStore(settings.state_dir)
    store.create(run_id)
    spaces = {"plain": f"bench-plain-{run_id}"[:63], "mesh": f"bench-mesh-{run_id}"[:63]}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    try:
        for ns in spaces.values():
            create_namespace(api, ns, run_id=run_id)
        clients = {
            mode: _deploy(api, mesh, ns, injected=mode == "mesh", run_id=run_id)
            for mode, ns in spaces.items()
        }
        mesh.assert_config_accepted(spaces["mesh"])
        node = _node(api, spaces["mesh"])
        rates = _measure(api, args, spaces, clients, node)
    except MeshcertError as e:
        print(f"mesh_overhead: error: {e}", file=sys.stderr)
        return 1
    finally:
        for ns in spaces.values():
            delete_namespace(api, ns, wait=False)
        store.remove(run_id)
    report: dict[str, Any] = {
        "benchmark": "mesh_overhead",
        "started": started,
        "seconds": round(time.monotonic() - t0, 1),
        "mesh": f"istio {ISTIO_VERSION} sidecar, upstream envoy {ENVOY_VERSION}",
        "host": {"cpus": len(os.sched_getaffinity(0)), "machine": platform.machine()},
        "method": {
            "load": "Istio echo client in the client pod, --qps pacing, <= 20 in flight, "
            "new connection per request",
            "payload": "1024-byte request header, echoed in the response body",
            "duration_seconds": args.duration,
            "repeats": args.repeats,
            "order": "plain/mesh alternating per repeat",
            "delta": "mean over repeats of (mesh - plain) per percentile; t (n-1 df) and bootstrap 95 % CIs",
            "sidecar_resources": "crictl stats (cgroup CPU usage, working set) before/after each mesh run",
        },
        "rates": [{**_summary(r["rate"], r["repeats"], args.duration), "runs": r["repeats"]} for r in rates],
        "client_exec": args.exec,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    rows: list[dict[str, Any]] = report["rates"]
    for r in rows:
        deltas = ", ".join(
            f"Δ{q} {r[f'delta_{q}_ms']['t']['mean']} ms {r[f'delta_{q}_ms']['t']['ci']}"
            for q in ("p50", "p90", "p99")
        )
        cores = {side: r[f"{side}_sidecar"]["cpu_cores"]["mean"] for side in ("client", "server")}
        print(f"{r['rate']:>5} req/s: {deltas}; sidecar cores {cores}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
