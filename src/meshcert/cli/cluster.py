"""`meshcert cluster up|down|status|kubeconfig`: one target cluster at a time, by name."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from meshcert.cli._context import Context
from meshcert.cluster.kind import KindCluster
from meshcert.errors import ConfigError
from meshcert.runid import new_run_id
from meshcert.runs import RunStore
from meshcert.settings import Provider, Settings

_console = Console(stderr=True)


def _progress(start: float) -> Callable[[str], None]:
    def show(msg: str) -> None:
        _console.print(f"  [{time.monotonic() - start:6.1f}s] {msg}", highlight=False)

    return show


def _owner_run(settings: Settings, name: str) -> str | None:
    store = RunStore(settings.state_dir)
    for run_id in store.run_ids():
        record = store.read(run_id)
        if record and any(c.name == name for c in record.clusters):
            return run_id
    return None


def kind_cluster(settings: Settings, *, name: str | None, config: Path | None, start: float) -> KindCluster:
    if settings.provider is not Provider.KIND:
        raise ConfigError(
            "--provider", "provider", f"`meshcert cluster` manages kind clusters, not {settings.provider}"
        )
    run_id = (_owner_run(settings, name) if name else None) or new_run_id()
    return KindCluster(settings=settings, run_id=run_id, config=config, name=name, progress=_progress(start))


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="kind clusters built from the local node image.", no_args_is_help=True)
    app.add_typer(sub, name="cluster")

    @sub.command("up")
    def up(
        ctx: typer.Context,
        config: Annotated[
            Path | None, typer.Option("--config", help="kind config (default three-node).")
        ] = None,
        name: Annotated[
            str | None, typer.Option("--name", help="Cluster name (default: a new run id).")
        ] = None,
    ) -> None:
        """Create a cluster; returns when every node is Ready and CoreDNS answers from a pod."""
        settings = ctx.ensure_object(Context).settings
        cluster = kind_cluster(settings, name=name, config=config, start=time.monotonic())
        info = cluster.up()
        typer.echo(f"{info.name}\t{info.kubeconfig}")

    @sub.command("down")
    def down(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Cluster name.")]) -> None:
        """Delete a cluster and its network (idempotent)."""
        settings = ctx.ensure_object(Context).settings
        kind_cluster(settings, name=name, config=None, start=time.monotonic()).down()
        run_id = _owner_run(settings, name)
        if run_id:
            RunStore(settings.state_dir).remove(run_id)

    @sub.command("status")
    def status(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Cluster name.")]) -> None:
        """Show nodes, version and capabilities; exit 1 if the cluster does not exist."""
        settings = ctx.ensure_object(Context).settings
        info = kind_cluster(settings, name=name, config=None, start=time.monotonic()).status()
        if info is None:
            typer.echo(f"no cluster named {name}")
            raise typer.Exit(1)
        typer.echo(f"name: {info.name}\nversion: {info.kubernetes_version}\nnodes: {', '.join(info.nodes)}")
        typer.echo(f"capabilities: {', '.join(sorted(info.capabilities))}\nkubeconfig: {info.kubeconfig}")

    @sub.command("kubeconfig")
    def kubeconfig(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Cluster name.")]) -> None:
        """Print the kubeconfig path of a cluster."""
        settings = ctx.ensure_object(Context).settings
        typer.echo(kind_cluster(settings, name=name, config=None, start=time.monotonic()).kubeconfig())
