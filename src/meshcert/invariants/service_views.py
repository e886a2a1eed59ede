"""Typed views of Services and EndpointSlices (discovery.k8s.io/v1), parsed from API JSON.

Why: the E-group checkers compare what the EndpointSlice controller published with what the pods
say. Field semantics and defaults from core/v1 and discovery/v1 types.go: an endpoint's
``ready``/``serving`` nil means true, ``terminating`` nil means false; a Service's ``selector``
absent means "endpoints are managed by someone else".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshcert.invariants import _wire as w
from meshcert.invariants.views import ObjectMeta
from meshcert.invariants.violations import ObjectRef

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"


@dataclass(frozen=True)
class ServicePort:
    port: int
    name: str = ""
    protocol: str = "TCP"
    target_port: int | str = 0  # defaults to ``port``
    node_port: int = 0

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> ServicePort:
        port = w.integer(raw, "port")
        target = w.int_or_string(raw, "targetPort")
        return cls(
            port=port,
            name=w.string(raw, "name"),
            protocol=w.string(raw, "protocol", "TCP"),
            target_port=port if target is None else target,
            node_port=w.integer(raw, "nodePort"),
        )


@dataclass(frozen=True)
class ServiceView:
    meta: ObjectMeta
    type: str = "ClusterIP"
    selector: Mapping[str, str] | None = None
    cluster_ips: tuple[str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    publish_not_ready_addresses: bool = False
    session_affinity: str = "None"
    external_name: str = ""
    ip_families: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> ServiceView:
        spec = w.obj(raw, "spec", kind="Service")
        ips = w.strings(spec, "clusterIPs") or (
            (w.string(spec, "clusterIP"),) if w.string(spec, "clusterIP") else ()
        )
        return cls(
            meta=ObjectMeta.from_api(raw),
            type=w.string(spec, "type", "ClusterIP"),
            selector=None if w.opt_obj(spec, "selector") is None else w.string_map(spec, "selector"),
            cluster_ips=ips,
            ports=tuple(ServicePort.from_api(p) for p in w.objs(spec, "ports")),
            publish_not_ready_addresses=w.boolean(spec, "publishNotReadyAddresses"),
            session_affinity=w.string(spec, "sessionAffinity", "None"),
            external_name=w.string(spec, "externalName"),
            ip_families=w.strings(spec, "ipFamilies"),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def headless(self) -> bool:
        return self.cluster_ips == ("None",)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Service", self.meta.name, self.meta.namespace)


@dataclass(frozen=True)
class EndpointView:
    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    hostname: str = ""
    node_name: str = ""
    target_pod: str = ""  # "namespace/name" of a Pod targetRef, else ""

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> EndpointView:
        cond = w.obj(raw, "conditions")
        ref = w.obj(raw, "targetRef")
        target = ""
        if w.string(ref, "kind") == "Pod":
            target = f"{w.string(ref, 'namespace')}/{w.string(ref, 'name')}"
        return cls(
            addresses=w.strings(raw, "addresses"),
            ready=w.boolean(cond, "ready", True),
            serving=w.boolean(cond, "serving", True),
            terminating=w.boolean(cond, "terminating", False),
            hostname=w.string(raw, "hostname"),
            node_name=w.string(raw, "nodeName"),
            target_pod=target,
        )


@dataclass(frozen=True)
class EndpointPort:
    port: int | None
    name: str = ""
    protocol: str = "TCP"

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> EndpointPort:
        return cls(w.opt_integer(raw, "port"), w.string(raw, "name"), w.string(raw, "protocol", "TCP"))


@dataclass(frozen=True)
class EndpointSliceView:
    meta: ObjectMeta
    address_type: str
    endpoints: tuple[EndpointView, ...] = ()
    ports: tuple[EndpointPort, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> EndpointSliceView:
        return cls(
            meta=ObjectMeta.from_api(raw),
            address_type=w.string(raw, "addressType", kind="EndpointSlice"),
            endpoints=tuple(EndpointView.from_api(e) for e in w.objs(raw, "endpoints")),
            ports=tuple(EndpointPort.from_api(p) for p in w.objs(raw, "ports")),
        )

    @property
    def service_name(self) -> str:
        return self.meta.labels.get(SERVICE_NAME_LABEL, "")

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("EndpointSlice", self.meta.name, self.meta.namespace)
