"""Lazily loaded settings shared by subcommands (so `--help` never reads config files)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from meshcert.settings import Settings


class Context:
    def __init__(self, loader: Callable[[], Settings]) -> None:
        self._loader = loader

    @cached_property
    def settings(self) -> Settings:
        return self._loader()
