"""The existing provider: any cluster a kubeconfig reaches (how users outgrow one machine).

Why it exists: the same suites must run against a cluster meshcert did not build. We never
create or delete it: ``up`` only checks that the API server answers and probes what the cluster
can do; ``down`` is a no-op. The run record marks it ``created=False``, so `meshcert gc` cleans
up only our labelled namespaces there, never nodes.

Capabilities are probed from the Node objects (pure `probe_capabilities`): DATAPLANE unless
every node is kwok-simulated; MULTI_NODE with at least two schedulable Ready workers.
DISRUPTIVE is off unless the user says the cluster is theirs to break (stopping nodes of a
shared cluster is not something to infer). Talks to the API server with the `kubernetes`
client directly: an existing cluster must not require our toolchain (kubectl) to be built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import urllib3.exceptions
import yaml
from kubernetes.client import ApiClient, CoreV1Api, VersionApi
from kubernetes.client.exceptions import ApiException
from kubernetes.config import new_client_from_config
from kubernetes.config.config_exception import ConfigException

from meshcert.cluster.base import Capability, ClusterInfo
from meshcert.errors import ClusterError, ConfigError
from meshcert.runs import ClusterRecord, RunStore

Progress = Callable[[str], None]

#: Probing an existing cluster: (connect, read) seconds; a reachable API server answers a node
#: list in well under a second, so 10 s only allows for a slow VPN.
PROBE_TIMEOUT = (5.0, 10.0)
#: Label or annotation values that mark a simulated node (kwok's own conventions).
_KWOK_ANNOTATION = "kwok.x-k8s.io/node"
_CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
#: Taint effects that keep ordinary pods off a node.
_REPELLING = ("NoSchedule", "NoExecute")


def is_kwok_node(node: Mapping[str, Any]) -> bool:
    meta = node.get("metadata") or {}
    return (meta.get("annotations") or {}).get(_KWOK_ANNOTATION) == "fake" or (meta.get("labels") or {}).get(
        "type"
    ) == "kwok"


def is_schedulable_worker(node: Mapping[str, Any]) -> bool:
    """Ready, not cordoned, no control-plane role, no NoSchedule/NoExecute taint."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    labels = meta.get("labels") or {}
    if any(k in labels for k in _CONTROL_PLANE_LABELS) or spec.get("unschedulable"):
        return False
    if any(t.get("effect") in _REPELLING for t in spec.get("taints") or []):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def probe_capabilities(
    nodes: Iterable[Mapping[str, Any]], *, disruptive: bool = False
) -> frozenset[Capability]:
    """What a cluster with these Node objects (as JSON) can do."""
    nodes = list(nodes)
    caps: set[Capability] = set()
    if nodes and not all(is_kwok_node(n) for n in nodes):
        caps.add(Capability.DATAPLANE)
    if sum(1 for n in nodes if is_schedulable_worker(n)) >= 2:  # MULTI_NODE: two workers at least
        caps.add(Capability.MULTI_NODE)
    if disruptive:
        caps.add(Capability.DISRUPTIVE)
    return frozenset(caps)


def context_name(kubeconfig: Path) -> str:
    """The kubeconfig's current context (the cluster's display name); ConfigError if unreadable."""
    try:
        data = yaml.safe_load(kubeconfig.read_text())
    except FileNotFoundError as e:
        raise ConfigError(str(kubeconfig), "kubeconfig", "file not found") from e
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(str(kubeconfig), "kubeconfig", f"cannot parse: {e}") from e
    if not isinstance(data, dict) or not data.get("current-context"):
        raise ConfigError(
            str(kubeconfig), "current-context", "not set; pick one with `kubectl config use-context`"
        )
    return str(data["current-context"])


class ExistingCluster:
    """A cluster reached through a kubeconfig; never created or deleted by us."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        run_id: str,
        state_dir: Path,
        name: str | None = None,
        disruptive: bool = False,
        progress: Progress = lambda _: None,
    ) -> None:
        self._kubeconfig = kubeconfig
        self.run_id = run_id
        self.state_dir = state_dir
        self._name = name or context_name(kubeconfig)
        self.disruptive = disruptive
        self.progress = progress

    @property
    def name(self) -> str:
        return self._name

    def kubeconfig(self) -> Path:
        return self._kubeconfig

    def _client(self) -> ApiClient:
        try:
            api: ApiClient = new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self._kubeconfig), persist_config=False
            )
        except (ConfigException, OSError, ValueError) as e:
            raise ConfigError(str(self._kubeconfig), "kubeconfig", f"cannot load: {e}") from e
        return api

    def up(self) -> ClusterInfo:
        RunStore(self.state_dir).add_cluster(
            self.run_id, ClusterRecord("existing", self._name, str(self._kubeconfig), created=False)
        )
        info = self.status()
        if info is None:
            raise ClusterError(f"cluster {self._name} ({self._kubeconfig}) does not answer")
        self.progress(
            f"using existing cluster {info.name} ({info.kubernetes_version}, {len(info.nodes)} nodes, "
            f"capabilities: {', '.join(sorted(info.capabilities)) or 'none'})"
        )
        return info

    def down(self) -> bool:
        """Nothing to delete: the cluster is not ours (namespaces are removed by their owners/gc)."""
        return False

    def status(self) -> ClusterInfo | None:
        with self._client() as api:
            try:
                version = VersionApi(api).get_code(_request_timeout=PROBE_TIMEOUT)
                listing = CoreV1Api(api).list_node(_request_timeout=PROBE_TIMEOUT)
                # Plain JSON, so the pure probes below see what kubectl would show.
                nodes = api.sanitize_for_serialization(listing).get("items", [])
            except (ApiException, urllib3.exceptions.HTTPError) as e:
                self.progress(f"existing cluster {self._name} unreachable: {e}")
                return None
        return ClusterInfo(
            name=self._name,
            provider="existing",
            kubeconfig=self._kubeconfig,
            kubernetes_version=str(version.git_version or ""),
            nodes=tuple(sorted(str(n["metadata"]["name"]) for n in nodes)),
            capabilities=probe_capabilities(nodes, disruptive=self.disruptive),
            run_id=self.run_id,
        )
