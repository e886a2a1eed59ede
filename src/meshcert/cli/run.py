"""`meshcert run conformance|chaos`: run the conformance suites (pytest, named profile) or chaos experiments.

Why a front end and not just pytest: a certification run is named by its *profile* (like
Sonobuoy's certified-conformance mode or Gateway API's conformance profiles), so the profile →
marker expression mapping lives in one place (`PROFILES`) and the report can state which profile
ran. pytest runs in a child process (``python -m pytest``) so that its exit code is ours and no
test code is imported into the CLI process. `run chaos` runs declarative experiments
(chaos/experiments/*.yaml) in-process through `meshcert.cli.chaos.run_chaos`: they are data, not
test code, and every one is validated before anything is created.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from meshcert.cli._context import Context
from meshcert.cli.chaos import ClusterNameOpt, ExperimentsArg, KubeconfigOpt, run_chaos
from meshcert.errors import ConfigError
from meshcert.settings import Provider


class Profile(StrEnum):
    QUICK = "quick"
    FULL = "full"


@dataclass(frozen=True)
class ProfileSpec:
    """What a profile selects (a pytest marker expression) and why it exists."""

    markers: str
    purpose: str


#: The conformance profiles. Every conformance test carries the `conformance` marker; `slow`
#: marks tests that run for more than a minute (R1's 10,000-request rollout, the E9/P8
#: propagation repeats, the kwok scheduler property test).
PROFILES: dict[Profile, ProfileSpec] = {
    Profile.QUICK: ProfileSpec(
        "conformance and not slow", "every invariant with a fast check; for a developer's loop"
    ),
    Profile.FULL: ProfileSpec("conformance", "everything, including the slow measurements; for CI"),
}

#: The suite directory, relative to the repository root (where pytest finds pyproject.toml).
SUITE = "conformance"


def marker_expression(profile: Profile | str, extra: str | None = None) -> str:
    """The ``-m`` expression of ``profile``, optionally narrowed by another marker expression."""
    try:
        spec = PROFILES[Profile(profile)]
    except ValueError as e:
        choices = ", ".join(p.value for p in Profile)
        raise ConfigError("--profile", "profile", f"unknown profile {profile!r}; choose {choices}") from e
    return f"({spec.markers}) and ({extra})" if extra else spec.markers


def pytest_argv(
    profile: Profile | str,
    *,
    keyword: str | None = None,
    markers: str | None = None,
    cluster: str | None = None,
    kubeconfig: str | None = None,
    keep_cluster: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    """The child process's argv: ``python -m pytest conformance -m <profile> ...``."""
    argv = [sys.executable, "-m", "pytest", SUITE, "-m", marker_expression(profile, markers)]
    if keyword:
        argv += ["-k", keyword]
    if cluster:
        argv += ["--cluster", Provider(cluster).value]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if keep_cluster:
        argv.append("--keep-cluster")
    return argv + list(extra or [])


def register(app: typer.Typer) -> None:
    """Attach the `run` subcommands to the root app."""
    sub = typer.Typer(help="Run test suites against a target cluster.", no_args_is_help=True)
    app.add_typer(sub, name="run")

    @sub.command("conformance", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def conformance(
        ctx: typer.Context,
        *,
        profile: Annotated[
            Profile, typer.Option("--profile", help="quick (not slow) or full.")
        ] = Profile.QUICK,
        keyword: Annotated[str | None, typer.Option("-k", help="pytest -k expression.")] = None,
        markers: Annotated[
            str | None, typer.Option("-m", help="Extra marker expression, ANDed with the profile's.")
        ] = None,
        cluster: Annotated[
            Provider | None, typer.Option("--cluster", help="Target provider (kind, kwok, existing).")
        ] = None,
        kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Existing cluster.")] = None,
        keep_cluster: Annotated[bool, typer.Option("--keep-cluster", help="Leave the cluster up.")] = False,
    ) -> None:
        """Run the conformance suites; exits with pytest's exit code. Extra args go to pytest."""
        argv = pytest_argv(
            profile,
            keyword=keyword,
            markers=markers,
            cluster=cluster.value if cluster else None,
            kubeconfig=kubeconfig,
            keep_cluster=keep_cluster,
            extra=list(ctx.args),
        )
        typer.echo(f"meshcert: profile {profile.value}: {PROFILES[profile].purpose}", err=True)
        raise typer.Exit(subprocess.run(argv, check=False).returncode)

    @sub.command("chaos")
    def chaos(
        ctx: typer.Context,
        experiments: ExperimentsArg = None,
        *,
        kubeconfig: KubeconfigOpt = Path(),
        cluster: ClusterNameOpt = "",
    ) -> None:
        """Run chaos experiments; a JSON journal per experiment and per run in reports/chaos/.

        Exit 0 when every experiment passed, 1 when one failed, 2 on bad input (an invalid
        experiment file is named with its line and field before anything is created).
        """
        settings = ctx.ensure_object(Context).settings
        code = run_chaos(settings, experiments or [], kubeconfig=kubeconfig, cluster=cluster or None)
        raise typer.Exit(code)
