"""M3: matching precedence (exact > prefix path, headers, query, method); unmatched → 404, or the
default route when there is one.

The rule table and the oracle are meshcert.mesh.matching's: every probe's expected rule follows
from Gateway API precedence, and every rule tags the request (``x-meshcert-rule``) so the check
sees which rule matched at the backend, not only which version answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import Violation
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import table_summary, table_violations, untagged_baseline
from meshcert.mesh.matching import (
    PRECEDENCE_PROBES,
    PRECEDENCE_RULES,
    virtual_service,
)
from meshcert.mesh.probe import Results, converge_requests, unsupported
from meshcert.mesh.routing import subsets_rule
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

#: Two requests per probe: a rule applied to only some requests (it must not be) shows up as a
#: mixed answer, and the whole table still runs in one exec of ~3 s.
PROBES = [replace(p, count=2) for p in PRECEDENCE_PROBES]


def table_check(default: str | None) -> Callable[[Results], list[Violation]]:
    return lambda results: table_violations(
        PRECEDENCE_RULES, PROBES, results, default=default, route="VirtualService server"
    )


def test_m3_matching_precedence_and_default(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.HTTP):
        pytest.skip(reason)
    ns = mesh_env.namespace
    converge_requests(mesh_env, PROBES, untagged_baseline, what="baseline: every probe 200, untagged")
    dr = subsets_rule("server", ns, ["v1", "v2"])
    with routing(mesh_env, [dr, virtual_service("server", ns, PRECEDENCE_RULES)]):
        conv = converge_requests(mesh_env, PROBES, table_check(None), what="M3 rule table (no default)")
        attach_json("M6_convergence_seconds", conv.bounds.report())
        attach_json(
            "M3 observed rule/version/code per probe (no default)", table_summary(PROBES, conv.observed)
        )
        with routing(mesh_env, [virtual_service("server", ns, PRECEDENCE_RULES, default="v1")]):
            conv = converge_requests(mesh_env, PROBES, table_check("v1"), what="M3 rule table with default")
            attach_json("M6_convergence_seconds (default added)", conv.bounds.report())
            attach_json(
                "M3 observed rule/version/code per probe (default v1)", table_summary(PROBES, conv.observed)
            )
