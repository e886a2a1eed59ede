from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meshcert.errors import ConfigError
from meshcert.invariants.placement_spec import Taint, TaintEffect
from meshcert.invariants.service_views import EndpointSliceView, ServiceView
from meshcert.invariants.views import ContainerView, NodeView, PodView, effective_requests
from meshcert.invariants.workload_views import (
    CronJobView,
    DeploymentView,
    EventView,
    JobView,
    PdbView,
    ReplicaSetView,
)

from .recorded import items, load


def test_node_from_api() -> None:
    cp, worker, _ = (NodeView.from_api(n) for n in items("nodes.json"))
    assert cp.taints == (Taint("node-role.kubernetes.io/control-plane", TaintEffect.NO_SCHEDULE),)
    assert cp.ready and worker.ready
    assert worker.allocatable == {
        "cpu": 2000,
        "ephemeral-storage": 102626232 * 1024,
        "memory": 8039244 * 1024,
        "pods": 110,
    }
    assert worker.labels["topology.kubernetes.io/zone"] == "zone-b"
    assert worker.internal_ip == "172.18.0.2"


def test_pod_from_api() -> None:
    ready, _, unready, terminating = (PodView.from_api(p) for p in items("pods-web.json"))
    assert ready.ready and not unready.ready
    assert terminating.terminating and not ready.terminating
    assert ready.requests == {"cpu": 250, "memory": 64 * 2**20}
    assert ready.pod_ips == ("10.244.1.5",)
    assert ready.node_name == "meshcert-worker"
    probe = ready.containers[0].readiness_probe
    assert probe is not None and (probe.handler, probe.initial_delay_seconds, probe.period_seconds) == (
        "httpGet",
        5,
        2,
    )
    assert ready.topology_spread[0].match_label_keys == ("pod-template-hash",)
    assert ready.tolerations[0].toleration_seconds == 300
    status = ready.container_statuses[0]
    assert status.state == "running" and status.started_at == datetime(2025, 11, 24, 10, 5, 3, tzinfo=UTC)


def test_service_and_slice_from_api() -> None:
    svc = ServiceView.from_api(load("service-web.json"))
    assert svc.selector == {"app": "web"} and not svc.headless
    assert [(p.name, p.target_port) for p in svc.ports] == [("http", "http"), ("grpc", 9090)]
    (s,) = (EndpointSliceView.from_api(x) for x in items("endpointslices-web.json"))
    assert s.service_name == "web" and s.address_type == "IPv4"
    assert [e.ready for e in s.endpoints] == [True, True, False, False]
    assert s.endpoints[3].terminating and s.endpoints[3].serving
    assert s.endpoints[0].target_pod == "meshcert-e1/web-7c9f8d6b5d-4xkq2"


def test_endpoint_conditions_default_to_ready() -> None:
    s = EndpointSliceView.from_api(
        {"addressType": "IPv4", "metadata": {"name": "x"}, "endpoints": [{"addresses": ["10.0.0.1"]}]}
    )
    e = s.endpoints[0]
    assert (e.ready, e.serving, e.terminating) == (True, True, False)


def test_workload_views_from_api() -> None:
    dep = DeploymentView.from_api(load("deployment-web.json"))
    assert (dep.replicas, dep.revision_history_limit, dep.revision) == (3, 2, 2)
    old, new = (ReplicaSetView.from_api(r) for r in items("replicasets-web.json"))
    assert (old.revision, old.replicas, new.template_hash, new.owner) == (1, 0, "5f6d7c8b9a", "web")
    job = JobView.from_api(load("job-complete.json"))
    assert (job.completions, job.succeeded, job.backoff_limit) == (3, 3, 4)
    assert job.condition("Complete") is not None
    cron = CronJobView.from_api(load("cronjob-hello.json"))
    assert (cron.schedule, cron.concurrency_policy, cron.time_zone) == ("*/1 * * * *", "Forbid", "Etc/UTC")
    pdb = PdbView.from_api(load("pdb-web.json"))
    assert (pdb.min_available, pdb.disruptions_allowed, pdb.current_healthy) == (2, 0, 2)
    ev = EventView.from_api(load("event-preempted.json"))
    assert (ev.reason, ev.involved_name) == ("Preempted", "low-prio")


def test_api_defaults_apply() -> None:
    job = JobView.from_api({"metadata": {"name": "j"}, "spec": {}})
    assert (job.completions, job.backoff_limit) == (1, 6)
    queue = JobView.from_api({"metadata": {"name": "q"}, "spec": {"parallelism": 3}})
    assert queue.completions is None
    assert DeploymentView.from_api({"metadata": {"name": "d"}}).revision_history_limit == 10
    pod = PodView.from_api({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}})
    assert pod.termination_grace_period_seconds == 30 and pod.scheduler_name == "default-scheduler"


def test_wrong_types_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="replicas"):
        DeploymentView.from_api({"metadata": {"name": "d"}, "spec": {"replicas": "3"}})
    with pytest.raises(ConfigError, match="labels"):
        PodView.from_api({"metadata": {"name": "p", "labels": ["a"]}})


def test_effective_requests_init_and_sidecars() -> None:
    app = ContainerView("app", requests={"cpu": 200})
    sidecar = ContainerView("proxy", requests={"cpu": 100}, restart_policy="Always")
    big_init = ContainerView("migrate", requests={"cpu": 500, "memory": 10})
    # init runs after the sidecar started: 100 + 500 = 600 > app phase 200 + 100
    assert effective_requests((app,), (sidecar, big_init), {"cpu": 50}) == {"cpu": 650, "memory": 10}
    assert effective_requests((app,), (sidecar,), {}) == {"cpu": 300}
