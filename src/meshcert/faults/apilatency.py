"""API-server latency: a local toxiproxy-server in front of the control plane's 6443.

The harness (and anything it starts: kubectl, a controller under test) uses a kubeconfig whose
server is the proxy's loopback listener; a latency toxic then slows every API round trip by the
configured amount. The upstream is the control-plane node container's address on its kind
docker network — one of our own cluster's addresses, as the network rule requires. TLS passes
through untouched (Toxiproxy is a TCP proxy) and 127.0.0.1 is in kubeadm's serving-cert SANs.

The toxiproxy-server is recorded in the run record by `start_toxiproxy`, so `meshcert gc` kills
it (and with it the toxic) after a SIGKILL; a clean exit deletes the toxic, verifies it is gone,
and stops the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from meshcert.errors import FaultError
from meshcert.faults import revert
from meshcert.faults.server import start_toxiproxy
from meshcert.faults.toxics import toxic
from meshcert.faults.toxiproxy import Latency, ProxyConfig, Stream, Toxic, ToxiproxyClient

#: kubeadm's API server port inside the control-plane node.
API_SERVER_PORT = 6443


@dataclass(frozen=True)
class ApiLatency:
    kubeconfig: Path
    client: ToxiproxyClient
    proxy: str
    latency_ms: int


def proxied_kubeconfig(source: Path, target: Path, server: str) -> Path:
    """Copy ``source`` to ``target`` with every cluster's server replaced by ``server``."""
    try:
        doc = yaml.safe_load(source.read_text())
        for entry in doc["clusters"]:
            entry["cluster"]["server"] = server
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise FaultError(f"cannot rewrite kubeconfig {source}: {e}") from e
    target.write_text(yaml.safe_dump(doc))
    target.chmod(0o600)
    return target


@contextlib.contextmanager
def api_latency(
    cluster: str,
    kubeconfig: Path,
    *,
    latency_ms: int,
    jitter_ms: int = 0,
    run_id: str,
    state_dir: Path,
    cache_dir: Path | None = None,
    binary: Path | None = None,
) -> Iterator[ApiLatency]:
    """Latency on every API call made through the yielded kubeconfig, for the block."""
    upstream = f"{revert.node_ip(f'{cluster}-control-plane')}:{API_SERVER_PORT}"
    with start_toxiproxy(run_id=run_id, state_dir=state_dir, cache_dir=cache_dir, binary=binary) as server:
        client = server.client()
        proxy = client.create_proxy(
            ProxyConfig(name="kube-apiserver", listen="127.0.0.1:0", upstream=upstream)
        )
        out = server.log_path.parent / f"kubeconfig-apiproxy-{server.port}"
        path = proxied_kubeconfig(kubeconfig, out, f"https://{proxy.listen}")
        try:
            # Downstream: the response waits, so each request/response round trip gains latency_ms.
            spec = Toxic(Latency(latency=latency_ms, jitter=jitter_ms), stream=Stream.DOWNSTREAM)
            with toxic(client, proxy.name, spec):
                yield ApiLatency(path, client, proxy.name, latency_ms)
        finally:
            client.close()
            path.unlink(missing_ok=True)
