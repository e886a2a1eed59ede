"""M14: with istiod down the data plane keeps serving its last config; a change made meanwhile is
not in effect until the control plane returns, and then it converges.

The outage is istiod scaled to zero (`scaled_to_zero`, restored and read back in every case).
The pending change is the *deletion* of the weight route: Istio's validating webhook, served by
istiod itself and switched to fail-closed once istiod is up, refuses CREATE/UPDATE of Istio
config while istiod is gone (recorded below), but it does not intercept DELETE — so a deletion is
the change that can really be pending. Before it, v2 has weight 0 (nothing reaches it); after it
converges, the Service's default round robin reaches v2 again.
"""

from __future__ import annotations

import time

import pytest

from meshcert.conformance_support import attach_json
from meshcert.errors import ConfigError, KubeError
from meshcert.faults.scale import scaled_to_zero
from meshcert.invariants.violations import ObjectRef, assert_no_violations
from meshcert.kube.apply import apply_manifests
from meshcert.mesh.controlplane import check_served_last_config, sample_while, summarise
from meshcert.mesh.echo import EchoBatch, send
from meshcert.mesh.istio import ISTIO_NAMESPACE
from meshcert.mesh.routing import subsets_rule, timeout_route, weighted_route
from meshcert.mesh.suite import MeshEnv, converge_batches, delete_objects, routing
from meshcert.settings import Settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.mesh,
    pytest.mark.dataplane,
    pytest.mark.conformance,
    pytest.mark.disruptive,
]

URL = "http://server/"
BATCH = 10
#: Serving with the last config is observed for 15 s before the change and 30 s after it (the
#: brief's minimum): far longer than istiod's push latency (~1 s), so a change that could leak
#: through without the control plane would show up.
BEFORE_S, PENDING_S = 15.0, 30.0
#: After restore the sidecars must reconnect (xDS retry back-off) and get a full push; 120 s
#: bounds that on a loaded host while still failing a control plane that never resyncs.
RESYNC_TIMEOUT = 120.0
#: M14 asks whether the data plane serves, not how fast: each request may take 20 s (the batch
#: of 10 is one wave of the echo client, so that is also the batch's deadline), four times the
#: suite's default, for a host loaded by other lanes. A proxy that hangs still fails it, and
#: resets, refusals and 5xx fail at once.
REQUEST_TIMEOUT_S = 20.0


def _only_v1(b: EchoBatch) -> str:
    return "" if not b.failure and set(b.versions) == {"v1"} else f"versions {dict(b.versions)} {b.failure}"


def _v2_back(b: EchoBatch) -> str:
    return "" if not b.failure and b.versions["v2"] else f"no v2 yet: {dict(b.versions)} {b.failure}"


def test_m14_data_plane_serves_last_config_while_istiod_down(
    mesh_env: MeshEnv, meshcert_settings: Settings, run_id: str
) -> None:
    ns, ref = mesh_env.namespace, ObjectRef("Service", "server", mesh_env.namespace)
    route = weighted_route("server", ns, {"v1": 100, "v2": 0})
    probe_vs = timeout_route("m14-webhook-probe", ns, timeout_s=5)
    with routing(mesh_env, [subsets_rule("server", ns, ["v1", "v2"]), route]):
        conv = converge_batches(mesh_env, URL, _only_v1, what="baseline: all traffic on v1")
        attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))

        def batch() -> EchoBatch:
            return send(
                mesh_env.api, ns, mesh_env.client, URL, count=BATCH, request_timeout=REQUEST_TIMEOUT_S
            )

        webhook = "not tried"
        with scaled_to_zero(
            mesh_env.api,
            ISTIO_NAMESPACE,
            "istiod",
            run_id=run_id,
            state_dir=meshcert_settings.state_dir,
            cluster=mesh_env.mesh.cluster,
        ) as down:
            start = time.monotonic()
            samples = sample_while(batch, phase="before change", seconds=BEFORE_S, start=start, sent=BATCH)
            try:  # informational: does the API server take new Istio config without istiod?
                apply_manifests(mesh_env.api, [probe_vs], namespace=ns, run_id=mesh_env.run_id)
                webhook = "admitted (validation fail-open)"
            except (KubeError, ConfigError) as e:
                webhook = f"refused: {str(e)[:200]}"
            delete_objects(mesh_env.api, ns, [route])  # the pending change
            samples += sample_while(batch, phase="change pending", seconds=PENDING_S, start=start, sent=BATCH)
            down_for = time.monotonic() - start
        restored = time.monotonic()
        resync = converge_batches(
            mesh_env,
            URL,
            _v2_back,
            what="pending route deletion in effect (v2 reached)",
            count=20,
            timeout=RESYNC_TIMEOUT,
        )
        delete_objects(mesh_env.api, ns, [probe_vs])
        attach_json(
            "M14_outage",
            {
                "istiod_gone_after_s": round(down.down_after_s, 2),
                "outage_observed_s": round(down_for, 2),
                "istiod_restore_s": round(restored - start - down_for, 2),
                "served": [s.__dict__ for s in summarise(samples)],
                "create_while_down": webhook,
                "converged_after_restore_s": round(resync.time_to_converge, 2),
                "converged_versions": dict(resync.observed.versions),
            },
        )
        found = check_served_last_config(
            samples,
            old_versions={"v1"},
            phases={"before change": BEFORE_S, "change pending": PENDING_S},
            ref=ref,
        )
        assert_no_violations(found, context="istiod down")
