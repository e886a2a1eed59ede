"""`meshcert gc`: clean up after dead runs (see meshcert.gc for what counts as a leftover)."""

from __future__ import annotations

from typing import Annotated

import typer

from meshcert.cli._context import Context
from meshcert.errors import ConfigError
from meshcert.gc import collect
from meshcert.runid import is_run_id


def register(app: typer.Typer) -> None:
    @app.command("gc")
    def gc(
        ctx: typer.Context,
        run_ids: Annotated[
            list[str] | None, typer.Argument(help="Run ids to collect (default: dead runs).")
        ] = None,
        all_: Annotated[
            bool, typer.Option("--all", help="Everything meshcert created, live or not.")
        ] = False,
    ) -> None:
        """Remove clusters, containers, networks, volumes, processes and namespaces of runs."""
        for r in run_ids or []:
            if not is_run_id(r):
                raise ConfigError("command line", "RUN_IDS", f"{r!r} is not a run id (mc- and 8 hex digits)")
        settings = ctx.ensure_object(Context).settings
        report = collect(settings, run_ids=run_ids or None, everything=all_)
        for label, items in (
            ("runs", report.runs),
            ("containers", report.containers),
            ("networks", report.networks),
            ("volumes", report.volumes),
            ("processes", report.processes),
            ("namespaces", report.namespaces),
            ("faults (reverted)", report.faults),
        ):
            if items:
                typer.echo(f"removed {label}: {', '.join(map(str, items))}")
        if report.empty and not report.runs:
            typer.echo("nothing to collect")
        for err in report.errors:
            typer.echo(f"gc: {err}", err=True)
        if report.errors:
            raise typer.Exit(1)
