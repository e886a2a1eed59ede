"""The pod-based Locust run's manifests and the image recipe, without a cluster (pure parts)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateRunning,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodStatus,
)

from meshcert.errors import LoadError, ToolchainError
from meshcert.load.incluster import (
    LOAD_LABEL,
    MASTER_PORT,
    ROLE_LABEL,
    PodRun,
    _check,
    _Watch,
    manifests,
    pod_spec,
)
from meshcert.load.spec import LoadSpec
from meshcert.toolchain import locust_image


def _objs(workers: int) -> list[dict[str, object]]:
    spec = LoadSpec(target="http://testapp.ns.svc.cluster.local", rate=200, duration=20, workers=workers)
    run = PodRun("locust-abc123")
    return manifests(pod_spec(spec, run), run, image="meshcert/locust:x")


def test_pod_spec_points_workers_at_the_service_and_binds_everywhere() -> None:
    spec = LoadSpec(target="http://t", rate=10, duration=1, workers=2, worker_connect_timeout=30)
    out = pod_spec(spec, PodRun("locust-1"), worker_connect_timeout=180)
    assert (out.master_host, out.master_port, out.master_bind_host) == ("locust-1-master", MASTER_PORT, "*")
    assert out.worker_connect_timeout == 180  # pods start slower than local processes
    assert LoadSpec.from_json(json.loads(json.dumps(out.to_json()))) == out


def test_manifests_master_service_and_one_pod_per_worker() -> None:
    objs = _objs(2)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objs]  # type: ignore[index]
    assert kinds == [
        ("ConfigMap", "locust-abc123-spec"),
        ("Service", "locust-abc123-master"),
        ("Pod", "locust-abc123-master"),
        ("Pod", "locust-abc123-worker-0"),
        ("Pod", "locust-abc123-worker-1"),
    ]
    cm, svc, master, w0, _ = objs
    sent = LoadSpec.from_json(json.loads(cm["data"]["spec.json"]))  # type: ignore[index]
    assert sent.master_host == "locust-abc123-master" and sent.workers == 2
    assert svc["spec"]["selector"] == {LOAD_LABEL: "locust-abc123", ROLE_LABEL: "master"}  # type: ignore[index]
    assert svc["spec"]["ports"][0]["port"] == MASTER_PORT  # type: ignore[index]
    for pod in (master, w0):
        assert pod["metadata"]["labels"][LOAD_LABEL] == "locust-abc123"  # type: ignore[index]
        assert pod["spec"]["restartPolicy"] == "Never"  # type: ignore[index]
        assert all(c["imagePullPolicy"] == "Never" for c in pod["spec"]["containers"])  # type: ignore[index]
    main, holder = master["spec"]["containers"]  # type: ignore[index]
    assert main["args"] == ["--role", "master", "--spec", "/spec/spec.json", "--out", "/out/result.json"]
    assert holder["command"] == ["sleep", "infinity"]
    assert w0["spec"]["containers"][0]["args"] == ["--role", "worker", "--spec", "/spec/spec.json"]  # type: ignore[index]


def test_zero_workers_runs_the_local_role_in_one_pod() -> None:
    objs = _objs(0)
    assert [o["kind"] for o in objs] == ["ConfigMap", "Service", "Pod"]
    assert objs[2]["spec"]["containers"][0]["args"][:2] == ["--role", "local"]  # type: ignore[index]


def test_image_carries_every_meshcert_module_the_child_imports() -> None:
    """A new import in the child must be added to CHILD_SOURCES, or the pods fail to start."""
    code = (
        "import sys, meshcert.load._child\n"
        "from pathlib import Path\n"
        "root = Path(sys.modules['meshcert'].__file__).parent\n"
        "print('\\n'.join(sorted(str(Path(m.__file__).relative_to(root)) for n, m in sys.modules.items()\n"
        "    if n.split('.')[0] == 'meshcert' and getattr(m, '__file__', None))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    imported = set(out.stdout.split())
    assert "load/_child.py" in imported
    assert imported <= set(locust_image.CHILD_SOURCES), imported - set(locust_image.CHILD_SOURCES)


def test_sources_digest_follows_content(tmp_path: Path) -> None:
    root = tmp_path / "meshcert"
    for rel in locust_image.CHILD_SOURCES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")
    before = locust_image.sources_digest(root)
    assert locust_image.sources_digest(root) == before
    (root / "load/spec.py").write_text("# changed\n")
    assert locust_image.sources_digest(root) != before
    (root / "errors.py").unlink()
    with pytest.raises(ToolchainError, match=r"errors\.py"):
        locust_image.sources_digest(root)


def test_pip_targets_cpython_311_wheels_for_bookworm_glibc() -> None:
    argv = locust_image.pip_argv("2.47.0", Path("/t"), python="py")
    assert argv[-1] == "locust==2.47.0" and "--only-binary=:all:" in argv
    plats = [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]
    assert "manylinux_2_17_x86_64" in plats and "manylinux_2_36_x86_64" in plats
    assert "manylinux_2_37_x86_64" not in plats  # newer than bookworm's glibc 2.36
    cfg = locust_image.image_config("2.47.0")
    assert cfg.entrypoint == ("python3", "-m", "meshcert.load._child")
    assert any(e.startswith("PYTHONPATH=/opt/meshcert:") for e in cfg.env)


class _Core:
    """Stands in for CoreV1Api where `_check` only reads pod logs for its error message."""

    def read_namespaced_pod_log(self, name: str, namespace: str, **_kw: object) -> str:
        return f"log of {name}"


def _pod(name: str, container: str, *, running: bool = False, exit_code: int | None = None,
         waiting: str | None = None) -> V1Pod:  # fmt: skip
    state = V1ContainerState(
        running=V1ContainerStateRunning() if running else None,
        terminated=V1ContainerStateTerminated(exit_code=exit_code) if exit_code is not None else None,
        waiting=V1ContainerStateWaiting(reason=waiting) if waiting else None,
    )
    status = V1ContainerStatus(
        name=container, state=state, image="i", image_id="", ready=running, restart_count=0
    )
    return V1Pod(
        metadata=V1ObjectMeta(name=name), status=V1PodStatus(phase="Running", container_statuses=[status])
    )


def _watch() -> _Watch:
    return _Watch(_Core(), "ns", PodRun("l"), 2)  # type: ignore[arg-type]


def test_check_waits_then_returns_the_master_exit_code() -> None:
    now = time.monotonic()
    pods = {"l-master": _pod("l-master", "master", running=True),
            "l-worker-0": _pod("l-worker-0", "worker", running=True),
            "l-worker-1": _pod("l-worker-1", "worker", waiting="ContainerCreating")}  # fmt: skip
    assert _check(_watch(), pods, started=now, start_timeout=60) is None
    pods["l-master"] = _pod("l-master", "master", exit_code=0)
    pods["l-worker-1"] = _pod("l-worker-1", "worker", exit_code=137)  # after the master: irrelevant
    assert _check(_watch(), pods, started=now, start_timeout=60) == 0


@pytest.mark.parametrize(
    ("worker", "started_ago", "message"),
    [
        (_pod("l-worker-1", "worker", exit_code=2), 0.0, "load worker l-worker-1 exited with 2"),
        (_pod("l-worker-1", "worker", waiting="ErrImageNeverPull"), 0.0, "cannot start: ErrImageNeverPull"),
        (_pod("l-worker-1", "worker", waiting="ContainerCreating"), 120.0, "not running after 60 s"),
    ],
)
def test_check_fails_fast_with_every_pods_state_and_log(
    worker: V1Pod, started_ago: float, message: str
) -> None:
    pods = {"l-master": _pod("l-master", "master", running=True), "l-worker-1": worker}
    with pytest.raises(LoadError) as err:
        _check(_watch(), pods, started=time.monotonic() - started_ago, start_timeout=60)
    text = str(err.value)
    assert text.splitlines()[0].startswith(message) or message in text.splitlines()[0]
    assert "--- l-master: Running, running\nlog of l-master" in text
    assert "--- l-worker-0: (gone)" in text  # expected pods that do not exist are named too
