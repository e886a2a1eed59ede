"""`meshcert mesh install|uninstall|status|images|run NAME`: the reference mesh on a kind cluster.

`mesh run` is what `make run` calls: it brings up the kind cluster if it does not exist, installs
the reference mesh if istiod is absent, and runs the mesh suite (conformance/mesh) with pytest in
a child process against that cluster (``--cluster existing``), so one command certifies the mesh
and its exit code is pytest's. A cluster it created is deleted afterwards unless ``--keep``; one
that already existed is left as found. M13 kills pods (only in its own namespaces), which the
existing-cluster provider allows only when told: `mesh run` tells it for a kind cluster it targets.

Registered by cli/__init__.py (``from meshcert.cli import mesh`` and ``mesh.register(app)``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from meshcert.cli._context import Context
from meshcert.cli.cluster import target
from meshcert.errors import ConfigError
from meshcert.kube.client import new_api_client
from meshcert.mesh.istio import IstioMesh
from meshcert.runs import RunStore
from meshcert.settings import Provider, Settings
from meshcert.toolchain.mesh_images import build_mesh_images

_console = Console(stderr=True)


def _mesh(ctx: typer.Context, name: str) -> IstioMesh:
    settings = ctx.ensure_object(Context).settings
    cluster = target(settings, name=name, config=None, provider=None, start=time.monotonic())
    kubeconfig = cluster.kubeconfig()
    return IstioMesh(new_api_client(kubeconfig), kubeconfig, settings.cache_dir, name)


# Module level: typer evaluates the (postponed) annotations in the module's namespace.
ClusterArg = Annotated[str, typer.Argument(help="kind cluster name.")]
RunClusterArg = Annotated[str, typer.Argument(help="kind cluster name (created if absent).")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="Skip tests marked slow (M13's load runs).")]
KeepOpt = Annotated[bool, typer.Option("--keep", help="Keep a cluster this command created.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="kind config for a new cluster.")]

#: The suite directory, relative to the repository root (pytest finds pyproject.toml there).
SUITE = Path("conformance") / "mesh"


def suite_argv(kubeconfig: Path, *, quick: bool, extra: list[str]) -> list[str]:
    """``python -m pytest conformance/mesh -m <expr> --cluster existing --kubeconfig K ...``."""
    markers = "e2e and not slow" if quick else "e2e"
    return [sys.executable, "-m", "pytest", str(SUITE), "-m", markers,
            "--cluster", Provider.EXISTING.value, "--kubeconfig", str(kubeconfig), *extra]  # fmt: skip


def suite_env(environ: dict[str, str]) -> dict[str, str]:
    """The child's environment: disruptive tests allowed on the kind cluster `mesh run` targets."""
    return {**environ, "MESHCERT_ALLOW_DISRUPTIVE": "true"}


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="The reference mesh (Istio sidecar mode, upstream Envoy).", no_args_is_help=True)
    app.add_typer(sub, name="mesh")

    @sub.command("images")
    def images(ctx: typer.Context) -> None:
        """Build the mesh image archives (proxyv2, pilot, app); a lookup when cached."""
        settings = ctx.ensure_object(Context).settings
        start = time.monotonic()
        built = build_mesh_images(
            cache_dir=settings.cache_dir,
            progress=lambda m: _console.print(f"  [{time.monotonic() - start:6.1f}s] {m}"),
        )
        for name, size in sorted(built.sizes().items()):
            typer.echo(f"{built.refs[name]}\t{size / 1e6:.0f} MB\t{built.archives[name]}")

    @sub.command("install")
    def install(ctx: typer.Context, name: ClusterArg) -> None:
        """Build/load images, install istiod, wait until Ready; prints the phase timings."""
        settings = ctx.ensure_object(Context).settings
        start = time.monotonic()
        built = build_mesh_images(
            cache_dir=settings.cache_dir,
            progress=lambda m: _console.print(f"  [{time.monotonic() - start:6.1f}s] {m}"),
        )
        result = _mesh(ctx, name).install(built)
        typer.echo(
            f"{result.implementation}: images loaded in {result.image_load_seconds:.1f}s, "
            f"istiod Ready {result.control_plane_ready_seconds:.1f}s after install began"
        )

    @sub.command("uninstall")
    def uninstall(ctx: typer.Context, name: ClusterArg) -> None:
        """Remove the mesh (istioctl uninstall --purge) and its namespace."""
        _mesh(ctx, name).uninstall()

    @sub.command("status")
    def status(ctx: typer.Context, name: ClusterArg) -> None:
        """istiod readiness and image."""
        typer.echo(_mesh(ctx, name).status())

    @sub.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def run(
        ctx: typer.Context, name: RunClusterArg, *, quick: QuickOpt = False, keep: KeepOpt = False,
        config: ConfigOpt = None,
    ) -> None:  # fmt: skip
        """Cluster up if absent, mesh install if absent, then pytest conformance/mesh (extra args go
        to pytest); exits with pytest's exit code."""
        settings = ctx.ensure_object(Context).settings
        raise typer.Exit(
            run_suite(settings, name, quick=quick, keep=keep, config=config, extra=list(ctx.args))
        )


def run_suite(
    settings: Settings, name: str, *, quick: bool, keep: bool, config: Path | None, extra: list[str]
) -> int:
    """What `meshcert mesh run` does; returns pytest's exit code."""
    if not SUITE.is_dir():
        raise ConfigError("mesh run", "working directory", f"no {SUITE}/ here: run from the repository root")
    start = time.monotonic()
    cluster = target(settings, name=name, config=config, provider=Provider.KIND, start=start)
    created = cluster.status() is None
    run_id: str | None = None
    if created:
        _console.print(f"meshcert: creating kind cluster {name}")
        run_id = cluster.up().run_id
    kubeconfig = cluster.kubeconfig()
    try:
        mesh = IstioMesh(new_api_client(kubeconfig), kubeconfig, settings.cache_dir, name)
        if mesh.status().startswith("istiod: not installed"):
            built = build_mesh_images(
                cache_dir=settings.cache_dir,
                progress=lambda m: _console.print(f"  [{time.monotonic() - start:6.1f}s] {m}"),
            )
            result = mesh.install(built)
            _console.print(f"meshcert: {result.implementation} installed "
                           f"({result.control_plane_ready_seconds:.0f}s)")  # fmt: skip
        else:
            _console.print(f"meshcert: {mesh.status()}")
        argv = suite_argv(kubeconfig, quick=quick, extra=extra)
        return subprocess.run(argv, check=False, env=suite_env(dict(os.environ))).returncode
    finally:
        if created and not keep:
            _console.print(f"meshcert: deleting kind cluster {name} (--keep leaves it)")
            cluster.down()
            if run_id:
                RunStore(settings.state_dir).remove(run_id)
