"""Recording a training run in MLflow and reading registered versions back."""

from __future__ import annotations

import json
import re
import tempfile
import time
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
    "numba",
    "mlflow<3.18",
]


def mlflow_key(key: str) -> str:
    """A metric key MLflow accepts (`=` and other symbols become `_`)."""
    return _BAD_KEY_CHARS.sub("_", key)


def model_params(model: BaseRecommender) -> dict[str, str]:
    """The model's constructor parameters as MLflow params, `model.<name>` (values as text,
    cut to MLflow's 6,000 characters)."""
    return {f"model.{k}": str(v)[:6000] for k, v in sorted(model.get_params().items())}


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
    from mlflow.entities import Metric, Param, RunTag

    from features.fingerprint import fingerprint_tables
    from training.pyfunc import MODEL_ARTIFACT, RecommenderPyfunc, signature_for

    config = result.config
    configure_tracking()
    experiment_id = ensure_experiment(config.experiment_name)
    fingerprint = dataset.meta.get("fingerprint") or fingerprint_tables(tables)
    cutoff = str(split.cutoff)
    client = MlflowClient()
    with (
        tempfile.TemporaryDirectory(prefix="recsys-run-") as tmp,
        mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{config.model}-{config.target}"
        ) as run,
    ):
        run_id = run.info.run_id
        # Params and tags before the model, which takes the run's params as its own; the
        # metrics after it: logged before, MLflow would link each metric to it one query at a
        # time (seconds for a thousand segment metrics). MLflow splits each call into as few
        # batches (one database commit each) as its limits allow.
        # every constructor parameter the model ran with, defaults included, so runs compare
        # on their effective settings; the `-p` overrides keep the text they were given in
        params = {
            **model_params(result.model),
            **config.flat(),
            **_fingerprint_params(fingerprint),
        }
        tags = {
            "git_commit": git_commit(),
            "seed": str(config.seed),
            "target": config.target,
            "model_name": config.model,
            "cutoff": cutoff,
            "config_digest": config.digest(),
            "data_fingerprint": str(fingerprint.get("digest", "")),
        }
        client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        folder = Path(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RecommenderPyfunc(),
                artifacts={MODEL_ARTIFACT: str(result.model.save(folder / MODEL_ARTIFACT))},
                signature=signature_for(config.target),
                pip_requirements=PIP_REQUIREMENTS,
            )
        metrics = {mlflow_key(k): float(v) for k, v in result.metrics.items()}
        metrics.update({f"time.{k}": float(v) for k, v in result.timings.items()})
        now = int(time.time() * 1000)
        # linked to the logged model (step 0), as `mlflow.log_metrics` links them
        client.log_batch(
            run_id,
            metrics=[
                Metric(k, v, now, 0, model_id=info.model_id, run_id=run_id)
                for k, v in metrics.items()
            ],
        )
        # Evaluation files, plots and the refit model: one upload of one folder.
        files = folder / "artifacts"
        _write_run_files(result, fingerprint, files)
        if full_model is not None:
            full_model.save(files / FULL_MODEL_ARTIFACT)
        mlflow.log_artifacts(str(files))
    if not config.register_model:
        return run_id, None
    # Registered after the run, with its tags in the same request; the alias moves last, so
    # @challenger never points at a version without them.
    primary = result.metrics.get(config.primary_metric, float("nan"))
    version_tags = {
        "run_id": run_id,
        "model_name": config.model,
        "primary_metric": config.primary_metric,
        config.primary_metric: f"{primary:.6f}",
        "data_fingerprint": str(fingerprint.get("digest", "")),
        "holdout_days": str(config.holdout_days),
        "cutoff": cutoff,
    }
    registered = mlflow.register_model(info.model_uri, config.registered_name, tags=version_tags)
    version = str(registered.version)
    client.set_registered_model_alias(config.registered_name, CHALLENGER, version)
    return run_id, version


def _write_run_files(result: TrainResult, fingerprint: dict[str, Any], out: Path) -> None:
    """The run's evaluation files and plots, laid out as its artifact folders under `out`."""
    from training.plots import plot_metric_curves, plot_segments

    config = result.config
    evaluation = out / "evaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "metrics.json").write_text(json.dumps(result.metrics, indent=2, sort_keys=True))
    (evaluation / "fingerprint.json").write_text(json.dumps(fingerprint, indent=2, default=str))
    (evaluation / "config.json").write_text(config.model_dump_json(indent=2))
    result.per_user.to_parquet(evaluation / "per_user.parquet")
    plots = out / "plots"
    plots.mkdir()
    plot_metric_curves(result.metrics, config.ks, plots / "metrics_at_k.png")
    plot_segments(result.metrics, config.primary_metric, plots / "segments.png")


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
