"""`recsys train`: split → features → fit → evaluate → MLflow run → registry (@challenger)."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.columns import Columns, Tables
from recsys.data.dataset import Dataset, user_column
from recsys.exceptions import EmptyDataError
from recsys.models.base import BaseRecommender
from training.config import TrainConfig

C = Columns
PER_USER_FILE = "per_user.parquet"
NEW_SKU_DAYS = 30


@dataclass
class TrainResult:
    """What a training run produced."""

    config: TrainConfig
    metrics: dict[str, float]
    per_user: pd.DataFrame
    model: BaseRecommender
    run_id: str | None = None
    model_version: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def split_metric(name: str) -> tuple[str, int]:
    """`kept_ndcg_at_20` → ("kept_ndcg", 20)."""
    base, sep, k = name.rpartition("_at_")
    if not sep or not k.isdigit():
        raise ValueError(f"metric name must look like <metric>_at_<k>, got {name!r}")
    return base, int(k)


def _new_skus(dataset: Dataset, days: int = NEW_SKU_DAYS) -> set[str]:
    """SKUs launched in the last `days` before the cutoff, or after it."""
    launched = pd.to_datetime(dataset.sku_table[C.LAUNCHED_AT], utc=True)
    recent = launched >= dataset.cutoff - pd.Timedelta(days=days)
    return set(dataset.sku_table.loc[recent.to_numpy(), C.SKU_ID])


def _train_popularity(dataset: Dataset) -> pd.Series:
    counts = np.asarray((dataset.interactions != 0).sum(axis=0)).ravel()
    return pd.Series(counts, index=dataset.skus.external_ids, name="buyers")


def oracle_metrics(
    data_dir: Path,
    target: str,
    reco: pd.DataFrame,
    cutoff: pd.Timestamp,
    ks: tuple[int, ...],
    horizon_days: int,
    *,
    max_users: int = 1_000,
    seed: int = 0,
) -> dict[str, float]:
    """`oracle_share_at_k`: true expected kept purchases of the picks / of the oracle's picks.

    Only for simulated data (a `truth/` folder next to the tables); evaluation may read it,
    training never does. Over `max_users` evaluated users, it is estimated on a random sample.
    """
    from recsys.simulation import truth as sim_truth

    if not (Path(data_dir) / "truth").is_dir():
        return {}
    truth = sim_truth.load_truth(data_dir)
    col = user_column(target)
    ids = reco[col].unique()
    if len(ids) > max_users:
        # The oracle scores every SKU for every customer of a user: estimate the share on a
        # fixed random sample of users so large data sets stay cheap (same seed, same sample).
        ids = np.sort(np.random.default_rng(seed).choice(ids, size=max_users, replace=False))
        reco = reco[reco[col].isin(ids)]
    value_fn = (
        sim_truth.expected_kept_purchases
        if target == "agent"
        else sim_truth.expected_kept_purchases_customer
    )
    oracle = sim_truth.oracle_picks(truth, ids, max(ks), target=target, at=cutoff)
    out: dict[str, float] = {}
    reco_value = value_fn(
        truth, reco[col].to_numpy(), reco[C.SKU_ID].to_numpy(), horizon_days=horizon_days, at=cutoff
    )
    for k in ks:
        model_v = float(reco_value[reco[C.RANK].to_numpy() <= k].sum())
        oracle_v = float(oracle.loc[oracle[C.RANK] <= k, C.SCORE].sum())
        out[f"oracle_share_at_{k}"] = model_v / oracle_v if oracle_v > 0 else 0.0
    return out


def evaluate_model(
    model: BaseRecommender,
    dataset: Dataset,
    truth: pd.DataFrame,
    segments: pd.DataFrame | None,
    config: TrainConfig,
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Metrics, per-user primary metric and the reco table of `model` on the holdout truth."""
    from recsys.evaluation.metrics import evaluate, evaluate_per_user

    users = truth[dataset.user_col].unique()
    reco = model.recommend(users, k=max(config.ks), exclude_seen=False)
    metrics = evaluate(
        reco,
        truth,
        config.ks,
        catalog_size=dataset.n_skus,
        train_popularity=_train_popularity(dataset),
        segments=segments,
        sku_segments={"new_sku": _new_skus(dataset)},
    )
    metric, k = split_metric(config.primary_metric)
    per_user = evaluate_per_user(reco, truth, metric=metric, k=k).rename(config.primary_metric)
    return metrics, per_user.to_frame(), reco


def prepare(config: TrainConfig) -> tuple[dict[str, pd.DataFrame], Any, Dataset]:
    """Load and validate the tables, split them in time and build the training dataset."""
    from features.dataset import build_dataset
    from features.weights import InteractionWeights
    from recsys.contract.loader import load_tables
    from recsys.evaluation.splitters import temporal_split

    tables = load_tables(config.data, on_quarantine="warn")
    if len(tables[Tables.PURCHASES]) == 0:
        raise EmptyDataError(f"no purchases in {config.data}: nothing to train on")
    from features.fingerprint import fingerprint_tables

    split = temporal_split(tables, holdout_days=config.holdout_days)
    weights = InteractionWeights(**config.weights)
    # One fingerprint of the whole input (logged with the run); the split's tables are passed
    # whole with the cutoff, so nothing after it is used and the log is not copied.
    fingerprint = fingerprint_tables(tables)
    dataset = build_dataset(
        split.tables,
        config.target,
        cutoff=split.cutoff,
        weights=weights,
        fingerprint=str(fingerprint["digest"]),
    )
    dataset.meta["fingerprint"] = fingerprint
    if dataset.interactions.nnz == 0:
        raise EmptyDataError(
            f"target {config.target!r} has no interactions before the cutoff {split.cutoff} "
            f"in {config.data}"
        )
    return tables, split, dataset


def fit_model(config: TrainConfig, dataset: Dataset) -> tuple[BaseRecommender, float]:
    """The configured model fitted on `dataset`, and the seconds the fit took."""
    from recsys.models import make_model

    model = make_model(config.model, random_state=config.seed, **config.params)
    start = time.perf_counter()
    model.fit(dataset)
    return model, time.perf_counter() - start


def run_training(config: TrainConfig, *, log_to_mlflow: bool = True) -> TrainResult:
    """Run one training job end to end and (by default) record it as an MLflow run."""
    from recsys.models import make_model

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tables, split, dataset = prepare(config)
    timings["prepare_s"] = time.perf_counter() - t0

    model, timings["fit_s"] = fit_model(config, dataset)
    truth = split.truth(config.target)
    if len(truth) == 0:
        raise EmptyDataError(
            f"no {config.target} purchases in the last {config.holdout_days} days: "
            "nothing to evaluate on (lower --holdout-days?)"
        )
    segments = split.segments(config.target)
    t1 = time.perf_counter()
    metrics, per_user, reco = evaluate_model(model, dataset, truth, segments, config)
    metrics.update(
        oracle_metrics(
            config.data,
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
    timings["evaluate_s"] = time.perf_counter() - t1

    result = TrainResult(
        config=config, metrics=metrics, per_user=per_user, model=model, timings=timings
    )
    full_model = None
    if config.refit_full:
        from features.dataset import build_dataset
        from features.weights import InteractionWeights

        full = build_dataset(
            tables,
            config.target,
            weights=InteractionWeights(**config.weights),
            fingerprint=dataset.fingerprint,
        )
        full_model, timings["refit_full_s"] = fit_model(config, full)
    if log_to_mlflow:
        from training.registry import log_run

        result.run_id, result.model_version = log_run(result, split, dataset, tables, full_model)
    timings["total_s"] = time.perf_counter() - t0
    return result


def metrics_json(result: TrainResult) -> str:
    """The run's metrics as pretty JSON (sorted keys)."""
    return json.dumps(result.metrics, indent=2, sort_keys=True)


def save_model_dir(model: BaseRecommender) -> Path:
    """Save a model into a fresh temporary folder (for logging as an artifact)."""
    return model.save(Path(tempfile.mkdtemp(prefix="recsys-model-")) / "recommender")
