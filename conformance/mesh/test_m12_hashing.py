"""M12: consistent hashing. With a DestinationRule hashing on a request header, every request with
the same key reaches the same backend pod (≥ 20 requests per key), and different keys spread over
more than one pod (the hash is not a constant)."""

from __future__ import annotations

from collections import Counter

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import hashing_violations
from meshcert.mesh.echo import EchoBatch, send
from meshcert.mesh.probe import EchoRequest, converge_batches_timed, send_requests, unsupported
from meshcert.mesh.suite import MeshEnv, routing
from meshcert.mesh.traffic import hash_rule

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"
HEADER = "x-meshcert-user"
#: 20 requests per key (the invariant's minimum); 16 keys over 2 pods all land on one pod with
#: probability 2 * 0.5^16 (~3e-5) for a working hash.
PER_KEY, KEYS = 20, 16


def _one_pod(b: EchoBatch) -> str:
    pods = {r.hostname for r in b.responses}
    return "" if not b.failure and len(pods) == 1 else f"pods {sorted(pods)} {b.failure}"


def test_m12_same_key_same_backend(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.CONSISTENT_HASH):
        pytest.skip(reason)
    ns = mesh_env.namespace
    probe = {HEADER: "probe-key"}
    base = send(mesh_env.api, ns, mesh_env.client, URL, count=PER_KEY, headers=probe)
    # Without hashing the default balancer spreads one key over both pods.
    assert len({r.hostname for r in base.responses}) == 2, (
        f"baseline: {Counter(r.hostname for r in base.responses)}"
    )
    with routing(mesh_env, [hash_rule("server", ns, header=HEADER)]):
        conv = converge_batches_timed(mesh_env, URL, _one_pod, what="probe key pinned to one pod",
                                      count=PER_KEY, headers=probe)  # fmt: skip
        attach_json("M6_convergence_seconds", conv.bounds.report())
        requests = [EchoRequest("/", headers=((HEADER, f"user-{i}"),), count=PER_KEY) for i in range(KEYS)]
        results = send_requests(mesh_env.api, ns, mesh_env.client, requests)
        per_key = {req.headers[0][1]: Counter(x.hostname for x in xs if x.code == "200")
                   for req, xs in zip(requests, results, strict=True)}  # fmt: skip
        attach_json("M12 backend per key", {k: dict(v) for k, v in per_key.items()})
        assert all(sum(c.values()) == PER_KEY for c in per_key.values()), per_key
        assert_no_violations(hashing_violations(per_key, min_backends=2, route="DestinationRule server"))
