"""E8: the DNS records cluster DNS must serve for a Service, derived from its slices.

Why: the DNS test resolves names from a pod and compares the answers with what the Kubernetes DNS
specification promises; deriving the promise from the same snapshot of Service + EndpointSlices
keeps the check exact (missing/extra diff) instead of "some answer came back".

Oracle: kubernetes/dns docs/specification.md (schema 1.1.0) and CoreDNS plugin/kubernetes:
- ClusterIP Service: ``<svc>.<ns>.svc.<zone>`` A/AAAA → the ClusterIP(s);
  SRV ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` → port and ``<svc>.<ns>.svc.<zone>`` per named port.
- Headless Service: A/AAAA → the addresses of ready endpoints; SRV per named port and endpoint →
  target ``<hostname>.<svc>.<ns>.svc.<zone>`` where hostname is the endpoint's hostname (pod
  spec.hostname with subdomain = Service name) or the address with dashes; with a hostname also
  ``<hostname>.<svc>.<ns>.svc.<zone>`` A → that address.
- ExternalName: CNAME → spec.externalName.
SRV priority and weight are not compared (CoreDNS computes weights; the spec does not fix them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshcert.invariants.endpoints import service_slices
from meshcert.invariants.service_views import EndpointSliceView, ServiceView
from meshcert.invariants.violations import Violation, set_violation

DEFAULT_ZONE = "cluster.local"  # kubeadm's and kind's default clusterDomain


@dataclass(frozen=True, order=True)
class DnsRecord:
    """``name type value``; SRV value is "<port> <target>", names without the trailing dot."""

    name: str
    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.name} {self.type} {self.value}"


def _addr_type(ip: str) -> str:
    return "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"


def _dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def expected_service_records(
    service: ServiceView, slices: Sequence[EndpointSliceView], *, zone: str = DEFAULT_ZONE
) -> frozenset[DnsRecord]:
    """The records a conformant cluster DNS serves for ``service`` given its EndpointSlices."""
    fqdn = f"{service.name}.{service.namespace}.svc.{zone}"
    if service.type == "ExternalName":
        return frozenset({DnsRecord(fqdn, "CNAME", service.external_name.rstrip("."))})
    records: set[DnsRecord] = set()
    named = [p for p in service.ports if p.name]
    if not service.headless:
        for ip in service.cluster_ips:
            records.add(DnsRecord(fqdn, _addr_type(ip), ip))
        for p in named:
            records.add(DnsRecord(f"_{p.name}._{p.protocol.lower()}.{fqdn}", "SRV", f"{p.port} {fqdn}"))
        return frozenset(records)
    for s in service_slices(service, slices):
        if s.address_type == "FQDN":
            continue
        for e in s.endpoints:
            if not e.ready:
                continue
            for ip in e.addresses:
                host = e.hostname or _dashed(ip)
                records.add(DnsRecord(fqdn, _addr_type(ip), ip))
                if e.hostname:
                    records.add(DnsRecord(f"{host}.{fqdn}", _addr_type(ip), ip))
                for p in named:
                    port = next((sp.port for sp in s.ports if sp.name == p.name), None)
                    if port is not None:
                        records.add(
                            DnsRecord(
                                f"_{p.name}._{p.protocol.lower()}.{fqdn}", "SRV", f"{port} {host}.{fqdn}"
                            )
                        )
    return frozenset(records)


def check_dns_records(
    service: ServiceView, expected: Iterable[DnsRecord], observed: Iterable[DnsRecord]
) -> list[Violation]:
    """E8: the answers to the queried names equal the expected records (missing/extra diff).

    Query every name in ``expected`` (and any name that must not exist); pass all answers.
    """
    return set_violation(
        "E8",
        service.ref,
        "DNS answers differ",
        expected=(str(r) for r in expected),
        observed=(str(r) for r in observed),
    )
