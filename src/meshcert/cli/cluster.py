"""`meshcert cluster up|down|status|kubeconfig`: one target cluster at a time, by name."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from meshcert.cli._context import Context
from meshcert.cluster.base import Cluster
from meshcert.cluster.factory import make_cluster
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


def target(
    settings: Settings, *, name: str | None, config: Path | None, provider: Provider | None, start: float
) -> Cluster:
    """The provider for ``name`` (its owning run's id when it exists, else a new run)."""
    run_id = (_owner_run(settings, name) if name else None) or new_run_id()
    update: dict[str, object] = {"cluster_name": name or run_id}
    if provider is not None:
        update["provider"] = provider
    chosen = settings.model_copy(update=update)
    return make_cluster(chosen, run_id=run_id, progress=_progress(start), kind_config=config)


def _provider_of(settings: Settings, name: str) -> Provider | None:
    """The provider a recorded cluster was created with (so `down NAME` needs no --provider)."""
    run_id = _owner_run(settings, name)
    record = RunStore(settings.state_dir).read(run_id) if run_id else None
    for c in record.clusters if record else []:
        if c.name == name:
            return Provider(c.provider)
    return None


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Target clusters: kind (default), kwok or existing.", no_args_is_help=True)
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
        provider: Annotated[
            Provider | None, typer.Option("--provider", help="kind (default), kwok or existing.")
        ] = None,
    ) -> None:
        """Create a cluster; returns when every node is Ready (on kind: and CoreDNS answers a pod)."""
        settings = ctx.ensure_object(Context).settings
        cluster = target(settings, name=name, config=config, provider=provider, start=time.monotonic())
        info = cluster.up()
        typer.echo(f"{info.name}\t{info.kubeconfig}")

    @sub.command("down")
    def down(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Cluster name.")]) -> None:
        """Delete a cluster and its network (idempotent)."""
        settings = ctx.ensure_object(Context).settings
        target(
            settings, name=name, config=None, provider=_provider_of(settings, name), start=time.monotonic()
        ).down()
        run_id = _owner_run(settings, name)
        if run_id:
            RunStore(settings.state_dir).remove(run_id)

    @sub.command("status")
    def status(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Cluster name.")]) -> None:
        """Show nodes, version and capabilities; exit 1 if the cluster does not exist."""
        settings = ctx.ensure_object(Context).settings
        info = target(
            settings, name=name, config=None, provider=_provider_of(settings, name), start=time.monotonic()
        ).status()
        if info is None:
            typer.echo(f"no cluster named {name}")
            raise typer.Exit(1)
        typer.echo(f"name: {info.name}\nversion: {info.kubernetes_version}\nnodes: {', '.join(info.nodes)}")
        typer.echo(f"capabilities: {', '.join(sorted(info.capabilities))}\nkubeconfig: {info.kubeconfig}")

    @sub.command("kubeconfig")
    def kubeconfig(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Cluster name.")]) -> None:
        """Print the kubeconfig path of a cluster."""
        settings = ctx.ensure_object(Context).settings
        typer.echo(
            target(
                settings,
                name=name,
                config=None,
                provider=_provider_of(settings, name),
                start=time.monotonic(),
            ).kubeconfig()
        )
