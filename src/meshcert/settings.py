"""Typed settings, layered: defaults < pyproject [tool.meshcert] < settings file < env < CLI.

One model so every default states its reason and its bound in one place, and so bad values are
rejected early as a one-line `ConfigError` naming the source and the field.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meshcert.errors import ConfigError

ENV_PREFIX = "MESHCERT_"


class Provider(StrEnum):
    """Where the cluster under test comes from."""

    KIND = "kind"
    KWOK = "kwok"
    EXISTING = "existing"


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


class Settings(BaseModel):
    """Everything a run can be told. Field descriptions say why each default is what it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider = Field(
        Provider.KIND, description="kind is the embedded default: a real data plane built offline."
    )
    kind_config: Path = Field(
        Path("kind-config/three-node.yaml"),
        description="1 control plane + 2 workers: the smallest shape that exercises spreading.",
    )
    cluster_name: str | None = Field(
        None, description="Defaults to the run id, so concurrent runs never share a cluster."
    )
    kubeconfig: Path | None = Field(None, description="Required by the `existing` provider.")
    kwok_nodes: int = Field(
        30, ge=1, le=1000, description="Simulated nodes: enough to make placement non-trivial."
    )
    allow_disruptive: bool = Field(
        False,
        description="On an existing cluster, allow tests that stop/pause/partition nodes. Off by "
        "default: a cluster meshcert did not create may be someone's; kind and kwok always allow it.",
    )
    keep_cluster: bool = Field(False, description="Leave the cluster up after the run.")
    keep_on_failure: bool = Field(False, description="Keep namespaces of failed tests for debugging.")
    cache_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "meshcert",
        description="Built binaries and image archives, keyed by pin; survives between runs.",
    )
    state_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state") / "meshcert",
        description="Run records (what each run created), read by `meshcert gc`.",
    )
    reports_dir: Path = Field(Path("reports"), description="Allure results, JUnit XML, HTML report.")
    node_ready_timeout: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="kubeadm join of 2 workers on 2 cores takes ~60-90 s; 300 s leaves headroom.",
    )

    @property
    def bin_dir(self) -> Path:
        return self.cache_dir / "bin"

    @property
    def images_dir(self) -> Path:
        return self.cache_dir / "images"


_FIELDS = set(Settings.model_fields)


def _pyproject_layer(pyproject: Path) -> dict[str, Any]:
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(str(pyproject), "", f"cannot parse: {e}") from e
    section = data.get("tool", {}).get("meshcert", {})
    return {k.replace("-", "_"): v for k, v in section.items()}


def _file_layer(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(str(path), "", "file not found") from e
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(str(path), "", f"cannot parse: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "must be a mapping of setting names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _env_layer(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name in _FIELDS:
                out[name] = value
    return out


@dataclass(frozen=True)
class _Layer:
    source: str
    values: dict[str, Any]


def load_settings(
    *,
    pyproject: Path | None = Path("pyproject.toml"),
    settings_file: Path | None = None,
    environ: dict[str, str] | None = None,
    cli: dict[str, Any] | None = None,
) -> Settings:
    """Merge the layers and validate. Raises `ConfigError` naming the layer and field at fault."""
    layers: list[_Layer] = []
    if pyproject is not None:
        layers.append(_Layer(f"{pyproject} [tool.meshcert]", _pyproject_layer(pyproject)))
    if settings_file is not None:
        layers.append(_Layer(str(settings_file), _file_layer(settings_file)))
    layers.append(_Layer("environment", _env_layer(dict(os.environ if environ is None else environ))))
    layers.append(_Layer("command line", {k: v for k, v in (cli or {}).items() if v is not None}))
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.values.items():
            if key not in _FIELDS:
                raise ConfigError(layer.source, key, "unknown setting")
            merged[key] = value
            origin[key] = layer.source
    try:
        return Settings(**merged)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        source = origin.get(str(err["loc"][0]) if err["loc"] else "", "settings")
        envname = f" ({ENV_PREFIX}{field.upper()})" if source == "environment" else ""
        raise ConfigError(source, field + envname, err["msg"]) from e
