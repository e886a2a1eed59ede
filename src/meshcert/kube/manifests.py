"""Builders for the two workload objects every suite deploys: a Deployment and its Service.

Why: the mesh's echo set, the mirror sink and the in-cluster Toxiproxy are all "one Deployment of
one container, selected by one Service"; writing that shape out in each module is where a
selector and a template label drift apart. Callers pass only what differs (labels, containers,
ports); everything returned is a plain manifest for `meshcert.kube.apply`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Test workloads exit at once on SIGTERM (nothing to drain); 1 s keeps namespace and rollout
#: teardown from waiting out Kubernetes' default 30 s grace period.
FAST_GRACE_SECONDS = 1


def deployment(
    name: str,
    labels: Mapping[str, str],
    containers: Sequence[Mapping[str, Any]],
    *,
    replicas: int = 1,
    pod_annotations: Mapping[str, str] | None = None,
    grace_seconds: int = FAST_GRACE_SECONDS,
) -> dict[str, Any]:
    """A Deployment whose selector, pod labels and object labels are all ``labels``."""
    pod_meta: dict[str, Any] = {"labels": dict(labels)}
    if pod_annotations:
        pod_meta["annotations"] = dict(pod_annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": pod_meta,
                "spec": {
                    "terminationGracePeriodSeconds": grace_seconds,
                    "containers": [dict(c) for c in containers],
                },
            },
        },
    }


def service(
    name: str,
    labels: Mapping[str, str],
    ports: Sequence[Mapping[str, Any]],
    *,
    selector: Mapping[str, str] | None = None,
    type_: str = "",
) -> dict[str, Any]:
    """A Service selecting ``selector`` (default: ``labels``) on ``ports``."""
    spec: dict[str, Any] = {"selector": dict(selector if selector is not None else labels),
                            "ports": [dict(p) for p in ports]}  # fmt: skip
    if type_:
        spec["type"] = type_
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": spec,
    }
