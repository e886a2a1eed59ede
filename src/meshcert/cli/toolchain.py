"""`meshcert toolchain build|list`: compile pinned upstream binaries into the cache."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from meshcert.cli._context import Context
from meshcert.cli._progress import Step
from meshcert.toolchain.gobuild import BuildResult, build_all
from meshcert.toolchain.pins import GO_COMPONENTS, PAUSE_VERSION

_console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Pinned upstream binaries, built from Go modules.", no_args_is_help=True)
    app.add_typer(sub, name="toolchain")

    @sub.command("build")
    def build(
        ctx: typer.Context,
        only: Annotated[list[str] | None, typer.Argument(help="Components to build (default all).")] = None,
    ) -> None:
        """Build every pinned component; a no-op when the cache is current."""
        settings = ctx.ensure_object(Context).settings
        step = Step(_console)

        def started(name: str, version: str) -> None:
            step.start(f"building {name} {version} (go build; minutes when cold)")

        def done(r: BuildResult) -> None:
            step.stop()
            how = "cached" if r.cached else f"built in {r.seconds:.0f}s"
            _console.print(f"  {r.name:<11} {r.version:<9} {how}  [dim]{r.directory}[/dim]")

        try:
            build_all(
                cache_dir=settings.cache_dir, only=set(only) if only else None, on_start=started, on_done=done
            )
        finally:
            step.stop()

    @sub.command("list")
    def list_() -> None:
        """Show the pins."""
        for c in GO_COMPONENTS:
            typer.echo(f"{c.name:<11} {c.version:<9} {', '.join(b for b, _ in c.binaries)}")
        typer.echo(f"{'pause':<11} {PAUSE_VERSION:<9} pause (C, static)")
