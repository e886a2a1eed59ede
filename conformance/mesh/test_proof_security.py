"""Proof the M15 checks can fail: a deliberately wrong security configuration, really applied to
the mesh and converged, makes the M15 checker report a violation with a readable diff.

Each test first converges to the *wrong* configuration's own behaviour (so the failure is the
configuration's, not an unconverged proxy's), then judges the observation against what the
*right* configuration must produce, and expects the exact diff line.
"""

from __future__ import annotations

import pytest

from meshcert.conformance_support import attach_json
from meshcert.errors import InvariantViolation
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.security import (
    REFUSED,
    AccessCase,
    authorization_policy,
    check_access,
    converge_access,
    observe_access,
    principal,
)
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

HOST = "server"
SAMPLES = 5


def _pods(env: MeshEnv) -> dict[str, str]:
    return {"client": env.client, "plain": env.plain}


def test_proof_missing_deny_policy_is_reported(mesh_env: MeshEnv) -> None:
    ns, pods = mesh_env.namespace, _pods(mesh_env)
    admin = AccessCase("client", "GET", "/admin")
    # Right: ALLOW the client + DENY /admin. Applied: the ALLOW only — the DENY is "forgotten".
    right = {AccessCase("client"): "200", admin: "403", AccessCase("plain"): "403"}
    allow = authorization_policy(
        "allow-client", action="ALLOW", app="server", principals=[principal(ns, "default")]
    )
    with routing(mesh_env, [allow]):
        converge_access(
            mesh_env, pods, {**right, admin: "200"}, host=HOST, what="ALLOW without DENY in effect"
        )
        observed = observe_access(mesh_env, pods, list(right), host=HOST, count=SAMPLES)
    with pytest.raises(InvariantViolation) as failure:
        assert_no_violations(check_access(right, observed), context="DENY /admin missing")
    attach_json("proof_missing_deny", str(failure.value))
    assert "[M15] DENY /admin missing: 1 violation(s)" in str(failure.value)
    assert "client GET /admin: expected 403, observed 200" in str(failure.value)


def test_proof_removed_strict_is_reported(mesh_env: MeshEnv) -> None:
    pods = _pods(mesh_env)
    # Right: STRICT (plaintext refused). Applied: no PeerAuthentication — the mesh default, PERMISSIVE.
    right = {AccessCase("client"): "200", AccessCase("plain"): REFUSED}
    converge_access(mesh_env, pods, dict.fromkeys(right, "200"), host=HOST, what="no STRICT in effect")
    observed = observe_access(mesh_env, pods, list(right), host=HOST, count=SAMPLES)
    with pytest.raises(InvariantViolation) as failure:
        assert_no_violations(check_access(right, observed), context="STRICT removed")
    attach_json("proof_removed_strict", str(failure.value))
    assert "plain GET /: expected refused, observed 200" in str(failure.value)
