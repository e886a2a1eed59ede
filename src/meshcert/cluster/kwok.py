"""The kwok provider: a real control plane with simulated nodes, as local processes, in seconds.

Why it exists: scheduling and controller invariants (S1-S10, rollouts, EndpointSlice
bookkeeping) need many nodes but no data plane; kwok simulates nodes and pod lifecycles against
a real kube-apiserver, controller-manager and scheduler. kwokctl's *binary* runtime runs them
as host processes (no Docker), from the binaries our toolchain built.

Offline by construction: kwokctl fetches a component only when its configured path is a URL, so
every binary it may use (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
and kubectl, which it looks up on PATH first) points at the local cache, and the optional
components that would fetch (metrics-server, Prometheus, Jaeger, dashboard) are off by
default and never enabled here. As a tripwire, kwokctl runs with an HTTP(S) proxy on a closed
loopback port, so any remaining download would fail at once instead of hanging.

Isolation: KWOK_WORKDIR is ``<state_dir>/kwok``, so our clusters never mix with a user's
``~/.kwok``; the kubeconfig is the cluster's own ``kubeconfig.yaml`` there (we pass
``--kubeconfig ""`` on create and a scratch file on delete, so kwokctl never edits
``~/.kube/config``).

What it is not: no data plane (pods never run; kwok marks them Running/Ready), no exec/logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from meshcert.cluster.base import Capability, ClusterInfo
from meshcert.cluster.kubectl import Kubectl, poll
from meshcert.errors import ClusterError, MeshcertError
from meshcert.runs import ClusterRecord, RunStore, process_start_ticks
from meshcert.settings import Settings
from meshcert.toolchain.gobuild import find_binary
from meshcert.toolchain.pins import KUBERNETES_VERSION

Progress = Callable[[str], None]

#: kwok's annotation marking a Node it manages (kwok-controller also runs --manage-all-nodes).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
#: Label on our simulated nodes, so `existing` capability probes can tell them apart.
KWOK_TYPE_LABEL = "type"
#: Simulated zones, round-robin over the nodes: three is the smallest count where topology
#: spread (S6) and zone anti-affinity (S7) are not trivially satisfied.
ZONES = ("zone-a", "zone-b", "zone-c")
#: Allocatable of each simulated node: large enough that capacity tests (S4) choose their own
#: requests against it, and a common small-node shape (32 cores, 256 GiB, kubelet's 110 pods).
NODE_CPU, NODE_MEMORY, NODE_PODS = "32", "256Gi", "110"
#: kwokctl create: processes start in ~3 s here; 180 s allows a loaded 2-core machine.
CREATE_TIMEOUT = 180.0
#: kwokctl delete stops processes and removes the workdir; it takes well under a second.
DELETE_TIMEOUT = 60.0
#: Nodes turn Ready as soon as kwok-controller sees them (~1 s per batch).
NODES_READY_TIMEOUT = 120.0
#: The tripwire proxy: port 9 (discard) on loopback is closed, so a connection fails instantly.
_NO_DOWNLOAD_PROXY = "http://127.0.0.1:9"


def node_manifest(index: int) -> dict[str, object]:
    """A Node kwok will simulate: kwok's annotation, standard labels, a zone, fixed allocatable."""
    name = f"kwok-node-{index}"
    resources = {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "topology.kubernetes.io/zone": ZONES[index % len(ZONES)],
                KWOK_TYPE_LABEL: "kwok",
            },
        },
        # No kwok taint: every node of this cluster is simulated, so there is no real node to
        # keep pods away from, and suites should not need a kwok-specific toleration.
        "status": {"allocatable": resources, "capacity": resources, "phase": "Running"},
    }


def nodes_document(count: int) -> str:
    return yaml.safe_dump_all([node_manifest(i) for i in range(count)], sort_keys=False)


class KwokCluster:
    """One kwok cluster (binary runtime) owned by one run."""

    def __init__(
        self,
        *,
        settings: Settings,
        run_id: str,
        name: str | None = None,
        nodes: int | None = None,
        progress: Progress = lambda _: None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        self._name = name or settings.cluster_name or run_id
        self.node_count = nodes if nodes is not None else settings.kwok_nodes
        self.progress = progress
        self.workdir = settings.state_dir / "kwok"

    @property
    def name(self) -> str:
        return self._name

    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self._name

    def kubeconfig(self) -> Path:
        return self.cluster_dir / "kubeconfig.yaml"

    def _env(self) -> dict[str, str]:
        kubectl = find_binary(self.settings.cache_dir, "kubectl")
        return {
            **os.environ,
            "KWOK_WORKDIR": str(self.workdir),
            # Feature gates and runtime config are derived from this; it must match our apiserver.
            "KWOK_KUBE_VERSION": KUBERNETES_VERSION,
            "KWOK_RUNTIME": "binary",
            "KWOK_KUBECTL_BINARY": str(kubectl),
            "PATH": f"{kubectl.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HTTP_PROXY": _NO_DOWNLOAD_PROXY,
            "HTTPS_PROXY": _NO_DOWNLOAD_PROXY,
            "http_proxy": _NO_DOWNLOAD_PROXY,
            "https_proxy": _NO_DOWNLOAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def _kwokctl(self, *args: str, timeout: float) -> str:
        argv = [str(find_binary(self.settings.cache_dir, "kwokctl")), *args]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, env=self._env(), timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"kwokctl {' '.join(args[:2])} timed out after {timeout:.0f}s") from e
        if proc.returncode != 0:
            raise ClusterError(f"kwokctl {' '.join(args[:2])} failed: {last_kwok_error(proc.stderr)}")
        return proc.stdout

    def create_args(self) -> list[str]:
        """kwokctl's arguments: every binary a local path, our Kubernetes version, no kubeconfig edit."""
        cache = self.settings.cache_dir

        def b(name: str) -> str:
            return str(find_binary(cache, name))

        return [
            "create", "cluster", "--name", self._name, "--runtime", "binary",
            "--kube-apiserver-binary", b("kube-apiserver"),
            "--kube-controller-manager-binary", b("kube-controller-manager"),
            "--kube-scheduler-binary", b("kube-scheduler"),
            "--etcd-binary", b("etcd"),
            "--kwok-controller-binary", b("kwok"),
            "--kubeconfig", "",
            "--quiet-pull",
            "--wait", f"{int(CREATE_TIMEOUT)}s",
        ]  # fmt: skip

    def up(self) -> ClusterInfo:
        if self.status() is not None:
            raise ClusterError(
                f"a kwok cluster named {self._name!r} already exists: `meshcert gc` or down it"
            )
        RunStore(self.settings.state_dir).add_cluster(
            self.run_id,
            ClusterRecord(
                "kwok", self._name, str(self.kubeconfig()), created=True, keep=self.settings.keep_cluster
            ),
        )
        start = time.monotonic()
        try:
            self.progress(f"creating kwok cluster {self._name} (binary runtime, {self.node_count} nodes)")
            self._kwokctl(*self.create_args(), timeout=CREATE_TIMEOUT)
            kubectl = Kubectl(find_binary(self.settings.cache_dir, "kubectl"), self.kubeconfig())
            kubectl.run("apply", "-f", "-", stdin=nodes_document(self.node_count))
            took = poll(
                f"{self.node_count} kwok nodes Ready",
                lambda: _nodes_ready(kubectl, self.node_count),
                timeout=NODES_READY_TIMEOUT,
                interval=1.0,  # kwok reports Ready within a second; polling faster is pointless
            )
            self.progress(f"{self.node_count} nodes Ready after {took:.1f}s")
        except (MeshcertError, KeyboardInterrupt) as e:
            self.progress(f"kwok cluster up failed ({e}); removing what was created")
            self.down()
            raise
        info = self.status()
        if info is None:
            raise ClusterError(f"kwok cluster {self._name} vanished right after creation")
        self.progress(f"kwok cluster {self._name} ready in {time.monotonic() - start:.1f}s")
        return info

    def pids(self) -> dict[str, int]:
        """Component name → pid, from kwokctl's pid files."""
        out: dict[str, int] = {}
        pid_dir = self.cluster_dir / "pids"
        if pid_dir.is_dir():
            for f in sorted(pid_dir.glob("*.pid")):
                try:
                    out[f.stem] = int(f.read_text().strip())
                except (OSError, ValueError):
                    continue
        return out

    def live_processes(self) -> dict[str, int]:
        """The components still running (their command line names our cluster's directory)."""
        return {name: pid for name, pid in self.pids().items() if _runs_from(pid, self.cluster_dir)}

    def down(self) -> bool:
        """Delete the cluster: kwokctl stops the processes; anything it missed is killed. Returns
        whether there was a cluster directory or a process to remove."""
        before = self.live_processes()
        existed = self.cluster_dir.exists()
        if existed:
            try:
                # delete refuses an empty --kubeconfig; a file inside the cluster directory is
                # removed with it, so ~/.kube/config is never touched.
                scratch = str(self.cluster_dir / "kwokctl-contexts.yaml")
                self._kwokctl("delete", "cluster", "--name", self._name, "--kubeconfig", scratch,
                              timeout=DELETE_TIMEOUT)  # fmt: skip
            except ClusterError as e:
                self.progress(f"kwokctl delete failed ({e}); killing the processes")
        ticks = {pid: process_start_ticks(pid) for pid in before.values()}
        for name, pid in before.items():
            if _runs_from(pid, self.cluster_dir):
                self.progress(f"killing leftover {name} (pid {pid})")
                _kill(pid)
        # SIGKILL and kwokctl's own stop are asynchronous: `down` returns only once the processes
        # are really gone, so a caller (or gc) never sees a half-stopped cluster.
        deadline = time.monotonic() + STOP_TIMEOUT
        while left := [p for p, t in ticks.items() if t is not None and process_start_ticks(p) == t]:
            if time.monotonic() > deadline:
                raise ClusterError(f"kwok processes {left} still running {STOP_TIMEOUT:.0f}s after kill")
            time.sleep(0.1)
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        return existed or bool(before)

    def status(self) -> ClusterInfo | None:
        if not self.kubeconfig().is_file() or not self.live_processes():
            return None
        kubectl = Kubectl(find_binary(self.settings.cache_dir, "kubectl"), self.kubeconfig())
        version = ""
        out = kubectl.run("version", "-o", "json", check=False, timeout=20)
        if out:
            version = json.loads(out).get("serverVersion", {}).get("gitVersion", "")
        names = kubectl.run(
            "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}", check=False, timeout=20
        ).split()
        caps = {Capability.DISRUPTIVE}
        if len(names) >= 2:  # MULTI_NODE: at least two schedulable workers (every node here is one)
            caps.add(Capability.MULTI_NODE)
        return ClusterInfo(
            name=self._name,
            provider="kwok",
            kubeconfig=self.kubeconfig(),
            kubernetes_version=version,
            nodes=tuple(sorted(names)),
            capabilities=frozenset(caps),
            run_id=self.run_id,
        )


def _nodes_ready(kubectl: Kubectl, expected: int) -> tuple[bool, str]:
    items = kubectl.json("get", "nodes")["items"]
    ready = [
        n["metadata"]["name"]
        for n in items
        if any(
            c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", [])
        )
    ]
    return len(ready) >= expected, f"{len(ready)}/{expected} nodes Ready"


#: A killed process is gone within milliseconds; 10 s covers a 2-core host under heavy load.
STOP_TIMEOUT = 10.0


def _runs_from(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is alive and its command line names ``directory`` (never a reused pid)."""
    if process_start_ticks(pid) is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(directory) in cmdline


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def last_kwok_error(stderr: str) -> str:
    """The last error kwokctl logged: its log lines are JSON objects with level and msg."""
    fallback = ""
    for line in reversed(stderr.strip().splitlines()):
        try:
            entry = json.loads(line)
        except ValueError:
            fallback = fallback or line.strip()
            continue
        if isinstance(entry, dict) and entry.get("level") in ("ERROR", "WARN"):
            err = entry.get("err")
            return f"{entry.get('msg', '')}" + (f": {err}" if err else "")
    return fallback or (stderr.strip().splitlines() or ["(no output)"])[-1]
