"""Recording a training run in MLflow and reading registered versions back."""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from recsys.models.base import BaseRecommender
from training.tracking import configure_tracking, ensure_experiment, git_commit

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from recsys.data.dataset import Dataset
    from training.train import TrainResult

CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS = "previous"
PER_USER_ARTIFACT = "evaluation/per_user.parquet"
FULL_MODEL_ARTIFACT = "model_full"
_BAD_KEY_CHARS = re.compile(r"[^0-9A-Za-z_\-. :/]")
PIP_REQUIREMENTS = [
    "numpy",
    "scipy",
    "pandas<3",
    "pyarrow",
    "scikit-learn",
    "implicit",
    "rectools-lightfm",
    "mlflow<3.18",
]


def mlflow_key(key: str) -> str:
    """A metric key MLflow accepts (`=` and other symbols become `_`)."""
    return _BAD_KEY_CHARS.sub("_", key)


def _fingerprint_params(fingerprint: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for table, info in sorted(fingerprint.items()):
        if isinstance(info, dict):
            for key, value in sorted(info.items()):
                out[f"data.{table}.{key}"] = str(value)[:500]
        else:
            out[f"data.{table}"] = str(info)[:500]
    return out


def log_run(
    result: TrainResult,
    split: Any,
    dataset: Dataset,
    tables: dict[str, pd.DataFrame],
    full_model: BaseRecommender | None = None,
) -> tuple[str, str | None]:
    """Log params, data fingerprint, metrics, plots and the model; register it as @challenger.

    Returns the run id and the registered version (None when registration is off).
    """
    import mlflow
    from mlflow import MlflowClient

    from features.fingerprint import fingerprint_tables
    from training.plots import plot_metric_curves, plot_segments
    from training.pyfunc import MODEL_ARTIFACT, RecommenderPyfunc, signature_for
    from training.train import save_model_dir

    config = result.config
    configure_tracking()
    experiment_id = ensure_experiment(config.experiment_name)
    fingerprint = dataset.meta.get("fingerprint") or fingerprint_tables(tables)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{config.model}-{config.target}"
    ) as run:
        mlflow.log_params(config.flat())
        mlflow.log_params(_fingerprint_params(fingerprint))
        mlflow.set_tags(
            {
                "git_commit": git_commit(),
                "seed": str(config.seed),
                "target": config.target,
                "model_name": config.model,
                "cutoff": str(split.cutoff),
                "config_digest": config.digest(),
                "data_fingerprint": str(fingerprint.get("digest", "")),
            }
        )
        # The model goes first: logged after the metrics, MLflow links each metric to it one
        # query at a time (seconds for a thousand segment metrics).
        if full_model is not None:
            mlflow.log_artifacts(str(save_model_dir(full_model)), artifact_path=FULL_MODEL_ARTIFACT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RecommenderPyfunc(),
                artifacts={MODEL_ARTIFACT: str(save_model_dir(result.model))},
                signature=signature_for(config.target),
                registered_model_name=config.registered_name if config.register_model else None,
                pip_requirements=PIP_REQUIREMENTS,
            )
        mlflow.log_metrics({mlflow_key(k): float(v) for k, v in result.metrics.items()})
        mlflow.log_metrics({f"time.{k}": v for k, v in result.timings.items()})
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            (tmp_path / "metrics.json").write_text(
                json.dumps(result.metrics, indent=2, sort_keys=True)
            )
            (tmp_path / "fingerprint.json").write_text(
                json.dumps(fingerprint, indent=2, default=str)
            )
            (tmp_path / "config.json").write_text(config.model_dump_json(indent=2))
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
            result.per_user.to_parquet(tmp_path / "per_user.parquet")
            mlflow.log_artifact(str(tmp_path / "per_user.parquet"), artifact_path="evaluation")
            plots = tmp_path / "plots"
            plots.mkdir()
            plot_metric_curves(result.metrics, config.ks, plots / "metrics_at_k.png")
            plot_segments(result.metrics, config.primary_metric, plots / "segments.png")
            mlflow.log_artifacts(str(plots), artifact_path="plots")
        version = getattr(info, "registered_model_version", None)
        run_id = run.info.run_id
    if version is not None:
        client = MlflowClient()
        client.set_registered_model_alias(config.registered_name, CHALLENGER, str(version))
        tags = {
            "run_id": run_id,
            "model_name": config.model,
            "primary_metric": config.primary_metric,
            config.primary_metric: f"{result.metrics.get(config.primary_metric, float('nan')):.6f}",
            "data_fingerprint": str(fingerprint.get("digest", "")),
            "holdout_days": str(config.holdout_days),
            "cutoff": str(split.cutoff),
        }
        for key, value in tags.items():
            client.set_model_version_tag(config.registered_name, str(version), key, value)
    return run_id, (str(version) if version is not None else None)


def get_version(name: str, alias: str) -> ModelVersion | None:
    """The model version behind `name@alias`, or None when the alias is not set."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_tracking()
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_per_user(run_id: str) -> pd.DataFrame:
    """The per-user evaluation frame a run logged."""
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PER_USER_ARTIFACT)
    return pd.read_parquet(path)


def load_recommender(run_id: str, *, prefer_full: bool = False) -> BaseRecommender:
    """The recommender a run logged (the refit-on-all-data one when asked and present)."""
    import mlflow

    if prefer_full:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=FULL_MODEL_ARTIFACT
            )
            return BaseRecommender.load(Path(path))
        except Exception:  # noqa: BLE001 - no full refit logged: use the evaluated model
            pass
    return load_pyfunc_recommender(f"runs:/{run_id}/model")


def load_pyfunc_recommender(model_uri: str) -> BaseRecommender:
    """The recommender inside a logged pyfunc model (`models:/item-to-agent@champion`, ...)."""
    import mlflow.pyfunc

    configure_tracking()
    wrapper = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    return wrapper.model
