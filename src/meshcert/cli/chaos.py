"""`meshcert chaos validate|run`: declarative chaos experiments (chaos/experiments/*.yaml).

Kept apart from `meshcert run` (cli/run.py) so the conformance and chaos commands evolve
independently; `meshcert run chaos` delegates to `run_chaos` here. Every experiment named on
the command line is validated before anything is created: one bad file → exit 2, no namespace.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
import yaml

from meshcert.cli._context import Context
from meshcert.errors import ConfigError
from meshcert.faults.experiment import Experiment, load_experiment
from meshcert.faults.recovery import recovery_record
from meshcert.faults.runner import Target, run_experiment
from meshcert.kube.client import new_api_client
from meshcert.kube.namespaces import NamespaceFactory
from meshcert.runid import new_run_id
from meshcert.runs import ClusterRecord, RunStore
from meshcert.settings import Settings

EXPERIMENTS_DIR = Path("chaos/experiments")


def resolve(names: list[str], *, root: Path) -> list[Path]:
    """Paths of the named experiments: a file path, or a name under chaos/experiments/."""
    if not names:
        return sorted((root / EXPERIMENTS_DIR).glob("*.yaml"))
    out = []
    for name in names:
        path = Path(name)
        if not path.is_file():
            path = root / EXPERIMENTS_DIR / f"{name.removesuffix('.yaml')}.yaml"
        if not path.is_file():
            raise ConfigError(
                "command line", "EXPERIMENT", f"no experiment {name!r} (file or chaos/experiments/)"
            )
        out.append(path)
    return out


def validate_all(paths: list[Path], *, root: Path) -> list[Experiment]:
    return [load_experiment(p, root=root) for p in paths]


def kind_cluster_name(kubeconfig: Path) -> str | None:
    """The kind cluster a kubeconfig targets, from its current context (``kind-<name>``)."""
    try:
        doc = yaml.safe_load(kubeconfig.read_text())
    except (OSError, yaml.YAMLError):
        return None
    context = str(doc.get("current-context", "")) if isinstance(doc, dict) else ""
    return context.removeprefix("kind-") if context.startswith("kind-") else None


def run_chaos(
    settings: Settings,
    names: list[str],
    *,
    kubeconfig: Path,
    cluster: str | None = None,
    root: Path | None = None,
) -> int:
    """Validate, then run each experiment in a fresh namespace; 0 if all passed, 1 otherwise.

    Writes one journal per experiment (runner.py) and one per run, ``chaos/run-<run_id>.json``
    under the reports dir, with every experiment's verdict and deviation/recovery record.
    """
    root = root or Path.cwd()
    experiments = validate_all(resolve(names, root=root), root=root)
    if not kubeconfig.is_file():
        raise ConfigError("--kubeconfig", "kubeconfig", f"no such file: {kubeconfig}")
    cluster = cluster or kind_cluster_name(kubeconfig)
    if not cluster:
        raise ConfigError("--cluster-name", "cluster", "name the kind cluster whose nodes faults may touch")
    run_id = new_run_id()
    store = RunStore(settings.state_dir)
    store.create(run_id)
    store.add_cluster(run_id, ClusterRecord("existing", cluster, str(kubeconfig), created=False))
    api = new_api_client(kubeconfig)
    namespaces = NamespaceFactory(api, run_id)
    reports = root / settings.reports_dir / "chaos"
    run_journal: dict[str, object] = {"run_id": run_id, "cluster": cluster, "started": time.time()}
    entries: list[dict[str, object]] = []
    verdicts: list[str] = []
    try:
        for exp in experiments:
            ns = namespaces.create(f"chaos-{exp.name}"[:30])
            target = Target(api, kubeconfig, cluster, ns, run_id, settings.state_dir, settings.cache_dir)
            journal = run_experiment(target, exp, reports_dir=root / settings.reports_dir)
            record = recovery_record(journal)
            verdicts.append(journal.verdict)
            entries.append(
                {
                    "experiment": exp.name,
                    "source": str(exp.source),
                    "journal": str(reports / f"{exp.name}-{run_id}.json"),
                    "recovery": asdict(record),
                }
            )
            typer.echo(f"{exp.name}: {journal.verdict}" + "".join(f"\n  - {r}" for r in journal.reasons))
            typer.echo(f"  recovery after revert: {_seconds(record.recovery_s)}")
            namespaces.delete(ns, wait=False)
    finally:
        api.close()  # type: ignore[no-untyped-call]
        run_journal["finished"] = time.time()
        run_journal["experiments"] = entries
        reports.mkdir(parents=True, exist_ok=True)
        (reports / f"run-{run_id}.json").write_text(json.dumps(run_journal, indent=2) + "\n")
    store.remove(run_id)
    typer.echo(f"journal: {reports / f'run-{run_id}.json'}")
    return 0 if verdicts == ["passed"] * len(experiments) else 1


def _seconds(value: float | None) -> str:
    return "did not recover" if value is None else f"{value:.1f} s"


#: The options `meshcert chaos run` and `meshcert run chaos` share (module level: typer reads
#: postponed annotations by name).
ExperimentsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Experiment files or names under chaos/experiments/ (default: all)."),
]
KubeconfigOpt = Annotated[Path, typer.Option("--kubeconfig", help="Kubeconfig of the kind cluster.")]
ClusterNameOpt = Annotated[
    str, typer.Option("--cluster-name", help="kind cluster (default: from the kubeconfig's context).")
]


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Chaos experiments: steady state, faults, rollback.", no_args_is_help=True)
    app.add_typer(sub, name="chaos")

    @sub.command("validate")
    def validate(
        experiments: Annotated[
            list[str] | None, typer.Argument(help="Files or names (default: all).")
        ] = None,
    ) -> None:
        """Parse and validate experiments; errors name file:line and field (exit 2)."""
        root = Path.cwd()
        for exp in validate_all(resolve(experiments or [], root=root), root=root):
            typer.echo(f"{exp.source}: ok ({len(exp.method)} steps, {len(exp.steady_state)} probes)")

    @sub.command("run")
    def run(
        ctx: typer.Context,
        experiments: ExperimentsArg = None,
        kubeconfig: KubeconfigOpt = Path(),
        cluster: ClusterNameOpt = "",
    ) -> None:
        """Run experiments; a JSON journal per experiment and per run in reports/chaos/."""
        settings = ctx.ensure_object(Context).settings
        raise typer.Exit(
            run_chaos(settings, experiments or [], kubeconfig=kubeconfig, cluster=cluster or None)
        )
