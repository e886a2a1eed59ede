"""Validate a kind cluster config and render the one meshcert hands to kind.

kind rejects a bad config only after it has started work; we check the fields meshcert relies
on first, so a malformed file fails with one line naming file, field and reason and nothing is
created. The rendered config disables kind's default CNI (kindnetd cannot be built offline;
cni.py wires pod networking instead) and pins the locally built node image on every node.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshcert.errors import ConfigError

API_VERSION = "kind.x-k8s.io/v1alpha4"
ROLES = frozenset({"control-plane", "worker"})
_TOP_LEVEL = frozenset(
    {"kind", "apiVersion", "name", "nodes", "networking", "featureGates", "runtimeConfig",
     "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902", "containerdConfigPatches",
     "containerdConfigPatchesJSON6902"}
)  # fmt: skip
_NODE_KEYS = frozenset(
    {"role", "image", "labels", "extraMounts", "extraPortMappings", "kubeadmConfigPatches",
     "kubeadmConfigPatchesJSON6902"}
)  # fmt: skip
DEFAULT_POD_SUBNET = "10.244.0.0/16"  # kind's own default; /24 per node leaves room for 256 nodes


@dataclass(frozen=True)
class KindConfig:
    source: Path
    doc: dict[str, Any]

    @property
    def roles(self) -> list[str]:
        return [str(n["role"]) for n in self.doc["nodes"]]

    @property
    def pod_subnet(self) -> str:
        return str(self.doc.get("networking", {}).get("podSubnet", DEFAULT_POD_SUBNET))


def load_kind_config(path: Path) -> KindConfig:
    src = str(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(src, "", "file not found") from e
    except (OSError, yaml.YAMLError) as e:
        reason = str(e).replace("\n", " ")
        raise ConfigError(src, "", f"not valid YAML: {reason}") from e
    if not isinstance(doc, dict):
        raise ConfigError(src, "", "must be a YAML mapping (a kind Cluster object)")
    if doc.get("kind") != "Cluster":
        raise ConfigError(src, "kind", f"must be 'Cluster', got {doc.get('kind')!r}")
    if doc.get("apiVersion") != API_VERSION:
        raise ConfigError(src, "apiVersion", f"must be {API_VERSION!r}, got {doc.get('apiVersion')!r}")
    unknown = sorted(set(doc) - _TOP_LEVEL)
    if unknown:
        raise ConfigError(src, unknown[0], "unknown field for a kind v1alpha4 Cluster")
    nodes = doc.get("nodes", [{"role": "control-plane"}])
    if not isinstance(nodes, list) or not nodes:
        raise ConfigError(src, "nodes", "must be a non-empty list")
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise ConfigError(src, f"nodes[{i}]", "must be a mapping")
        extra = sorted(set(node) - _NODE_KEYS)
        if extra:
            raise ConfigError(src, f"nodes[{i}].{extra[0]}", "unknown field")
        if node.get("role") not in ROLES:
            raise ConfigError(
                src, f"nodes[{i}].role", f"must be one of {sorted(ROLES)}, got {node.get('role')!r}"
            )
    if not any(n["role"] == "control-plane" for n in nodes):
        raise ConfigError(src, "nodes", "needs at least one control-plane node")
    networking = doc.get("networking", {})
    if not isinstance(networking, dict):
        raise ConfigError(src, "networking", "must be a mapping")
    for key in ("podSubnet", "serviceSubnet"):
        if key in networking:
            try:
                net = ipaddress.ip_network(str(networking[key]))
            except ValueError as e:
                raise ConfigError(src, f"networking.{key}", f"not a CIDR: {networking[key]!r}") from e
            if key == "podSubnet" and net.prefixlen > 22:  # /24 per node: at least 4 nodes' worth
                raise ConfigError(src, "networking.podSubnet", f"{net} is too small (need /22 or larger)")
    if networking.get("disableDefaultCNI") is False:
        raise ConfigError(src, "networking.disableDefaultCNI", "meshcert provides pod networking; omit it")
    return KindConfig(path, {**doc, "nodes": nodes})


def render(config: KindConfig, *, node_image: str) -> str:
    """The config kind receives: default CNI off, our node image on every node."""
    doc = dict(config.doc)
    doc["networking"] = {
        **doc.get("networking", {}),
        "disableDefaultCNI": True,
        "podSubnet": config.pod_subnet,
    }
    doc["nodes"] = [{**n, "image": node_image} for n in config.doc["nodes"]]
    doc.pop("name", None)  # the cluster name is the run's, given on the command line
    return yaml.safe_dump(doc, sort_keys=False)
