"""The `meshcert` command: one entry point, subcommands registered per concern.

Errors: any `MeshcertError` becomes one line on stderr and exit code 2 (bad input, missing
engine, failed build); a test or invariant failure is exit code 1; success is 0.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from meshcert.cli import _context
from meshcert.errors import MeshcertError
from meshcert.settings import load_settings

app = typer.Typer(
    name="meshcert",
    help="Conformance, chaos and load certification for Kubernetes and service meshes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings file (YAML) layered over pyproject.")
    ] = None,
) -> None:
    ctx.obj = _context.Context(lambda: load_settings(settings_file=config))


def _register() -> None:
    from meshcert.cli import chaos, cluster, engine, gc, images, mesh, run, toolchain

    for module in (engine, toolchain, images, cluster, mesh, chaos, gc, run):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    _register()
    try:
        app(args=argv, standalone_mode=True)
    except MeshcertError as e:
        print(f"meshcert: error: {e}", file=sys.stderr)
        sys.exit(2)
