"""`recsys tune`: Optuna search over a model's key parameters, each trial a nested MLflow run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import TrainConfig

Space = Callable[[Any], dict[str, Any]]

SEARCH_SPACES: dict[str, Space] = {
    "als": lambda t: {
        "factors": t.suggest_categorical("factors", [16, 32, 64, 128]),
        "regularization": t.suggest_float("regularization", 1e-4, 1.0, log=True),
        "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True),
        "iterations": t.suggest_int("iterations", 5, 30),
    },
    "bpr": lambda t: {
        "factors": t.suggest_categorical("factors", [16, 32, 64, 128]),
        "learning_rate": t.suggest_float("learning_rate", 1e-3, 0.1, log=True),
        "regularization": t.suggest_float("regularization", 1e-4, 0.1, log=True),
        "iterations": t.suggest_int("iterations", 20, 200, log=True),
    },
    "lightfm": lambda t: {
        "no_components": t.suggest_categorical("no_components", [16, 32, 64]),
        "learning_rate": t.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "epochs": t.suggest_int("epochs", 5, 40),
        "item_alpha": t.suggest_float("item_alpha", 1e-8, 1e-4, log=True),
    },
    "itemknn": lambda t: {
        "k_neighbours": t.suggest_int("k_neighbours", 10, 400, log=True),
        "weighting": t.suggest_categorical("weighting", ["bm25", "cosine", "tfidf"]),
    },
    "repeat": lambda t: {
        "half_life_days": t.suggest_float("half_life_days", 3.0, 180.0, log=True),
    },
    "blend": lambda t: {
        "repeat_weight": t.suggest_float("repeat_weight", 0.0, 1.0),
        "half_life_days": t.suggest_float("half_life_days", 3.0, 180.0, log=True),
    },
    "popular": lambda t: {
        "window_days": t.suggest_int("window_days", 7, 120, log=True),
    },
}


@dataclass
class TuneResult:
    """Best parameters found and the primary metric they reached."""

    best_params: dict[str, Any]
    best_value: float
    n_trials: int
    parent_run_id: str | None


def tune(
    config: TrainConfig, n_trials: int, *, out: Path | None = None, log_to_mlflow: bool = True
) -> TuneResult:
    """Search `config.model`'s parameters for the best primary metric on the holdout."""
    import optuna

    from training.train import evaluate_model, fit_model, prepare

    if config.model not in SEARCH_SPACES:
        raise ValueError(
            f"no search space for model {config.model!r}; tunable: {', '.join(SEARCH_SPACES)}"
        )
    if n_trials < 1:
        raise ValueError(f"trials must be >= 1, got {n_trials}")
    _, split, dataset = prepare(config)
    truth = split.truth(config.target)
    segments = split.segments(config.target)
    space = SEARCH_SPACES[config.model]

    mlflow = None
    parent_id = None
    experiment_id = None
    if log_to_mlflow:
        import mlflow as _mlflow

        from training.tracking import configure_tracking, ensure_experiment

        mlflow = _mlflow
        configure_tracking()
        experiment_id = ensure_experiment(config.experiment_name)
        parent = mlflow.start_run(
            experiment_id=experiment_id, run_name=f"tune-{config.model}-{config.target}"
        )
        parent_id = parent.info.run_id
        mlflow.log_params({f"base.{k}": v for k, v in config.flat().items()})
        mlflow.set_tag("n_trials", str(n_trials))

    def objective(trial: Any) -> float:
        params = {**config.params, **space(trial)}
        cfg = config.model_copy(update={"params": params})
        model, fit_s = fit_model(cfg, dataset)
        metrics, _, _ = evaluate_model(model, dataset, truth, segments, cfg)
        value = float(metrics[cfg.primary_metric])
        if mlflow is not None:
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"trial-{trial.number}", nested=True
            ):
                mlflow.log_params({f"model.{k}": v for k, v in params.items()})
                mlflow.log_metrics({k: float(v) for k, v in metrics.items() if "=" not in k})
                mlflow.log_metric("time.fit_s", fit_s)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed)
    )
    try:
        study.optimize(objective, n_trials=n_trials, show_progress_bar=True)
    finally:
        if mlflow is not None:
            if len(study.trials) and study.best_trial is not None:
                mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
                mlflow.log_metric(f"best.{config.primary_metric}", study.best_value)
            mlflow.end_run()
    best = {**config.params, **study.best_params}
    if out is not None:
        write_best_config(config.model_copy(update={"params": best}), out)
    return TuneResult(best, float(study.best_value), len(study.trials), parent_id)


def write_best_config(config: TrainConfig, path: Path) -> Path:
    """Write a TOML training config (usable with `recsys train --config`)."""
    lines = [
        f'model = "{config.model}"',
        f'target = "{config.target}"',
        f"holdout_days = {config.holdout_days}",
        f"seed = {config.seed}",
        "",
        "[params]",
    ]
    for key, value in sorted(config.params.items()):
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value!r}")
        else:
            lines.append(f'{key} = "{value}"')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
