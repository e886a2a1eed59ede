"""M4: filters. Request headers added/set/removed as seen *at the backend* (the echo server echoes
the headers it received), a prefix rewrite seen in the backend's URL, and redirects answered by
the proxy with the configured status and Location. Probes and oracle: `meshcert.mesh.filters`
(shared with the GAMMA variant in test_gamma_routing.py)."""

from __future__ import annotations

import pytest

from meshcert.conformance_support import attach_json
from meshcert.mesh.adapter import Feature
from meshcert.mesh.filters import FILTERS, PROBES, baseline_violations, filter_violations, observed
from meshcert.mesh.probe import converge_requests, unsupported
from meshcert.mesh.suite import MeshEnv, routing
from meshcert.mesh.traffic import filter_route

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

ROUTE = "VirtualService server"


def test_m4_header_rewrite_redirect(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.HTTP):
        pytest.skip(reason)
    ns = mesh_env.namespace
    converge_requests(mesh_env, PROBES, baseline_violations, what="baseline: no filter")
    vs = filter_route("server", ns, FILTERS)
    with routing(mesh_env, [vs]):
        conv = converge_requests(
            mesh_env, PROBES, lambda r: filter_violations(r, route=ROUTE), what="M4 filters applied"
        )
        attach_json("M6_convergence_seconds", conv.bounds.report())
        attach_json("M4 observed", observed(conv.observed))
