"""`meshcert mesh install|uninstall|status|images NAME`: the reference mesh on a kind cluster.

Registered by cli/__init__.py (``from meshcert.cli import mesh`` and ``mesh.register(app)``).
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from meshcert.cli._context import Context
from meshcert.cli.cluster import target
from meshcert.kube.client import new_api_client
from meshcert.mesh.istio import IstioMesh
from meshcert.toolchain.mesh_images import build_mesh_images

_console = Console(stderr=True)


def _mesh(ctx: typer.Context, name: str) -> IstioMesh:
    settings = ctx.ensure_object(Context).settings
    cluster = target(settings, name=name, config=None, provider=None, start=time.monotonic())
    kubeconfig = cluster.kubeconfig()
    return IstioMesh(new_api_client(kubeconfig), kubeconfig, settings.cache_dir, name)


# Module level: typer evaluates the (postponed) annotations in the module's namespace.
ClusterArg = Annotated[str, typer.Argument(help="kind cluster name.")]


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
