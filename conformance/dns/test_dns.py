"""E8: cluster DNS serves the records the Kubernetes DNS specification promises.

Expected records are derived from the same snapshot of Service + EndpointSlices
(invariants/dns.py); answers come from `testapp resolve` in a client pod (Go's resolver through
the pod's resolv.conf, i.e. CoreDNS). Manifests: fixtures/conformance/dns/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from meshcert.conformance_support import converge_checks, get_service, label, list_pods, list_slices
from meshcert.errors import KubeError
from meshcert.invariants.dns import DEFAULT_ZONE, DnsRecord, check_dns_records, expected_service_records
from meshcert.invariants.endpoints import check_ready_endpoints
from meshcert.invariants.violations import Violation
from meshcert.kube.apply import apply_manifests
from meshcert.kube.exec import testapp_resolve as resolve_from_pod
from meshcert.kube.waits import wait_for_deployment_available, wait_for_pods_ready

pytestmark = [pytest.mark.e2e, pytest.mark.conformance, pytest.mark.dns, pytest.mark.dataplane]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "dns"
GROUP = "dns"
READY_TIMEOUT = 120.0  # pods start in seconds; room for a loaded 2-core host
#: CoreDNS learns Services and EndpointSlices by watch and answers at once; each probe runs
#: client pods (~3 s each), so 60 s allows several full rounds.
DNS_TIMEOUT = 60.0


def _deploy(api: ApiClient, ns: str, run_id: str) -> None:
    apply_manifests(api, [FIXTURES / "web.yaml"], namespace=ns, run_id=run_id)
    wait_for_deployment_available(api, ns, "web", timeout=READY_TIMEOUT)
    wait_for_pods_ready(api, ns, label_selector="app=web", count=3, timeout=READY_TIMEOUT)
    for service in ("web", "web-headless"):
        converge_checks(
            lambda s=service: check_ready_endpoints(  # type: ignore[misc]
                get_service(api, ns, s), list_slices(api, ns, s), list_pods(api, ns)
            ),
            what=f"E1 precondition {service}",
            timeout=READY_TIMEOUT,
        )


def _answers(api: ApiClient, ns: str, run_id: str, name: str, rtype: str) -> set[DnsRecord]:
    """What the resolver returns for ``name``, as records (SRV answers are "target:port")."""
    try:
        raw = resolve_from_pod(api, ns, name, run_id=run_id, record_type=rtype)
    except KubeError:  # NXDOMAIN or no answer: the name has no records
        return set()
    if rtype == "SRV":
        out = set()
        for answer in raw:
            target, _, port = str(answer).rpartition(":")
            out.add(DnsRecord(name, "SRV", f"{port} {target.rstrip('.')}"))
        return out
    return {DnsRecord(name, "A", str(ip)) for ip in raw}


def _dns_check(api: ApiClient, ns: str, run_id: str, service: str) -> list[Violation]:
    svc = get_service(api, ns, service)
    expected = expected_service_records(svc, list_slices(api, ns, service))
    observed: set[DnsRecord] = set()
    for name in sorted({(r.name, "SRV" if r.type == "SRV" else "A") for r in expected}):
        observed |= _answers(api, ns, run_id, *name)
    return check_dns_records(svc, expected, observed)


def test_e8_clusterip_a_and_srv_records(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E8")
    _deploy(kube, namespace, run_id)
    converge_checks(
        lambda: _dns_check(kube, namespace, run_id, "web"),
        what="E8 web",
        timeout=DNS_TIMEOUT,
        consecutive=1,
        interval=2,
    )


def test_e8_headless_pod_ips_srv_and_hostname_subdomain(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E8")
    _deploy(kube, namespace, run_id)
    records = expected_service_records(
        get_service(kube, namespace, "web-headless"), list_slices(kube, namespace, "web-headless")
    )
    host = f"host-a.web-headless.{namespace}.svc.{DEFAULT_ZONE}"
    assert any(r.name == host for r in records), f"precondition: no hostname record in {records}"
    converge_checks(
        lambda: _dns_check(kube, namespace, run_id, "web-headless"),
        what="E8 web-headless",
        timeout=DNS_TIMEOUT,
        consecutive=1,
        interval=2,
    )


def test_e8_externalname_resolves_to_its_target(kube: ApiClient, namespace: str, run_id: str) -> None:
    """ExternalName → CNAME. The test app's resolver follows CNAMEs and reports addresses, so the
    check is that the alias resolves to exactly its target's records (the target is the web
    Service's in-cluster name; there is no outside DNS here)."""
    label(GROUP, "E8")
    _deploy(kube, namespace, run_id)
    target = f"web.{namespace}.svc.{DEFAULT_ZONE}"
    alias = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "alias"},
        "spec": {"type": "ExternalName", "externalName": target},
    }
    apply_manifests(kube, [alias], namespace=namespace, run_id=run_id)
    svc = get_service(kube, namespace, "alias")
    cname = expected_service_records(svc, [])
    assert cname == {DnsRecord(f"alias.{namespace}.svc.{DEFAULT_ZONE}", "CNAME", target)}
    web = get_service(kube, namespace, "web")
    alias_name = f"alias.{namespace}.svc.{DEFAULT_ZONE}"
    expected = {DnsRecord(alias_name, "A", ip) for ip in web.cluster_ips}
    converge_checks(
        lambda: check_dns_records(svc, expected, _answers(kube, namespace, run_id, alias_name, "A")),
        what="E8 alias",
        timeout=DNS_TIMEOUT,
        consecutive=1,
        interval=2,
    )
