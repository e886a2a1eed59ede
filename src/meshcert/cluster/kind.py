"""The kind provider: a real multi-node cluster in Docker, from the locally built node image.

Naming: the cluster is named after the run id (``mc-1a2b3c4d``), so kind's own container label
``io.x-k8s.kind.cluster=<name>`` identifies the run; the docker network kind attaches the nodes
to is created by us first (kind reuses an existing network named by
KIND_EXPERIMENTAL_DOCKER_NETWORK) so that it carries the run-id label too. `up` returns only when
every node is Ready and a pod resolved a Service name through CoreDNS.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from meshcert.cluster import cni
from meshcert.cluster.base import Capability, ClusterInfo
from meshcert.cluster.kindconfig import load_kind_config, render
from meshcert.cluster.kubectl import Kubectl, poll
from meshcert.errors import ClusterError, MeshcertError
from meshcert.runid import MANAGED_LABEL, RUN_LABEL
from meshcert.runs import ClusterRecord, RunStore
from meshcert.settings import Settings
from meshcert.toolchain.docker_cli import docker
from meshcert.toolchain.gobuild import find_binary
from meshcert.toolchain.images import TESTAPP_IMAGE, current_node_image

Progress = Callable[[str], None]
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
#: How long CoreDNS may take to answer once nodes are Ready: image unpack + start ~10-20 s.
DNS_TIMEOUT = 120.0


def network_name(cluster: str) -> str:
    return f"{cluster}-net"


class KindCluster:
    """One kind cluster owned by one run."""

    def __init__(
        self,
        *,
        settings: Settings,
        run_id: str,
        config: Path | None = None,
        name: str | None = None,
        progress: Progress = lambda _: None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        self.config_path = config or settings.kind_config
        self._name = name or settings.cluster_name or run_id
        self.progress = progress
        self.state = settings.state_dir / "clusters" / self._name

    @property
    def name(self) -> str:
        return self._name

    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def _kind(self, *args: str, stream: bool = False) -> str:
        kind = find_binary(self.settings.cache_dir, "kind")
        env = {**os.environ, "KIND_EXPERIMENTAL_DOCKER_NETWORK": network_name(self._name)}
        argv = [str(kind), *args]
        if not stream:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                raise ClusterError(f"kind {args[0]} {args[1]}: {_last_line(proc.stderr)}")
            return proc.stdout
        lines: list[str] = []
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        ) as p:
            assert p.stdout is not None
            for raw in p.stdout:
                lines.append(raw.rstrip())
                if raw.strip():
                    self.progress(f"kind: {raw.strip()}")
        if p.returncode != 0:
            raise ClusterError(f"kind {args[0]} {args[1]} failed: {_last_error(lines)}")
        return "\n".join(lines)

    def up(self) -> ClusterInfo:
        cfg = load_kind_config(self.config_path)  # bad input fails here, before anything exists
        node_image = current_node_image(self.settings.cache_dir)
        kubectl_bin = find_binary(self.settings.cache_dir, "kubectl")
        if self.status() is not None:
            raise ClusterError(f"a kind cluster named {self._name!r} already exists: `meshcert cluster down`")
        RunStore(self.settings.state_dir).add_cluster(
            self.run_id,
            ClusterRecord(
                "kind", self._name, str(self.kubeconfig()), created=True, keep=self.settings.keep_cluster
            ),
        )
        start = time.monotonic()
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            rendered = self.state / "kind-config.yaml"
            rendered.write_text(render(cfg, node_image=node_image))
            docker(
                "create network", "network", "create", "--label", f"{RUN_LABEL}={self.run_id}",
                "--label", f"{MANAGED_LABEL}=true", network_name(self._name),
            )  # fmt: skip
            self.progress(f"creating {len(cfg.roles)}-node kind cluster {self._name} from {node_image}")
            self._kind(
                "create", "cluster", "--name", self._name, "--image", node_image, "--config", str(rendered),
                "--kubeconfig", str(self.kubeconfig()), "--retain", "--wait", "0s", stream=True,
            )  # fmt: skip
            kubectl = Kubectl(kubectl_bin, self.kubeconfig())
            self._wire_pod_network(kubectl, len(cfg.roles))
            took = poll(
                "all nodes Ready", lambda: _nodes_ready(kubectl), timeout=self.settings.node_ready_timeout
            )
            self.progress(f"all {len(cfg.roles)} nodes Ready ({took:.0f}s after networking)")
            self._check_dns(kubectl)
        except (MeshcertError, KeyboardInterrupt) as e:
            self.progress(f"cluster up failed ({e}); removing what was created")
            self._forensics()
            self.down()
            raise
        self.progress(f"cluster {self._name} ready in {time.monotonic() - start:.0f}s")
        info = self.status()
        if info is None:
            raise ClusterError(f"cluster {self._name} vanished right after creation")
        return info

    def _wire_pod_network(self, kubectl: Kubectl, expected: int) -> None:
        def cidrs() -> tuple[bool, str]:
            items = kubectl.json("get", "nodes")["items"]
            have = {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in items}
            return len(have) == expected and all(have.values()), f"podCIDRs: {have}"

        poll("podCIDR on every node", cidrs, timeout=self.settings.node_ready_timeout)
        nodes = [
            cni.NodeNet(
                n["metadata"]["name"],
                next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"),
                n["spec"]["podCIDR"],
            )
            for n in kubectl.json("get", "nodes")["items"]
        ]
        for node in nodes:
            step = f"pod network on {node.name}"
            docker(step, "exec", node.name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            docker(step, "exec", "-i", node.name, "sh", "-c",
                   f"mkdir -p /etc/cni/net.d && cat > {cni.CONFLIST_PATH}",
                   stdin=cni.conflist(node).encode())  # fmt: skip
            for cmd in cni.route_commands(node, nodes):
                docker(step, "exec", node.name, *cmd)
        self.progress("pod network: " + ", ".join(f"{n.name}={n.pod_cidr}" for n in nodes))

    def _check_dns(self, kubectl: Kubectl) -> None:
        """A pod resolves the API server's Service name: CoreDNS, kube-proxy and CNI all work."""
        pod = f"dns-check-{self.run_id}"

        def start() -> None:
            kubectl.run(
                "run", pod, "-n", "default", f"--image={TESTAPP_IMAGE}", "--image-pull-policy=Never",
                "--restart=Never", f"--labels={RUN_LABEL}={self.run_id}", "--command", "--",
                "/testapp", "resolve", "kubernetes.default.svc.cluster.local",
            )  # fmt: skip

        def done() -> tuple[bool, str]:
            phase = kubectl.run("get", "pod", pod, "-n", "default", "-o", "jsonpath={.status.phase}")
            if phase == "Failed":
                # The pod ran before CoreDNS was serving: start over rather than fail the cluster.
                logs = kubectl.run("logs", pod, "-n", "default", check=False).strip()
                kubectl.run("delete", "pod", pod, "-n", "default", "--wait=true")
                start()
                return False, f"lookup failed: {logs}"
            return phase == "Succeeded", f"dns-check pod phase {phase or 'Pending'}"

        start()
        took = poll("a pod to resolve kubernetes.default via CoreDNS", done, timeout=DNS_TIMEOUT)
        answer = kubectl.run("logs", pod, "-n", "default").strip()
        kubectl.run("delete", "pod", pod, "-n", "default", "--wait=false")
        self.progress(f"CoreDNS answered from a pod in {took:.0f}s: kubernetes.default -> {answer}")

    def _forensics(self) -> None:
        for node in self._node_containers():
            out = docker("forensics", "exec", node, "sh", "-c",
                         "systemctl --failed --no-legend; journalctl -u kubelet --no-pager | tail -5",
                         check=False)  # fmt: skip
            if out.strip():
                self.progress(f"{node}: {out.strip()}")

    def _node_containers(self) -> list[str]:
        out = docker("list nodes", "ps", "-a", "--filter", f"label={KIND_CLUSTER_LABEL}={self._name}",
                     "--format", "{{.Names}}", check=False)  # fmt: skip
        return sorted(out.split())

    def down(self) -> bool:
        """Delete the cluster (idempotent); returns whether it had node containers left."""
        existed = bool(self._node_containers())
        if existed:
            self._kind("delete", "cluster", "--name", self._name)
        for c in self._node_containers():  # kind leaves nothing, but a half-created node may linger
            docker("remove node", "rm", "-f", "-v", c, check=False)
        docker("remove network", "network", "rm", network_name(self._name), check=False)
        if self.state.is_dir():
            for f in sorted(self.state.iterdir()):
                f.unlink()
            self.state.rmdir()
        return existed

    def status(self) -> ClusterInfo | None:
        nodes = self._node_containers()
        if not nodes:
            return None
        version = ""
        if self.kubeconfig().is_file():
            kubectl = Kubectl(find_binary(self.settings.cache_dir, "kubectl"), self.kubeconfig())
            out = kubectl.run("version", "-o", "json", check=False, timeout=20)
            if out:
                version = json.loads(out).get("serverVersion", {}).get("gitVersion", "")
        caps = {Capability.DATAPLANE, Capability.DISRUPTIVE, Capability.NODE_CONTAINERS}
        if sum(1 for n in nodes if "worker" in n) >= 2:
            caps.add(Capability.MULTI_NODE)
        return ClusterInfo(
            name=self._name,
            provider="kind",
            kubeconfig=self.kubeconfig(),
            kubernetes_version=version,
            nodes=tuple(nodes),
            capabilities=frozenset(caps),
            run_id=self.run_id,
        )


def _nodes_ready(kubectl: Kubectl) -> tuple[bool, str]:
    items = kubectl.json("get", "nodes")["items"]
    state = {
        n["metadata"]["name"]: next(
            (c["status"] for c in n["status"].get("conditions", []) if c["type"] == "Ready"), "Unknown"
        )
        for n in items
    }
    return bool(state) and all(v == "True" for v in state.values()), f"Ready: {state}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _last_error(lines: list[str]) -> str:
    errors = [ln.strip() for ln in lines if "ERROR" in ln or "error" in ln.lower()]
    return errors[-1] if errors else _last_line("\n".join(lines))
