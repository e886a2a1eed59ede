"""M15 (mTLS): STRICT rejects plaintext from the uninjected ``plain`` pod while the mesh client
keeps working and is seen by its SPIFFE identity; PERMISSIVE, switched to from a verified STRICT
state, accepts both plaintext (no identity) and mTLS (with identity)."""

from __future__ import annotations

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.routing import peer_authentication
from meshcert.mesh.security import (
    REFUSED,
    AccessCase,
    check_access,
    check_peer_identity,
    converge_access,
    matrix_table,
    observe_access,
    observe_peers,
    spiffe_id,
)
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

HOST = "server"
CLIENT, PLAIN = AccessCase("client"), AccessCase("plain")
#: Requests per cell once converged (the convergence itself already needed 3 agreeing probes).
SAMPLES = 10


def _pods(env: MeshEnv) -> dict[str, str]:
    return {"client": env.client, "plain": env.plain}


def test_m15_strict_rejects_plaintext(mesh_env: MeshEnv) -> None:
    pods, ns = _pods(mesh_env), mesh_env.namespace
    converge_access(mesh_env, pods, {CLIENT: "200", PLAIN: "200"}, host=HOST, what="PERMISSIVE baseline")
    strict = {CLIENT: "200", PLAIN: REFUSED}
    with routing(mesh_env, [peer_authentication("STRICT")]):
        conv = converge_access(mesh_env, pods, strict, host=HOST, what="STRICT in effect")
        attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
        observed = observe_access(mesh_env, pods, list(strict), host=HOST, count=SAMPLES)
        attach_json("M15_strict_matrix", matrix_table(strict, observed))
        assert_no_violations(check_access(strict, observed), context="STRICT")
        # The server's sidecar saw the client's SPIFFE identity (XFCC), not an anonymous peer.
        seen = observe_peers(mesh_env, {"client": mesh_env.client}, host=HOST, count=SAMPLES)
        assert_no_violations(check_peer_identity(seen, {"client": spiffe_id(ns, "default")}))


def test_m15_permissive_accepts_plaintext_and_mtls(mesh_env: MeshEnv) -> None:
    pods, ns = _pods(mesh_env), mesh_env.namespace
    with routing(mesh_env, [peer_authentication("STRICT")]):
        converge_access(mesh_env, pods, {CLIENT: "200", PLAIN: REFUSED}, host=HOST, what="STRICT baseline")
        # Same name: the PeerAuthentication is replaced in place, STRICT → PERMISSIVE.
        with routing(mesh_env, [peer_authentication("PERMISSIVE")]):
            permissive = {CLIENT: "200", PLAIN: "200"}
            conv = converge_access(mesh_env, pods, permissive, host=HOST, what="PERMISSIVE in effect")
            attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
            observed = observe_access(mesh_env, pods, list(permissive), host=HOST, count=SAMPLES)
            attach_json("M15_permissive_matrix", matrix_table(permissive, observed))
            assert_no_violations(check_access(permissive, observed), context="PERMISSIVE")
            # Both kinds of connection: the client's is mTLS (identity seen), plain's is not.
            seen = observe_peers(mesh_env, pods, host=HOST, count=SAMPLES)
            attach_json("M15_permissive_peers", {s.source: sorted(s.peers) for s in seen})
            want = {"client": spiffe_id(ns, "default"), "plain": ""}
            assert_no_violations(check_peer_identity(seen, want), context="PERMISSIVE peers")
