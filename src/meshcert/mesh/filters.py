"""M4's probe set and oracle, shared by the Istio-native and the GAMMA (HTTPRoute) filter tests.

Why a module: the same four probes (headers, prefix rewrite, path redirect, host redirect) and the
same expectations judge both route APIs, so a difference between them is a difference of the
mesh, never of the test. The routes themselves are built by `meshcert.mesh.traffic.filter_route`
(VirtualService) and `meshcert.mesh.gamma.filter_http_route` (HTTPRoute) from `FILTERS`.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshcert.invariants.violations import Violation
from meshcert.mesh.checks import HeaderExpectation, header_violations, redirect_violations, rewrite_violations
from meshcert.mesh.echo import Exchange
from meshcert.mesh.probe import EchoRequest
from meshcert.mesh.traffic import FilterSpec, Redirect

FILTERS = FilterSpec(
    add={"x-meshcert-added": "mesh"},
    set_={"x-meshcert-set": "mesh"},
    remove=["x-meshcert-removed"],
    rewrite_from="/old",
    rewrite_to="/new",
    # 301 and 302: the two redirect codes Gateway API's standard channel allows.
    redirects=(
        Redirect("/redirect-path", 301, "", "/moved"),
        Redirect("/redirect-host", 302, "elsewhere.example", "/landing"),
    ),
)

SENT = (("x-meshcert-added", "client"), ("x-meshcert-set", "client"), ("x-meshcert-removed", "client"))
HEADERS = EchoRequest("/headers", headers=SENT, count=2)
REWRITE = EchoRequest("/old/path", query=(("k", "v"),), count=2)
PROBES = [HEADERS, REWRITE, *(EchoRequest(r.path) for r in FILTERS.redirects)]
WANT = HeaderExpectation(
    equal={"x-meshcert-set": ["mesh"]},
    contains={"x-meshcert-added": ["client", "mesh"]},
    absent=["x-meshcert-removed"],
)


def baseline_violations(results: Sequence[Sequence[Exchange]]) -> list[Violation]:
    """Before any filter: every probe answered 200 by a backend, headers and URL untouched."""
    wrong = [f"{p.path}: {x.code} {x.error}" for p, xs in zip(PROBES, results, strict=True) for x in xs
             if x.code != "200"]  # fmt: skip
    if not wrong and results[0][0].request_header("x-meshcert-removed") != ["client"]:
        wrong.append("the header to be removed does not reach the backend before the filter")
    if not wrong and results[1][0].url != "/old/path?k=v":
        wrong.append(f"backend saw {results[1][0].url} before the rewrite, not /old/path?k=v")
    return [Violation("M6", None, f"baseline: {w}") for w in wrong]


def filter_violations(results: Sequence[Sequence[Exchange]], *, route: str) -> list[Violation]:
    """M4 over the answers to `PROBES` (same order)."""
    headers, rewrite, *redirected = results
    out: list[Violation] = []
    for x in headers:
        out += header_violations(x, WANT, route=route)
    for x in rewrite:
        out += rewrite_violations(x, expected_url="/new/path?k=v", route=route)
    for r, xs in zip(FILTERS.redirects, redirected, strict=True):
        # Without a host, Location keeps the request's scheme and authority; only the path changes.
        location = f"http://{r.host or 'server'}{r.to}"
        for x in xs:
            out += redirect_violations(x, code=str(r.status), location=location, route=route)
    return out


def observed(results: Sequence[Sequence[Exchange]]) -> dict[str, object]:
    """What the backend saw and the proxy answered, for the report."""
    headers, rewrite, *redirected = results
    out: dict[str, object] = {
        "backend headers": {n: headers[0].request_header(n) for n, _ in SENT},
        "backend url": rewrite[0].url,
    }
    for r, xs in zip(FILTERS.redirects, redirected, strict=True):
        out[r.path] = [xs[0].code, xs[0].response_header("Location")]
    return out
