"""M1: every client→server pair succeeds with no routing config (HTTP, gRPC, TCP).

Requests come from the injected ``client`` pod's echo client (exec), through its sidecar, to the
``server`` Service whose two versions each carry a sidecar: the full mesh data path.
"""

from __future__ import annotations

import pytest

from meshcert.mesh.echo import GRPC_PORT, SERVICE_HTTP_PORT, TCP_PORT, send
from meshcert.mesh.suite import MeshEnv

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

#: 20 requests per protocol: with round-robin over two pods, both are reached with near certainty
#: (a miss has probability 2 * 0.5^20), so "every pair" is checked per backend too.
N = 20


@pytest.mark.parametrize(
    "url",
    [f"http://server:{SERVICE_HTTP_PORT}/", f"grpc://server:{GRPC_PORT}", f"tcp://server:{TCP_PORT}"],
    ids=["http", "grpc", "tcp"],
)
def test_m1_every_pair_succeeds(mesh_env: MeshEnv, url: str) -> None:
    batch = send(mesh_env.api, mesh_env.namespace, mesh_env.client, url, count=N)
    assert not batch.failure, f"client aborted: {batch.failure}"
    assert len(batch.responses) == N, batch.responses
    bad = [r for r in batch.responses if not r.ok]
    assert not bad, f"{len(bad)}/{N} failed: {bad[:3]}"
    if not url.startswith("tcp"):
        # TCP echo does not report the serving version line for every chunk; HTTP and gRPC do.
        assert set(batch.versions) == {"v1", "v2"}, batch.versions
    mesh_env.mesh.assert_config_accepted(mesh_env.namespace)
