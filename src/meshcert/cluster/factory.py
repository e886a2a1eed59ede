"""`make_cluster`: the one place that turns settings into a provider (kind, kwok or existing).

Why it exists: the CLI and the pytest plugin both choose a provider from the same settings; a
missing or unknown choice must fail the same way, as a one-line ConfigError naming the field,
before anything is created.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from meshcert.cluster.base import Cluster
from meshcert.cluster.existing import ExistingCluster
from meshcert.cluster.kind import KindCluster
from meshcert.cluster.kwok import KwokCluster
from meshcert.errors import ConfigError
from meshcert.settings import Provider, Settings

Progress = Callable[[str], None]


def make_cluster(
    settings: Settings,
    *,
    run_id: str,
    progress: Progress = lambda _: None,
    kind_config: Path | None = None,
) -> Cluster:
    """The provider ``settings.provider`` names, configured for run ``run_id`` (nothing started)."""
    provider = settings.provider
    if provider is Provider.KIND:
        return KindCluster(settings=settings, run_id=run_id, config=kind_config, progress=progress)
    if provider is Provider.KWOK:
        return KwokCluster(settings=settings, run_id=run_id, progress=progress)
    if provider is Provider.EXISTING:
        if settings.kubeconfig is None:
            raise ConfigError(
                "settings",
                "kubeconfig",
                "the existing provider needs one (--kubeconfig or MESHCERT_KUBECONFIG)",
            )
        if not settings.kubeconfig.is_file():
            raise ConfigError(str(settings.kubeconfig), "kubeconfig", "file not found")
        return ExistingCluster(
            kubeconfig=settings.kubeconfig,
            run_id=run_id,
            state_dir=settings.state_dir,
            name=settings.cluster_name,
            disruptive=settings.allow_disruptive,
            progress=progress,
        )
    known = ", ".join(p.value for p in Provider)
    raise ConfigError("settings", "provider", f"unknown provider {provider!r}; choose one of {known}")
