"""Builders for M4/M5/M9/M11/M12 resources and the mirror sink; GAMMA routes and CRD loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcert.errors import ConfigError
from meshcert.mesh.gamma import (
    filter_http_route,
    matching_http_route,
    mirror_http_route,
    standard_crds,
    version_services,
    weighted_grpc_route,
    weighted_http_route,
)
from meshcert.mesh.matching import PRECEDENCE_RULES, RULE_HEADER
from meshcert.mesh.traffic import (
    FilterSpec,
    Redirect,
    consumer_route,
    fault_route,
    filter_route,
    hash_rule,
    mirror_route,
    sink_manifests,
)


def _spec(*redirects: Redirect) -> FilterSpec:
    return FilterSpec({"x-a": "1"}, {"x-s": "2"}, ["x-r"], "/old", "/new", redirects)


def test_filter_route_puts_redirects_and_rewrite_before_the_header_route() -> None:
    vs = filter_route("server", "ns", _spec(Redirect("/r", 301, "", "/moved")))
    http = vs["spec"]["http"]
    assert [h["name"] for h in http] == ["redirect-301", "rewrite", "headers"]
    assert http[0]["redirect"] == {"uri": "/moved", "redirectCode": 301}
    assert http[1]["match"] == [{"uri": {"prefix": "/old/"}}] and http[1]["rewrite"] == {"uri": "/new/"}
    assert http[2]["headers"]["request"] == {"add": {"x-a": "1"}, "set": {"x-s": "2"}, "remove": ["x-r"]}
    with pytest.raises(ConfigError, match="not a redirect"):
        filter_route("s", "n", _spec(Redirect("/r", 200, "", "/x")))


def test_consumer_route_is_exported_only_to_its_namespace() -> None:
    vs = consumer_route("server", "prod", subset="v2", name="consumer")
    assert vs["spec"]["exportTo"] == ["."]
    assert vs["spec"]["hosts"] == ["server.prod.svc.cluster.local"]
    assert vs["metadata"] == {"name": "consumer"}


def test_fault_route_scoped_by_header_keeps_a_clean_route() -> None:
    vs = fault_route("server", "ns", abort_percent=30, only_header=("X-Fault", "yes"))
    faulty, clean = vs["spec"]["http"]
    assert faulty["fault"] == {"abort": {"percentage": {"value": 30}, "httpStatus": 503}}
    assert faulty["match"] == [{"headers": {"x-fault": {"exact": "yes"}}}]
    assert "fault" not in clean and clean["retries"] == {"attempts": 0}
    delay = fault_route("server", "ns", delay_percent=30, delay_s=0.5)["spec"]["http"][0]["fault"]
    assert delay == {"delay": {"percentage": {"value": 30}, "fixedDelay": "0.5s"}}
    with pytest.raises(ConfigError):
        fault_route("server", "ns")
    with pytest.raises(ConfigError):
        fault_route("server", "ns", abort_percent=130)


def test_mirror_route_and_sink() -> None:
    http = mirror_route("server", "ns", subset="v1", mirror_host="server", mirror_subset="v2", percent=25)
    (h,) = http["spec"]["http"]
    assert h["mirror"] == {"host": "server.ns.svc.cluster.local", "subset": "v2"}
    assert h["mirrorPercentage"] == {"value": 25}
    deploy, svc = sink_manifests("sink", delay_s=3)
    script = deploy["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "LocalPort=>8080" in script and "500 Internal" in script
    assert "sleep 3 if $first =~ m{^\\S+ /slow};" in script
    assert svc["spec"]["ports"][0]["appProtocol"] == "http"


def test_hash_rule() -> None:
    dr = hash_rule("server", "ns", header="X-User")
    assert dr["spec"]["trafficPolicy"]["loadBalancer"] == {"consistentHash": {"httpHeaderName": "x-user"}}


def test_gamma_routes_attach_to_the_service() -> None:
    route = weighted_http_route("server", {"v1": 70, "v2": 30})
    assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "server", "port": 80}]
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "server-v1", "port": 80, "weight": 70},
        {"name": "server-v2", "port": 80, "weight": 30},
    ]
    grpc = weighted_grpc_route("server", {"v1": 0, "v2": 100})
    assert grpc["kind"] == "GRPCRoute"
    assert grpc["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "server", "port": 7070}]
    assert grpc["spec"]["rules"][0]["backendRefs"][1] == {"name": "server-v2", "port": 7070, "weight": 100}
    svc = version_services("server", ["v1"])[0]
    assert svc["spec"]["selector"] == {"app": "server", "version": "v1"}
    with pytest.raises(ConfigError):
        weighted_http_route("server", {"v1": 0})


def test_gamma_matching_route_lists_rules_lowest_precedence_first() -> None:
    route = matching_http_route("server", PRECEDENCE_RULES)
    rules = route["spec"]["rules"]
    tags = [r["filters"][0]["requestHeaderModifier"]["set"][0] for r in rules]
    assert tags[0] == {"name": RULE_HEADER, "value": PRECEDENCE_RULES[-1].name}
    exact = next(r for r in rules if r["filters"][0]["requestHeaderModifier"]["set"][0]["value"] == "exact")
    assert exact["matches"] == [{"path": {"type": "Exact", "value": "/match/exact"}}]
    assert exact["backendRefs"] == [{"name": "server-v2", "port": 80}]


def test_standard_crds_skip_non_crd_documents(tmp_path: Path) -> None:
    d = tmp_path / "config" / "crd" / "standard"
    d.mkdir(parents=True)
    (d / "a.yaml").write_text(
        "kind: CustomResourceDefinition\nmetadata: {name: a}\n---\nkind: ValidatingAdmissionPolicy\n"
    )
    assert [c["metadata"]["name"] for c in standard_crds(tmp_path)] == ["a"]
    (d / "a.yaml").write_text("kind: Other\n")
    with pytest.raises(ConfigError, match="no CustomResourceDefinition"):
        standard_crds(tmp_path)


def test_gamma_filter_route_mirrors_the_virtual_service_shape() -> None:
    host_redirect = Redirect("/h", 302, "elsewhere.example", "/landing")
    route = filter_http_route("server", _spec(Redirect("/p", 301, "", "/moved"), host_redirect))
    redirect_p, redirect_h, rewrite, headers = route["spec"]["rules"]
    assert redirect_p["matches"] == [{"path": {"type": "Exact", "value": "/p"}}]
    assert redirect_p["filters"][0]["requestRedirect"] == {
        "statusCode": 301, "path": {"type": "ReplaceFullPath", "replaceFullPath": "/moved"}
    }  # fmt: skip
    assert "backendRefs" not in redirect_p
    assert redirect_h["filters"][0]["requestRedirect"]["hostname"] == "elsewhere.example"
    assert rewrite["filters"] == [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}},
        }
    ]
    assert rewrite["backendRefs"] == [{"name": "server", "port": 80}]
    assert headers["filters"][0]["requestHeaderModifier"] == {
        "add": [{"name": "x-a", "value": "1"}], "set": [{"name": "x-s", "value": "2"}], "remove": ["x-r"]
    }  # fmt: skip
    with pytest.raises(ConfigError, match="HTTPRoute allows 301, 302"):
        filter_http_route("server", _spec(Redirect("/p", 308, "", "/x")))


def test_gamma_mirror_route_copies_a_percentage_to_another_service() -> None:
    route = mirror_http_route("server", version="v1", mirror_service="server-v2", percent=25)
    [rule] = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": "server-v1", "port": 80}]
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "server-v2", "port": 80}, "percent": 25},
        }
    ]
    with pytest.raises(ConfigError, match="percent"):
        mirror_http_route("server", version="v1", mirror_service="sink", percent=101)
