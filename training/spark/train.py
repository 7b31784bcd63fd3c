"""`recsys train --engine spark`: the training job of training/train.py on a Spark session.

Tables are read and the pairs weighted on the executors (features/spark_interactions.py), the
holdout split and truth computed there too (training/spark/split.py); MLlib ALS fits on the
distributed pairs. The driver collects the matrix and the factors, then evaluates with the local
engine's own code (`training.train.evaluate_model`, recsys/evaluation/metrics.py) against the
same popularity baseline, and logs and registers the model as `item-to-agent` /
`item-to-customer` with `engine=spark`, so promote, rollback and A/B work unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recsys.exceptions import EmptyDataError
from training.config import TrainConfig
from training.train import TrainResult

SPARK_MODELS: tuple[str, ...] = ("als",)
# Local-engine parameters with no Spark meaning (Spark decides its own threads).
IGNORED_PARAMS: frozenset[str] = frozenset({"num_threads"})
ENGINE_TAG = "engine"


def model_params(config: TrainConfig) -> dict[str, Any]:
    """The SparkALSRecommender parameters of a config (`-p` overrides), seed included.

    Raises
    ------
    ValueError
        If the model is not one the Spark engine trains.
    """
    if config.model not in SPARK_MODELS:
        raise ValueError(
            f"--engine spark trains {', '.join(SPARK_MODELS)} (MLlib ALS), not {config.model!r}; "
            "use the local engine for the other models"
        )
    params = {k: v for k, v in config.params.items() if k not in IGNORED_PARAMS}
    return {"random_state": config.seed, **params}


def _make_model(config: TrainConfig) -> Any:
    """A new SparkALSRecommender from the config (TypeError names a bad parameter)."""
    from recsys.models.spark_als import SparkALSRecommender

    try:
        return SparkALSRecommender(**model_params(config))
    except TypeError as exc:
        raise ValueError(f"bad parameters for --engine spark model 'als': {exc}") from None


def run_spark_training(
    config: TrainConfig,
    *,
    master: str = "local[*]",
    spark_conf: Mapping[str, str] | None = None,
    log_to_mlflow: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run one training job on Spark end to end and (by default) record it as an MLflow run.

    `on_stage` is called with a description of each stage as it starts (to show progress).
    """
    from recsys.models import make_model
    from recsys.models.popular import PopularRecommender
    from training.spark import split as spark_split
    from training.spark.dataset import build_spark_dataset
    from training.spark.io import fingerprint, is_uri, read_tables
    from training.spark.session import spark_session
    from training.train import evaluate_model, oracle_metrics

    config = config.model_copy(update={"engine": "spark"})
    model = _make_model(config)  # bad parameters fail before Spark starts
    tell = on_stage or (lambda stage: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tell("starting Spark")
    spark = spark_session(master, spark_conf)
    timings["session_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    tell("reading the tables, splitting and weighting the interactions")
    tables = read_tables(spark, str(config.data))
    prints = fingerprint(tables)
    split = spark_split.temporal_split(tables, config.holdout_days)
    window = PopularRecommender().window_days
    built = build_spark_dataset(
        spark,
        tables,
        config.target,
        cutoff=split.cutoff,
        weights=config.weights,
        window_days=window,
        fingerprint=str(prints["digest"]),
    )
    dataset = built.dataset
    dataset.meta["fingerprint"] = prints
    truth = spark_split.truth(tables, split, config.target)
    if len(truth) == 0:
        raise EmptyDataError(
            f"no {config.target} purchases in the last {config.holdout_days} days: "
            "nothing to evaluate on (lower --holdout-days?)"
        )
    segments = spark_split.segments(tables, split, config.target)
    timings["prepare_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    tell(f"fitting ALS on {dataset.interactions.nnz:,} pairs")
    model.fit_spark(dataset, built.ratings)
    built.release()
    timings["fit_s"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    tell("evaluating on the holdout")
    metrics, per_user, reco = evaluate_model(model, dataset, truth, segments, config)
    if not is_uri(str(config.data)):
        metrics.update(
            oracle_metrics(
                Path(config.data),
                config.target,
                reco,
                split.cutoff,
                config.ks,
                config.holdout_days,
                seed=config.seed,
            )
        )
    # The popularity baseline on the same holdout: a first champion must beat it.
    baseline = make_model("popular", random_state=config.seed).fit(dataset)
    _, base_per_user, _ = evaluate_model(baseline, dataset, truth, segments, config)
    per_user = per_user.join(base_per_user.add_prefix("popular."), how="outer").fillna(0.0)
    timings["evaluate_s"] = time.perf_counter() - t3

    result = TrainResult(
        config=config, metrics=metrics, per_user=per_user, model=model, timings=timings
    )
    full_model = None
    if config.refit_full:
        t4 = time.perf_counter()
        tell("refitting on all the data")
        full = build_spark_dataset(
            spark,
            tables,
            config.target,
            weights=config.weights,
            window_days=window,
            fingerprint=str(prints["digest"]),
        )
        full_model = _make_model(config).fit_spark(full.dataset, full.ratings)
        full.release()
        timings["refit_full_s"] = time.perf_counter() - t4
    if log_to_mlflow:
        from training.registry import log_run

        tell("logging to MLflow")
        result.run_id, result.model_version = log_run(result, split, dataset, {}, full_model)
        tag_engine(config, result.run_id, result.model_version)
    timings["total_s"] = time.perf_counter() - t0
    return result


def tag_engine(config: TrainConfig, run_id: str, version: str | None) -> None:
    """Note `engine=spark` on the run and on its registered model version."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_tag(run_id, ENGINE_TAG, "spark")
    client.set_tag(run_id, "model_class", "SparkALSRecommender")
    if version is not None:
        client.set_model_version_tag(config.registered_name, version, ENGINE_TAG, "spark")


def train_command(
    config: TrainConfig, *, master: str, spark_conf: Mapping[str, str] | None
) -> TrainResult:
    """`recsys train --engine spark`: the job with a status line on stderr."""
    from recsys.console import err_console
    from training.spark.session import spark_errors

    with err_console.status("starting Spark") as status, spark_errors("the training job"):
        return run_spark_training(
            config,
            master=master,
            spark_conf=spark_conf,
            on_stage=lambda stage: status.update(f"{stage} (Spark)"),
        )
