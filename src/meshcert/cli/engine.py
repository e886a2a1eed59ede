"""`meshcert engine up|status` and `meshcert doctor`: the container engine, and the host's fitness.

Thin: the decisions live in meshcert.engine; this module wires progress and prints results.
Results go to stdout (one line each, greppable); progress spinners go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from meshcert.cli._context import Context
from meshcert.engine.client import EngineInfo
from meshcert.engine.doctor import Verdict, run_doctor
from meshcert.engine.engine import engine_status, engine_up
from meshcert.toolchain.gobuild import find_binary

_progress = Console(stderr=True)
_out = Console(highlight=False, soft_wrap=True)  # one line per result, even when piped
_STYLE = {Verdict.OK: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red"}


def register(app: typer.Typer) -> None:
    """Attach `engine up|status` and the top-level `doctor` to the root app."""
    sub = typer.Typer(
        help="The Docker engine kind runs on (install, configure, verify).", no_args_is_help=True
    )
    app.add_typer(sub, name="engine")

    @sub.command("up")
    def up(
        no_verify: Annotated[
            bool, typer.Option("--no-verify", help="Skip the privileged run + exec probe at the end.")
        ] = False,
    ) -> None:
        """Install, configure and start Docker so kind's privileged nodes run; a no-op when they do."""
        status = _progress.status("checking the engine")
        status.start()

        def step(message: str) -> None:
            status.update(escape(message))

        try:
            result = engine_up(on_step=step, verify=not no_verify)
        finally:
            status.stop()
        for action in result.actions:
            _out.print(f"  {escape(action)}")
        if not result.changed:
            _out.print("  engine already set up: nothing changed")
        runtime = result.info.default_runtime + (" (runc wrapper)" if result.wrapper_active else "")
        verified = (
            f"; privileged run + exec ok ({result.probe.seconds:.1f}s)" if result.probe else " (not verified)"
        )
        _out.print(f"Docker {result.info.server_version}, default runtime {escape(runtime)}{verified}")

    @sub.command("status")
    def status_() -> None:
        """Show the engine's state without changing anything; exit 1 if kind could not run on it."""
        st = engine_status()
        if isinstance(st.engine, EngineInfo):
            info = st.engine
            _out.print(f"engine:          Docker {info.server_version} (data root {info.data_root})")
            _out.print(f"default runtime: {escape(info.default_runtime)} -> {info.default_runtime_path}")
        else:
            _out.print(f"engine:          [bold red]unreachable[/] ({escape(st.engine.reason)})")
        absent = ", ".join(st.bounding_set.absent) or "none"
        _out.print(f"CapBnd:          {st.bounding_set.mask:016x} (absent: {absent})")
        current = {True: "current", False: "outdated", None: "unknown"}[st.wrapper_current]
        active = "active" if st.wrapper_active else "not active"
        _out.print(f"runc wrapper:    {st.wrapper} ({active}, {current})")
        for note in st.notes:
            _out.print(f"note:            {escape(note)}")
        verdict = "[green]ready[/]" if st.ready else "[bold red]not ready[/]: run `meshcert engine up`"
        _out.print(f"verdict:         {verdict}")
        if not st.ready:
            raise typer.Exit(1)

    @app.command("doctor")
    def doctor(ctx: typer.Context) -> None:
        """Check the host can run the suite; one line per check; exit 1 if any check fails."""
        cache_dir: Path = ctx.ensure_object(Context).settings.cache_dir
        with _progress.status("checking (runs one privileged probe container)"):
            results = run_doctor(cache_dir=cache_dir, locate_kind=lambda: find_binary(cache_dir, "kind"))
        width = max(len(r.name) for r in results)
        for r in results:
            label = f"[{_STYLE[r.verdict]}]{r.verdict.value.upper():<4}[/]"
            _out.print(f"{label} {escape(r.name):<{width}}  {escape(r.detail)}")
        if any(r.verdict is Verdict.FAIL for r in results):
            raise typer.Exit(1)
