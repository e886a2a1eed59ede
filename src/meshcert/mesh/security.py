"""M15: mTLS and authorization — policy manifests, an access matrix, and its checker.

Why a module of its own: M15 is a set of (source, method, path) → outcome facts that must all
hold at once under one policy set (an ALLOW by principal must admit one client *and* refuse
another), so the oracle is a matrix compared cell by cell, reported as "client GET /admin:
expected 403, observed 200" — the readable diff the proof tests (conformance/mesh/
test_proof_security.py) pytest.raises on. Builders and the checker are pure; `observe_access`
and `converge_access` at the end are the suite's I/O around them.

Outcomes are strings: an HTTP code ("200", "403"), ``refused`` when the connection itself failed
(what a STRICT server's sidecar does to plaintext: it has no plaintext filter chain and closes),
or ``mixed{...}`` when one case's requests disagreed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshcert.errors import ConfigError
from meshcert.invariants.convergence import Converged, Observation, converge
from meshcert.invariants.violations import ObjectRef, Violation
from meshcert.kube.apply import apply_manifests
from meshcert.kube.waits import wait_for_pods_ready
from meshcert.mesh.echo import EchoBatch, echo_manifests, pod_names, send
from meshcert.mesh.routing import SECURITY
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, WORKLOAD_READY_TIMEOUT, MeshEnv

REFUSED = "refused"
ACTIONS = ("ALLOW", "DENY")
#: Requests per case in a convergence probe. Each server pod's sidecar gets a policy on its own
#: schedule; one request per case reaches one of the two server pods, so three "converged"
#: probes could all miss a lagging one (seen on kind: 1 of 5 later requests still allowed).
#: Six per case miss a given pod with probability 2^-6 per probe, 2^-18 over the streak.
PROBE_REQUESTS = 6
#: Istio's trust domain on a default install; SPIFFE ids are spiffe://<domain>/ns/<ns>/sa/<sa>.
TRUST_DOMAIN = "cluster.local"


def principal(namespace: str, service_account: str) -> str:
    """An AuthorizationPolicy principal (the SPIFFE id without its ``spiffe://`` scheme)."""
    return f"{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def spiffe_id(namespace: str, service_account: str) -> str:
    return f"spiffe://{principal(namespace, service_account)}"


def authorization_policy(
    name: str,
    *,
    action: str,
    app: str,
    principals: Sequence[str] = (),
    namespaces: Sequence[str] = (),
    paths: Sequence[str] = (),
    methods: Sequence[str] = (),
) -> dict[str, Any]:
    """An AuthorizationPolicy on the pods labelled ``app`` with one rule.

    Empty criteria are left out, so a rule with none matches every request (``rules: [{}]``:
    ALLOW everything). Within the rule, all given criteria must match (AND).
    """
    if action not in ACTIONS:
        raise ConfigError("authorization_policy", "action", f"must be one of {ACTIONS}, got {action!r}")
    rule: dict[str, Any] = {}
    source = {k: list(v) for k, v in (("principals", principals), ("namespaces", namespaces)) if v}
    operation = {k: list(v) for k, v in (("paths", paths), ("methods", methods)) if v}
    if source:
        rule["from"] = [{"source": source}]
    if operation:
        rule["to"] = [{"operation": operation}]
    return {
        "apiVersion": SECURITY,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, "action": action, "rules": [rule]},
    }


def client_with_identity(app: str, service_account: str) -> list[dict[str, Any]]:
    """A ServiceAccount and an injected echo client running as it (a second SPIFFE identity)."""
    [dep] = copy.deepcopy(echo_manifests(app, "v1", with_service=False))
    dep["spec"]["template"]["spec"]["serviceAccountName"] = service_account
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": service_account}}
    return [sa, dep]


# ---- the access matrix ------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class AccessCase:
    """One cell: requests from ``source`` (a role: client, other, plain) with method and path."""

    source: str
    method: str = "GET"
    path: str = "/"

    def __str__(self) -> str:
        return f"{self.source} {self.method} {self.path}"


def outcome(batch: EchoBatch) -> str:
    """The single outcome of a batch: ``refused`` on a connection failure, the HTTP code if all
    requests agree, else ``mixed{code: n, ...}``."""
    if batch.failure:
        return REFUSED
    codes = {c or "none": n for c, n in batch.codes.items()}
    if len(codes) == 1:
        return next(iter(codes))
    return "mixed{" + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())) + "}"


def check_access(
    expected: Mapping[AccessCase, str], observed: Mapping[AccessCase, str], *, ref: ObjectRef | None = None
) -> list[Violation]:
    """M15: every case's observed outcome equals the expected one; one violation per mismatch."""
    out: list[Violation] = []
    for case in sorted(expected):
        got = observed.get(case, "not measured")
        if got != expected[case]:
            out.append(Violation("M15", ref, f"{case}: expected {expected[case]}, observed {got}"))
    return out


def matrix_table(expected: Mapping[AccessCase, str], observed: Mapping[AccessCase, str]) -> list[str]:
    """One line per case (``client GET /admin  expected 403  observed 403``) for the report."""
    return [
        f"{case!s:<28} expected {expected[case]:<8} observed {observed.get(case, '-')}"
        for case in sorted(expected)
    ]


@dataclass(frozen=True)
class PeerSeen:
    """Which peer identities the server reported for one source's requests."""

    source: str
    peers: frozenset[str]


def check_peer_identity(seen: Sequence[PeerSeen], expected: Mapping[str, str]) -> list[Violation]:
    """M15: the server saw exactly the expected SPIFFE id per source ("" = no identity, plaintext)."""
    out: list[Violation] = []
    for s in seen:
        want = expected.get(s.source)
        if want is None:
            continue
        if s.peers != {want}:
            shown = sorted(p or "(none)" for p in s.peers)
            out.append(
                Violation("M15", None, f"{s.source}: server saw peer {shown}, expected {want or '(none)'}")
            )
    return out


# ---- I/O: measuring the matrix from inside the mesh --------------------------------------------


def deploy_second_identity(
    env: MeshEnv, *, app: str = "other", service_account: str = "other"
) -> dict[str, str]:
    """Add a client running as another ServiceAccount; role → pod for client, ``app`` and plain."""
    apply_manifests(env.api, client_with_identity(app, service_account), namespace=env.namespace,
                    run_id=env.run_id)  # fmt: skip
    wait_for_pods_ready(env.api, env.namespace, label_selector=f"app={app}", count=1,
                        timeout=WORKLOAD_READY_TIMEOUT)  # fmt: skip
    env.mesh.assert_config_accepted(env.namespace)
    return {"client": env.client, app: pod_names(env.api, env.namespace, f"app={app}")[0], "plain": env.plain}


def observe_access(
    env: MeshEnv, pods: Mapping[str, str], cases: Sequence[AccessCase], *, host: str, count: int
) -> dict[AccessCase, str]:
    """Send ``count`` requests per case from the case's source pod (``pods``: role → pod name)."""
    out: dict[AccessCase, str] = {}
    for c in cases:
        url = f"http://{host}{c.path}"
        out[c] = outcome(send(env.api, env.namespace, pods[c.source], url, count=count, method=c.method))
    return out


def observe_peers(env: MeshEnv, pods: Mapping[str, str], *, host: str, count: int) -> list[PeerSeen]:
    """The peer identities the server reported (from the XFCC its sidecar set) per source role."""
    out: list[PeerSeen] = []
    for role, pod in pods.items():
        batch = send(env.api, env.namespace, pod, f"http://{host}/", count=count)
        out.append(PeerSeen(role, frozenset(r.peer for r in batch.responses)))
    return out


def converge_access(
    env: MeshEnv,
    pods: Mapping[str, str],
    expected: Mapping[AccessCase, str],
    *,
    host: str,
    what: str,
    timeout: float = CONVERGENCE_TIMEOUT,
    count: int = PROBE_REQUESTS,
) -> Converged[dict[AccessCase, str]]:
    """M6 for policies: poll the whole matrix (``count`` requests per case) until it equals
    ``expected`` three times in a row; then check no proxy rejected config."""

    def probe() -> Observation[dict[AccessCase, str]]:
        seen = observe_access(env, pods, list(expected), host=host, count=count)
        wrong = check_access(expected, seen)
        return Observation(not wrong, seen, "; ".join(v.message for v in wrong))

    result = converge(probe, what=what, timeout=timeout)
    env.mesh.assert_config_accepted(env.namespace)
    return result
