"""`meshcert images build|list`: the node image and workload images, built locally."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from meshcert.cli._context import Context
from meshcert.toolchain.images import build_images, current_node_image
from meshcert.toolchain.locust_image import build_locust_image

_console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Locally built images (node, components, test app, Locust).", no_args_is_help=True)
    app.add_typer(sub, name="images")

    @sub.command("build")
    def build(ctx: typer.Context) -> None:
        """Build the kind node image, the test-app and Locust images; a no-op when up to date."""
        settings = ctx.ensure_object(Context).settings
        start = time.monotonic()

        def progress(msg: str) -> None:
            _console.print(f"  [{time.monotonic() - start:6.1f}s] {msg}")

        built = build_images(cache_dir=settings.cache_dir, progress=progress)
        locust = build_locust_image(cache_dir=settings.cache_dir, progress=progress)
        _console.print(
            f"node image {built.node_image}, test app {built.testapp_image}, locust {locust.ref} "
            f"({locust.size / 1e6:.0f} MB) ({time.monotonic() - start:.0f}s)"
        )

    @sub.command("node")
    def node(ctx: typer.Context) -> None:
        """Print the node image `cluster up` will use."""
        typer.echo(current_node_image(ctx.ensure_object(Context).settings.cache_dir))
