"""M15 (authorization): AuthorizationPolicy ALLOW by principal, namespace, path and method; DENY
wins over ALLOW; a request no ALLOW rule matches is denied (403 from the server's RBAC filter).

Three sources, so every policy must tell them apart at once: ``client`` (ServiceAccount default),
``other`` (ServiceAccount other, same namespace) and ``plain`` (no sidecar, no identity; the
namespace stays PERMISSIVE so its plaintext reaches the policy). Each policy starts from a
verified everything-allowed baseline and converges to its full expected matrix (M6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.security import (
    AccessCase,
    authorization_policy,
    check_access,
    check_peer_identity,
    converge_access,
    deploy_second_identity,
    matrix_table,
    observe_access,
    observe_peers,
    principal,
    spiffe_id,
)
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

HOST = "server"
SAMPLES = 5


@pytest.fixture(scope="module")
def pods(mesh_env: MeshEnv) -> dict[str, str]:
    return deploy_second_identity(mesh_env)


def _enforce(
    env: MeshEnv,
    pods: Mapping[str, str],
    policies: list[dict[str, Any]],
    expected: dict[AccessCase, str],
    name: str,
) -> None:
    converge_access(env, pods, dict.fromkeys(expected, "200"), host=HOST, what=f"{name}: allowed baseline")
    with routing(env, policies):
        conv = converge_access(env, pods, expected, host=HOST, what=f"{name} in effect")
        observed = observe_access(env, pods, list(expected), host=HOST, count=SAMPLES)
        attach_json(
            f"M15_{name}",
            {"convergence_s": round(conv.time_to_converge, 2), "matrix": matrix_table(expected, observed)},
        )
        assert_no_violations(check_access(expected, observed), context=name)


def test_m15_server_sees_each_client_identity(mesh_env: MeshEnv, pods: dict[str, str]) -> None:
    ns = mesh_env.namespace
    seen = observe_peers(mesh_env, pods, host=HOST, count=SAMPLES)
    attach_json("M15_peers", {s.source: sorted(s.peers) for s in seen})
    want = {"client": spiffe_id(ns, "default"), "other": spiffe_id(ns, "other"), "plain": ""}
    assert_no_violations(check_peer_identity(seen, want), context="peer identity")


def test_m15_allow_by_principal(mesh_env: MeshEnv, pods: dict[str, str]) -> None:
    ns = mesh_env.namespace
    policy = authorization_policy(
        "by-principal", action="ALLOW", app="server", principals=[principal(ns, "default")]
    )
    expected = {AccessCase("client"): "200", AccessCase("other"): "403", AccessCase("plain"): "403"}
    _enforce(mesh_env, pods, [policy], expected, "allow_by_principal")


def test_m15_allow_by_namespace(mesh_env: MeshEnv, pods: dict[str, str]) -> None:
    policy = authorization_policy(
        "by-namespace", action="ALLOW", app="server", namespaces=[mesh_env.namespace]
    )
    # Both identities live in the namespace; plaintext carries no namespace at all.
    expected = {AccessCase("client"): "200", AccessCase("other"): "200", AccessCase("plain"): "403"}
    _enforce(mesh_env, pods, [policy], expected, "allow_by_namespace")


def test_m15_allow_by_path_denies_unmatched(mesh_env: MeshEnv, pods: dict[str, str]) -> None:
    policy = authorization_policy("by-path", action="ALLOW", app="server", paths=["/public", "/public/*"])
    expected = {
        AccessCase("client", "GET", "/public"): "200",
        AccessCase("other", "GET", "/public/page"): "200",
        AccessCase("client", "GET", "/private"): "403",  # matched by no ALLOW rule → denied
    }
    _enforce(mesh_env, pods, [policy], expected, "allow_by_path")


def test_m15_allow_by_method(mesh_env: MeshEnv, pods: dict[str, str]) -> None:
    policy = authorization_policy("by-method", action="ALLOW", app="server", methods=["GET"])
    expected = {
        AccessCase("client", "GET", "/"): "200",
        AccessCase("client", "POST", "/"): "403",
        AccessCase("other", "POST", "/"): "403",
    }
    _enforce(mesh_env, pods, [policy], expected, "allow_by_method")


def test_m15_deny_wins_over_allow(mesh_env: MeshEnv, pods: dict[str, str]) -> None:
    allow_all = authorization_policy("allow-all", action="ALLOW", app="server")
    deny_admin = authorization_policy("deny-admin", action="DENY", app="server", paths=["/admin", "/admin/*"])
    expected = {
        AccessCase("client", "GET", "/"): "200",
        AccessCase("client", "GET", "/admin"): "403",
        AccessCase("other", "GET", "/admin/x"): "403",
        AccessCase("plain", "GET", "/"): "200",
    }
    _enforce(mesh_env, pods, [allow_all, deny_admin], expected, "deny_wins")
