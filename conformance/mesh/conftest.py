"""Fixtures of the mesh suite: the installed reference mesh and one injected echo namespace.

The mesh is installed once per session when istiod is absent (image build/load + istioctl
install) and reused when it is already there (`meshcert mesh install NAME` beforehand). The echo
set is deployed once per module: each pod costs a sidecar start, and the M-tests only change
routing resources, which every test removes again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes.client import ApiClient

from meshcert.cluster.base import ClusterInfo
from meshcert.kube.namespaces import create_namespace, delete_namespace
from meshcert.mesh.istio import IstioMesh
from meshcert.mesh.suite import MeshEnv, deploy_echo_env
from meshcert.settings import Settings
from meshcert.toolchain.mesh_images import build_mesh_images


@pytest.fixture(scope="session")
def mesh(kube: ApiClient, cluster: ClusterInfo, meshcert_settings: Settings) -> IstioMesh:
    # A kind cluster reached through its kubeconfig (--cluster existing) is named "kind-<name>".
    m = IstioMesh(kube, cluster.kubeconfig, meshcert_settings.cache_dir, cluster.name.removeprefix("kind-"))
    if m.status().startswith("istiod: not installed"):
        m.install(build_mesh_images(cache_dir=meshcert_settings.cache_dir))
    m.wait_istiod_ready(timeout=60)
    return m


@pytest.fixture(scope="module")
def mesh_env(
    request: pytest.FixtureRequest, mesh: IstioMesh, kube: ApiClient, run_id: str
) -> Iterator[MeshEnv]:
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    name = f"mesh-{module}-{run_id}"[:63].rstrip("-")
    create_namespace(kube, name, run_id=run_id)
    try:
        yield deploy_echo_env(mesh, kube, name, run_id=run_id)
    finally:
        delete_namespace(kube, name, wait=False)
