from __future__ import annotations

from dataclasses import replace

from meshcert.invariants.dns import DnsRecord, check_dns_records, expected_service_records
from meshcert.invariants.reachability import (
    check_all_ports_reachable,
    check_client_ip_affinity,
    check_clusterip_reachable,
    check_nodeport_on_every_node,
    check_traffic_only_to,
)
from meshcert.invariants.service_views import EndpointSliceView, ServiceView
from meshcert.invariants.timeline import RequestOutcome
from meshcert.invariants.views import NodeView

from .recorded import items, load

SVC = ServiceView.from_api(load("service-web.json"))
(SLICE,) = (EndpointSliceView.from_api(s) for s in items("endpointslices-web.json"))
NODES = [NodeView.from_api(n) for n in items("nodes.json")]
FQDN = "web.meshcert-e1.svc.cluster.local"


def hits(*backends: str, ok: bool = True, start: float = 0) -> list[RequestOutcome]:
    return [RequestOutcome(start + i, ok, b) for i, b in enumerate(backends)]


def test_traffic_only_to_allowed() -> None:
    assert check_traffic_only_to(hits("a", "b", "a"), allowed={"a", "b", "c"}, invariant="E3") == []
    (v,) = check_traffic_only_to(hits("a", "x"), allowed={"a"}, invariant="E3")
    assert v.invariant == "E3" and str(v.diff) == "missing: {}, extra: {x}"
    assert check_traffic_only_to(hits("x", "a"), allowed={"a"}, invariant="E4", since=1) == []


def test_e6_all_ports() -> None:
    assert check_all_ports_reachable(SVC, {80: True, 9090: True}) == []
    (v,) = check_all_ports_reachable(SVC, {80: True, 9090: False})
    assert v.invariant == "E6" and str(v.diff) == "missing: {9090}, extra: {}"


def test_e7_clusterip_nodeport_affinity() -> None:
    assert check_clusterip_reachable(SVC, by_ip=True, by_name=True) == []
    assert [v.invariant for v in check_clusterip_reachable(SVC, by_ip=True, by_name=False)] == ["E7"]
    everywhere = {n.name: True for n in NODES}
    assert check_nodeport_on_every_node(SVC, NODES, everywhere) == []
    (v,) = check_nodeport_on_every_node(SVC, NODES, {**everywhere, "meshcert-worker2": False})
    assert v.diff is not None and v.diff.missing == {"meshcert-worker2"}
    sticky = replace(SVC, session_affinity="ClientIP")
    assert check_client_ip_affinity(sticky, hits("a", "a", "a")) == []
    (v,) = check_client_ip_affinity(sticky, hits("a", "b", "a"))
    assert v.invariant == "E7" and "{'a': 2, 'b': 1}" in v.message
    assert "precondition" in check_client_ip_affinity(SVC, hits("a"))[0].message


def test_e8_clusterip_records() -> None:
    expected = expected_service_records(SVC, [SLICE])
    assert expected == {
        DnsRecord(FQDN, "A", "10.96.120.15"),
        DnsRecord(f"_http._tcp.{FQDN}", "SRV", f"80 {FQDN}"),
        DnsRecord(f"_grpc._tcp.{FQDN}", "SRV", f"9090 {FQDN}"),
    }
    assert check_dns_records(SVC, expected, expected) == []
    wrong = (expected - {DnsRecord(FQDN, "A", "10.96.120.15")}) | {DnsRecord(FQDN, "A", "10.96.0.1")}
    (v,) = check_dns_records(SVC, expected, wrong)
    assert v.invariant == "E8"
    assert str(v.diff) == f"missing: {{{FQDN} A 10.96.120.15}}, extra: {{{FQDN} A 10.96.0.1}}"


def test_e8_headless_and_hostnames() -> None:
    headless = replace(SVC, cluster_ips=("None",))
    named = replace(SLICE.endpoints[0], hostname="web-0")
    records = expected_service_records(headless, [replace(SLICE, endpoints=(named, *SLICE.endpoints[1:]))])
    a = {r.value for r in records if r.name == FQDN and r.type == "A"}
    assert a == {"10.244.1.5", "10.244.2.7"}  # ready endpoints only
    assert DnsRecord(f"web-0.{FQDN}", "A", "10.244.1.5") in records
    assert DnsRecord(f"_http._tcp.{FQDN}", "SRV", f"8080 10-244-2-7.{FQDN}") in records


def test_e8_external_name() -> None:
    ext = replace(SVC, type="ExternalName", external_name="example.com.", cluster_ips=())
    assert expected_service_records(ext, []) == {DnsRecord(FQDN, "CNAME", "example.com")}
