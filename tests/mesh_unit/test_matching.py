"""M3 oracle: Gateway API precedence, and the VirtualService that encodes it for first-match Istio."""

from __future__ import annotations

import random

import pytest

from meshcert.errors import ConfigError
from meshcert.mesh.matching import (
    NO_ROUTE,
    PRECEDENCE_PROBES,
    PRECEDENCE_RULES,
    RULE_HEADER,
    Expected,
    MatchRule,
    PathType,
    RouteMatch,
    expected_for,
    select_rule,
    virtual_service,
)
from meshcert.mesh.probe import EchoRequest


def _rule(req: EchoRequest) -> str:
    return expected_for(PRECEDENCE_RULES, req, default=None).rule


def test_exact_beats_prefix_and_longest_prefix_wins() -> None:
    assert _rule(EchoRequest("/match/exact")) == "exact"
    assert _rule(EchoRequest("/match/exact/sub")) == "prefix-long"
    assert _rule(EchoRequest("/match/other")) == "prefix-short"


def test_header_query_method_beat_their_plain_prefix() -> None:
    assert (
        _rule(EchoRequest("/hdr", headers=(("X-Env", "canary"),))) == "header"
    )  # names are case-insensitive
    assert _rule(EchoRequest("/hdr", headers=(("x-env", "prod"),))) == "hdr-base"
    assert _rule(EchoRequest("/q", query=(("tier", "gold"),))) == "query"
    assert _rule(EchoRequest("/q")) == "query-base"
    assert _rule(EchoRequest("/m", method="POST")) == "method"
    assert _rule(EchoRequest("/m")) == "method-base"


def test_prefix_is_path_element_wise_and_unmatched_is_404_or_default() -> None:
    assert expected_for(PRECEDENCE_RULES, EchoRequest("/matchx"), default=None) == Expected("", "", NO_ROUTE)
    assert expected_for(PRECEDENCE_RULES, EchoRequest("/unrouted"), default="v1") == Expected("default", "v1")


def test_method_outranks_headers_at_equal_path() -> None:
    rules = [
        MatchRule("two-headers", (RouteMatch("/p", headers=(("a", "1"), ("b", "2"))),), "v1"),
        MatchRule("method", (RouteMatch("/p", method="PUT"),), "v2"),
    ]
    req = EchoRequest("/p", method="PUT", headers=(("a", "1"), ("b", "2")))
    assert select_rule(rules, req) == rules[1]


def test_precedence_does_not_depend_on_rule_order() -> None:
    shuffled = list(PRECEDENCE_RULES)
    random.Random(7).shuffle(shuffled)
    for req in PRECEDENCE_PROBES:
        assert expected_for(shuffled, req, default=None) == expected_for(PRECEDENCE_RULES, req, default=None)


def test_every_rule_is_reached_by_some_probe() -> None:
    reached = {_rule(r) for r in PRECEDENCE_PROBES}
    assert reached - {""} == {r.name for r in PRECEDENCE_RULES}


def test_virtual_service_lists_matches_in_precedence_order() -> None:
    vs = virtual_service("server", "ns", PRECEDENCE_RULES, default="v1")
    names = [h["name"].rsplit("-", 1)[0] for h in vs["spec"]["http"]]
    assert names.index("exact") < names.index("prefix-long") < names.index("prefix-short")
    assert names.index("header") < names.index("hdr-base")
    assert names.index("method") < names.index("method-base")
    assert names[-1] == "default"
    first = vs["spec"]["http"][0]
    assert first["headers"]["request"]["set"] == {RULE_HEADER: "exact"}
    assert first["route"] == [{"destination": {"host": "server.ns.svc.cluster.local", "subset": "v2"}}]


def test_virtual_service_emits_path_prefix_as_exact_or_slash_prefix() -> None:
    vs = virtual_service(
        "server", "ns", [MatchRule("r", (RouteMatch("/hdr", headers=(("X-Env", "a"),)),), "v1")]
    )
    (entry,) = vs["spec"]["http"]
    assert [m["uri"] for m in entry["match"]] == [{"exact": "/hdr"}, {"prefix": "/hdr/"}]
    assert all(m["headers"] == {"x-env": {"exact": "a"}} for m in entry["match"])


def test_root_prefix_matches_everything() -> None:
    m = RouteMatch("/")
    assert m.matches(EchoRequest("/anything")) and m.path_type is PathType.PREFIX


def test_paths_must_be_absolute() -> None:
    with pytest.raises(ConfigError, match="path"):
        RouteMatch("relative")
