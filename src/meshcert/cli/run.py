"""`meshcert run` subcommands (placeholder until its layer lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `run` subcommands to the root app."""
    _ = app
