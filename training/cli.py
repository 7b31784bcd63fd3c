"""Offline-job commands: train, promote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsys.console import console, fail, user_errors

MODEL_NAMES = "popular|repeat|itemknn|als|bpr|lightfm|blend|ranked"


ENGINE_HELP = "local (one machine) or spark (a Spark session; docs/spark.md)."
MASTER_HELP = (
    "Spark master URL: local[*], local[4], spark://HOST:7077, yarn, k8s://... (--engine spark)."
)
SPARK_CONF_HELP = (
    "Spark setting key=value, repeatable (--engine spark), e.g. spark.executor.memory=8g."
)
NO_CACHE_HELP = (
    "Validate the data afresh and neither read nor write the table cache (validated tables, "
    "data fingerprint, baseline scores, oracle picks; docs/data-contract.md), like "
    "RECSYS_TABLE_CACHE=off. Local engine."
)


def train(
    data: Annotated[
        str,
        typer.Option(help="Data directory (the six contract tables); a URI with --engine spark."),
    ],
    target: Annotated[str, typer.Option(help="agent (item-to-agent) or customer.")] = "agent",
    model: Annotated[str, typer.Option(help=f"Model: {MODEL_NAMES}.")] = "als",
    config: Annotated[Path | None, typer.Option(help="TOML file with run settings.")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Model parameter name=value.")
    ] = None,
    holdout_days: Annotated[int | None, typer.Option(help="Days held out (default 14).")] = None,
    eval_users: Annotated[
        int | None,
        typer.Option(help="Evaluate a seeded sample of at most N holdout users (default: all)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    refit_full: Annotated[
        bool, typer.Option(help="Also refit on all data for publishing.")
    ] = False,
    register: Annotated[bool, typer.Option(help="Register the model as @challenger.")] = True,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    engine: Annotated[str | None, typer.Option(help=ENGINE_HELP)] = None,
    spark_master: Annotated[str, typer.Option(help=MASTER_HELP)] = "local[*]",
    spark_conf: Annotated[list[str] | None, typer.Option(help=SPARK_CONF_HELP)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help=NO_CACHE_HELP)] = False,
) -> None:
    """Train one model, evaluate it on a temporal holdout and record it in MLflow."""
    from training.config import ENGINES, load_config, parse_param
    from training.tracking import ui_command
    from training.train import run_training

    with user_errors():
        if engine is not None and engine not in ENGINES:
            fail(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}", 2)
        if engine != "spark" and "://" not in data and not Path(data).exists():
            fail(f"data directory not found: {data}", 2)
        params = dict(parse_param(p) for p in (param or []))
        cfg = load_config(
            config,
            data=data,
            target=target,
            model=model,
            params=params,
            holdout_days=holdout_days,
            eval_users=eval_users,
            seed=seed,
            refit_full=refit_full or None,
            register_model=register,
            experiment=experiment,
            engine=engine,
        )
        if cfg.engine == "local" and isinstance(cfg.data, str):
            fail(f"{data} is a URI: read it with --engine spark, or copy it to a folder", 2)
        from recsys.models import MODELS

        if cfg.model not in MODELS:
            fail(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}", 2)
        console.print(
            f"training [bold]{cfg.model}[/] for target [bold]{cfg.target}[/] on {data}"
            + (f" with Spark ({spark_master})" if cfg.engine == "spark" else "")
        )
        if cfg.engine == "spark":
            from training.spark.session import parse_conf
            from training.spark.train import train_command

            result = train_command(cfg, master=spark_master, spark_conf=parse_conf(spark_conf))
        else:
            result = run_training(cfg, cache=False if no_cache else None)
    _print_metrics(result.metrics, cfg.ks, cfg.primary_metric)
    times = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    console.print(f"timings: {times}")
    if result.run_id:
        registered = (
            f"registered {cfg.registered_name} v{result.model_version} as @challenger"
            if result.model_version
            else "not registered"
        )
        console.print(f"MLflow run {result.run_id}; {registered}")
        console.print(f"browse: {ui_command()}")


def _print_metrics(metrics: dict[str, float], ks: tuple[int, ...], primary: str) -> None:
    from rich.table import Table

    names = [
        "precision",
        "recall",
        "ndcg",
        "map",
        "hit_rate",
        "kept_recall",
        "kept_ndcg",
        "return_rate",
        "coverage",
        "novelty",
        "oracle_share",
    ]
    table = Table(title=f"holdout metrics (primary: {primary})")
    table.add_column("metric")
    for k in ks:
        table.add_column(f"@{k}", justify="right")
        table.add_column(f"new@{k}", justify="right", style="dim")
    for name in names:
        if not any(f"{name}_at_{k}" in metrics for k in ks):
            continue
        cells = []
        for k in ks:
            cells.append(f"{metrics.get(f'{name}_at_{k}', float('nan')):.4f}")
            new = metrics.get(f"new_{name}_at_{k}")
            cells.append("" if new is None else f"{new:.4f}")
        table.add_row(name, *cells)
    console.print(table)


def promote(
    target: Annotated[str, typer.Option(help="agent or customer.")] = "agent",
    force: Annotated[bool, typer.Option(help="Promote even if it does not win.")] = False,
    metric: Annotated[str | None, typer.Option(help="Metric to compare on.")] = None,
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
) -> None:
    """Move @champion to @challenger if it beats the champion on the same holdout."""
    from training.promote import promote as run_promote

    with user_errors():
        decision = run_promote(target, force=force, metric=metric, n_resamples=n_resamples)
    if decision.forced:
        console.print(f"[bold yellow]WARNING: forced promotion.[/] {decision.reason}")
    elif decision.promoted:
        console.print(f"[green]{decision.reason}[/]")
    else:
        console.print(f"[yellow]{decision.reason}[/]")
        raise typer.Exit(1 if decision.reason.startswith("refused") else 0)


def tune(
    data: Annotated[Path, typer.Option(help="Data directory (the six contract tables).")],
    model: Annotated[str, typer.Option(help="Model to tune.")] = "als",
    target: Annotated[str, typer.Option(help="agent or customer.")] = "agent",
    trials: Annotated[int, typer.Option(help="Number of Optuna trials.")] = 20,
    config: Annotated[Path | None, typer.Option(help="Base TOML config.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the best config (TOML).")] = Path(
        "best-config.toml"
    ),
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
) -> None:
    """Search a model's key parameters with Optuna; each trial is a nested MLflow run."""
    from training.config import load_config
    from training.tune import tune as run_tune

    with user_errors():
        if not data.exists():
            fail(f"data directory not found: {data}", 2)
        cfg = load_config(config, data=data, model=model, target=target, seed=seed)
        result = run_tune(cfg, trials, out=out)
    console.print(
        f"best {cfg.primary_metric} = {result.best_value:.5f} after {result.n_trials} trials "
        f"with {result.best_params}; written to {out}"
    )


def demo(
    scale: Annotated[str, typer.Option(help="Simulation size: tiny|small|medium.")] = "small",
    data: Annotated[Path | None, typer.Option(help="Data directory.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and the models.")] = 7,
    fresh: Annotated[bool, typer.Option(help="Simulate again even if data exists.")] = False,
    host: Annotated[str, typer.Option(help="Address the service listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the service listens on.")] = 8000,
    serve: Annotated[bool, typer.Option(help="Start the service at the end.")] = True,
) -> None:
    """The main job end to end: simulate → validate → train → publish → serve."""
    from training.demo import demo_command

    with user_errors():
        demo_command(data or Path("var/data") / scale, scale, seed, fresh, host, port, serve)


def register(app: typer.Typer) -> None:
    """Add the offline-job commands to the `recsys` app."""
    app.command()(train)
    app.command()(promote)
    app.command()(tune)
    app.command()(demo)
