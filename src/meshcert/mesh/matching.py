"""M3 matching precedence: route rules as data, the Gateway API precedence oracle, and the Istio
VirtualService that implements them (pure; unit-tested).

Why an oracle instead of hand-written expectations: the precedence rules of the Gateway API
HTTPRoute spec (HTTPRouteRule.matches) decide which rule a request takes when several match —
exact path, then the longest prefix, then a method match, then the most header matches, then the
most query matches, then list order. `select_rule` implements exactly that order, so the
expected backend of every probe follows from the rule table, and the same table drives both the
Istio-native VirtualService (which is first-match, so `virtual_service` emits the rules sorted by
that precedence) and the GAMMA HTTPRoute (which the mesh must sort itself; meshcert.mesh.gamma
lists the rules in reverse to prove it does).

Every rule sets the request header ``x-meshcert-rule`` to its name, echoed by the backend: the
check sees *which rule* matched, not only which of the two backends answered.

Prefix semantics are Gateway API's (path-element-wise: ``/match`` matches ``/match`` and
``/match/x`` but not ``/matchx``). Istio's VirtualService ``prefix`` is a string prefix, so a
prefix ``p`` is emitted as two matches, ``exact: p`` or ``prefix: p/``, which is the same set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meshcert.errors import ConfigError
from meshcert.mesh.echo import Headers
from meshcert.mesh.probe import EchoRequest
from meshcert.mesh.routing import NETWORKING, fqdn

RULE_HEADER = "x-meshcert-rule"
#: Status of a request no rule matches when the route has no default (Istio and Gateway API: 404).
NO_ROUTE = "404"


class PathType(StrEnum):
    EXACT = "Exact"
    PREFIX = "PathPrefix"


@dataclass(frozen=True)
class RouteMatch:
    """One HTTPRouteMatch: every given condition must hold (an AND)."""

    path: str = "/"
    path_type: PathType = PathType.PREFIX
    method: str = ""
    headers: Headers = ()
    query: Headers = ()

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ConfigError("RouteMatch", "path", f"must start with '/', got {self.path!r}")

    def matches(self, req: EchoRequest) -> bool:
        if self.path_type is PathType.EXACT:
            path_ok = req.path == self.path
        else:
            base = self.path.rstrip("/")
            path_ok = base in ("", req.path) or req.path.startswith(base + "/")
        if not path_ok or (self.method and req.method != self.method):
            return False
        sent = {k.lower(): v for k, v in req.headers}
        query = dict(req.query)
        return all(sent.get(k.lower()) == v for k, v in self.headers) and all(
            query.get(k) == v for k, v in self.query
        )

    def precedence(self) -> tuple[int, int, int, int, int]:
        """Sort key, smaller wins: exact path, longer prefix, method, #headers, #query."""
        return (
            0 if self.path_type is PathType.EXACT else 1,
            -len(self.path),
            0 if self.method else 1,
            -len(self.headers),
            -len(self.query),
        )


@dataclass(frozen=True)
class MatchRule:
    """A route rule: any of ``matches`` sends the request to subset/version ``backend``."""

    name: str
    matches: tuple[RouteMatch, ...]
    backend: str


@dataclass(frozen=True)
class Expected:
    """What a request should get: the rule's name and backend, or no route (``code`` 404)."""

    rule: str
    backend: str
    code: str = "200"


def select_rule(rules: Sequence[MatchRule], req: EchoRequest) -> MatchRule | None:
    """The rule Gateway API precedence picks for ``req`` (ties: the earlier rule), or None."""
    best: tuple[tuple[int, int, int, int, int], int, MatchRule] | None = None
    for order, rule in enumerate(rules):
        for m in rule.matches:
            if m.matches(req):
                key = (m.precedence(), order, rule)
                if best is None or key[:2] < best[:2]:
                    best = key
    return best[2] if best else None


def expected_for(rules: Sequence[MatchRule], req: EchoRequest, *, default: str | None) -> Expected:
    """The oracle: the selected rule, else the default backend (rule "default"), else 404."""
    rule = select_rule(rules, req)
    if rule is not None:
        return Expected(rule.name, rule.backend)
    if default is not None:
        return Expected("default", default)
    return Expected("", "", NO_ROUTE)


def _istio_uri(m: RouteMatch) -> list[dict[str, str]]:
    if m.path_type is PathType.EXACT:
        return [{"exact": m.path}]
    base = m.path.rstrip("/")
    return [{"prefix": "/"}] if not base else [{"exact": base}, {"prefix": base + "/"}]


def _istio_matches(m: RouteMatch) -> list[dict[str, Any]]:
    out = []
    for uri in _istio_uri(m):
        match: dict[str, Any] = {"uri": uri}
        if m.method:
            match["method"] = {"exact": m.method}
        if m.headers:
            match["headers"] = {k.lower(): {"exact": v} for k, v in m.headers}
        if m.query:
            match["queryParams"] = {k: {"exact": v} for k, v in m.query}
        out.append(match)
    return out


def _tagged_destination(host: str, subset: str, rule: str) -> dict[str, Any]:
    return {
        "headers": {"request": {"set": {RULE_HEADER: rule}}},
        "route": [{"destination": {"host": host, "subset": subset}}],
    }


def virtual_service(
    service: str, namespace: str, rules: Sequence[MatchRule], *, default: str | None = None
) -> dict[str, Any]:
    """An Istio VirtualService for ``rules``: one http entry per match, sorted by Gateway API
    precedence (Istio takes the first matching entry), plus a catch-all to ``default`` if given.
    Needs a DestinationRule with the backends as subsets (routing.subsets_rule)."""
    host = fqdn(service, namespace)
    entries = sorted(
        ((m.precedence(), order, m, rule) for order, rule in enumerate(rules) for m in rule.matches),
        key=lambda e: e[:2],
    )
    http = [
        {
            "name": f"{rule.name}-{i}",
            "match": _istio_matches(m),
            **_tagged_destination(host, rule.backend, rule.name),
        }
        for i, (_, _, m, rule) in enumerate(entries)
    ]
    if default is not None:
        http.append({"name": "default", **_tagged_destination(host, default, "default")})
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": service},
        "spec": {"hosts": [host], "http": http},
    }


#: The M3 rule table: each pair of rules competes on exactly one precedence level, and the two
#: sides of each pair go to different backends, so a wrong choice changes rule *and* version.
PRECEDENCE_RULES: tuple[MatchRule, ...] = (
    MatchRule("prefix-short", (RouteMatch("/match"),), "v2"),
    MatchRule("prefix-long", (RouteMatch("/match/exact"),), "v1"),
    MatchRule("exact", (RouteMatch("/match/exact", PathType.EXACT),), "v2"),
    MatchRule("hdr-base", (RouteMatch("/hdr"),), "v1"),
    MatchRule("header", (RouteMatch("/hdr", headers=(("x-env", "canary"),)),), "v2"),
    MatchRule("query-base", (RouteMatch("/q"),), "v1"),
    MatchRule("query", (RouteMatch("/q", query=(("tier", "gold"),)),), "v2"),
    MatchRule("method-base", (RouteMatch("/m"),), "v1"),
    MatchRule("method", (RouteMatch("/m", method="POST"),), "v2"),
)

#: Probes covering every rule, the losing side of every pair, and unmatched paths (one of which,
#: ``/matchx``, would match ``/match`` under string-prefix semantics but not path prefixes).
PRECEDENCE_PROBES: tuple[EchoRequest, ...] = (
    EchoRequest("/match/exact"),
    EchoRequest("/match/exact/sub"),
    EchoRequest("/match/other"),
    EchoRequest("/hdr", headers=(("x-env", "canary"),)),
    EchoRequest("/hdr", headers=(("x-env", "prod"),)),
    EchoRequest("/q", query=(("tier", "gold"),)),
    EchoRequest("/q", query=(("tier", "silver"),)),
    EchoRequest("/m", method="POST"),
    EchoRequest("/m"),
    EchoRequest("/matchx"),
    EchoRequest("/unrouted"),
)
