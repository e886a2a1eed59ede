"""M4: filters. Request headers added/set/removed as seen *at the backend* (the echo server echoes
the headers it received), a prefix rewrite seen in the backend's URL, and redirects answered by
the proxy with the configured status and Location."""

from __future__ import annotations

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import Violation
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import HeaderExpectation, header_violations, redirect_violations, rewrite_violations
from meshcert.mesh.probe import EchoRequest, Results, converge_requests, send_requests, unsupported
from meshcert.mesh.suite import MeshEnv, routing
from meshcert.mesh.traffic import filter_route

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

ROUTE = "VirtualService server"
SENT = (("x-meshcert-added", "client"), ("x-meshcert-set", "client"), ("x-meshcert-removed", "client"))
HEADERS = EchoRequest("/headers", headers=SENT, count=2)
REWRITE = EchoRequest("/old/path", query=(("k", "v"),), count=2)
REDIRECT_PATH = EchoRequest("/redirect-path")
REDIRECT_HOST = EchoRequest("/redirect-host")
PROBES = [HEADERS, REWRITE, REDIRECT_PATH, REDIRECT_HOST]
WANT = HeaderExpectation(
    equal={"x-meshcert-set": ["mesh"]},
    contains={"x-meshcert-added": ["client", "mesh"]},
    absent=["x-meshcert-removed"],
)


def check(results: Results) -> list[Violation]:
    headers, rewrite, redirect_path, redirect_host = results
    out: list[Violation] = []
    for x in headers:
        out += header_violations(x, WANT, route=ROUTE)
    for x in rewrite:
        out += rewrite_violations(x, expected_url="/new/path?k=v", route=ROUTE)
    for x in redirect_path:
        # Location keeps the request's scheme and authority; only the path changes.
        out += redirect_violations(x, code="301", location="http://server/moved", route=ROUTE)
    for x in redirect_host:
        out += redirect_violations(x, code="302", location="http://elsewhere.example/landing", route=ROUTE)
    return out


def test_m4_header_rewrite_redirect(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.HTTP):
        pytest.skip(reason)
    ns = mesh_env.namespace
    base = send_requests(mesh_env.api, ns, mesh_env.client, PROBES)
    assert [x.code for xs in base for x in xs] == ["200"] * 6, base
    assert base[0][0].request_header("x-meshcert-removed") == ["client"], "baseline: header reaches backend"
    assert base[1][0].url == "/old/path?k=v", f"baseline: backend sees the original URL, got {base[1][0].url}"
    vs = filter_route(
        "server", ns, add={"x-meshcert-added": "mesh"}, set_={"x-meshcert-set": "mesh"},
        remove=["x-meshcert-removed"], rewrite_from="/old", rewrite_to="/new",
        redirects=[("/redirect-path", 301, "", "/moved"),
                   ("/redirect-host", 302, "elsewhere.example", "/landing")],
    )  # fmt: skip
    with routing(mesh_env, [vs]):
        conv = converge_requests(mesh_env, PROBES, check, what="M4 filters applied")
        attach_json("M6_convergence_seconds", conv.bounds.report())
        headers, rewrite, redirect_path, redirect_host = conv.observed
        attach_json("M4 observed", {
            "backend headers": {n: headers[0].request_header(n) for n, _ in SENT},
            "backend url": rewrite[0].url,
            "redirect-path": [redirect_path[0].code, redirect_path[0].response_header("Location")],
            "redirect-host": [redirect_host[0].code, redirect_host[0].response_header("Location")],
        })  # fmt: skip
