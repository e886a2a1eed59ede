"""M15 builders and the access-matrix checker: good states pass, bad states give a readable diff."""

from __future__ import annotations

import pytest

from meshcert.errors import ConfigError, InvariantViolation
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.echo import EchoBatch, Exchange
from meshcert.mesh.security import (
    REFUSED,
    AccessCase,
    PeerSeen,
    authorization_policy,
    check_access,
    check_peer_identity,
    client_with_identity,
    matrix_table,
    outcome,
    principal,
    spiffe_id,
)
from meshcert.mesh.suite import _plural


def test_policy_rule_has_only_given_criteria() -> None:
    p = authorization_policy(
        "by-principal", action="ALLOW", app="server", principals=[principal("ns", "default")], methods=["GET"]
    )
    assert p["kind"] == "AuthorizationPolicy" and p["apiVersion"] == "security.istio.io/v1"
    assert p["spec"] == {
        "selector": {"matchLabels": {"app": "server"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [{"source": {"principals": ["cluster.local/ns/ns/sa/default"]}}],
                "to": [{"operation": {"methods": ["GET"]}}],
            }
        ],
    }
    assert authorization_policy("all", action="ALLOW", app="server")["spec"]["rules"] == [{}]
    with pytest.raises(ConfigError, match="action"):
        authorization_policy("x", action="AUDIT", app="server")


def test_client_with_identity_runs_as_its_service_account() -> None:
    sa, dep = client_with_identity("other", "other")
    assert sa == {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}}
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "other"
    assert dep["spec"]["template"]["metadata"]["labels"]["app"] == "other"
    assert spiffe_id("ns", "other") == "spiffe://cluster.local/ns/ns/sa/other"


def test_cleanup_plural_of_policy_kinds() -> None:
    assert _plural("AuthorizationPolicy") == "authorizationpolicies"
    assert _plural("PeerAuthentication") == "peerauthentications"


def _batch(*codes: str, failure: str = "") -> EchoBatch:
    responses = [Exchange(i, code=c) for i, c in enumerate(codes)]
    return EchoBatch(responses, failure, 0.1)


def test_outcome() -> None:
    assert outcome(_batch("403", "403")) == "403"
    assert outcome(_batch(failure="connection reset by peer")) == REFUSED
    assert outcome(_batch("200", "403", "403")) == "mixed{200: 1, 403: 2}"


EXPECTED = {
    AccessCase("client"): "200",
    AccessCase("client", "GET", "/admin"): "403",
    AccessCase("plain"): REFUSED,
}


def test_matching_matrix_passes() -> None:
    assert check_access(EXPECTED, dict(EXPECTED)) == []


def test_missing_deny_reads_as_a_diff() -> None:
    observed = {**EXPECTED, AccessCase("client", "GET", "/admin"): "200", AccessCase("plain"): "200"}
    with pytest.raises(InvariantViolation) as e:
        assert_no_violations(check_access(EXPECTED, observed), context="DENY /admin")
    text = str(e.value)
    assert "DENY /admin: 2 violation(s)" in text
    assert "client GET /admin: expected 403, observed 200" in text
    assert "plain GET /: expected refused, observed 200" in text
    table = matrix_table(EXPECTED, observed)
    assert table[0].split() == ["client", "GET", "/", "expected", "200", "observed", "200"]


def test_unmeasured_case_is_a_violation() -> None:
    [v] = check_access(EXPECTED, {AccessCase("client"): "200", AccessCase("plain"): REFUSED})
    assert "client GET /admin: expected 403, observed not measured" in str(v)


def test_peer_identity() -> None:
    want = {"client": spiffe_id("ns", "default"), "plain": ""}
    good = [PeerSeen("client", frozenset({spiffe_id("ns", "default")})), PeerSeen("plain", frozenset({""}))]
    assert check_peer_identity(good, want) == []
    bad = [PeerSeen("client", frozenset({""})), PeerSeen("plain", frozenset({spiffe_id("ns", "x")}))]
    text = "\n".join(map(str, check_peer_identity(bad, want)))
    assert "client: server saw peer ['(none)'], expected spiffe://cluster.local/ns/ns/sa/default" in text
    assert "plain: server saw peer ['spiffe://cluster.local/ns/ns/sa/x'], expected (none)" in text
