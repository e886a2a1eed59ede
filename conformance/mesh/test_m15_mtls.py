"""M15 (first part): STRICT mTLS rejects plaintext; PERMISSIVE (the default) accepts both; the
mesh client keeps working under STRICT."""

from __future__ import annotations

import pytest

from meshcert.conformance_support import attach_json
from meshcert.mesh.echo import EchoBatch, send
from meshcert.mesh.routing import peer_authentication
from meshcert.mesh.suite import MeshEnv, converge_batches, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"


def _refused(b: EchoBatch) -> str:
    return "" if b.failure or not b.codes.get("200") else f"plaintext still served: {dict(b.codes)}"


def test_m15_strict_rejects_plaintext(mesh_env: MeshEnv) -> None:
    ns = mesh_env.namespace
    plain = send(mesh_env.api, ns, mesh_env.plain, URL, count=5)
    assert not plain.failure and set(plain.codes) == {"200"}, f"PERMISSIVE baseline: {plain}"
    with routing(mesh_env, [peer_authentication("STRICT")]):
        conv = converge_batches(
            mesh_env, URL, _refused, what="plaintext refused", count=1, pod=mesh_env.plain
        )
        attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
        mtls = send(mesh_env.api, ns, mesh_env.client, URL, count=10)
        assert not mtls.failure and set(mtls.codes) == {"200"}, mtls
        # The server's sidecar saw the client's SPIFFE identity (XFCC), not an anonymous peer.
        assert {r.peer for r in mtls.responses} == {f"spiffe://cluster.local/ns/{ns}/sa/default"}, (
            mtls.responses[:1]
        )
        for _ in range(5):
            again = send(mesh_env.api, ns, mesh_env.plain, URL, count=1)
            assert again.failure or not again.codes.get("200"), again
