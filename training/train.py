"""`recsys train`: split → features → fit → evaluate → MLflow run → registry (@challenger)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys.columns import Columns, Tables
from recsys.data.dataset import Dataset, user_column
from recsys.exceptions import EmptyDataError
from recsys.models.base import BaseRecommender
from training.config import TrainConfig

if TYPE_CHECKING:
    from recsys.contract.table_cache import CacheEntry
    from training.tracking import TrackingWarmup

C = Columns
PER_USER_FILE = "per_user.parquet"
NEW_SKU_DAYS = 30
ORACLE_CACHE_DIR = "oracle"
ORACLE_KEEP = 8  # cached oracle pick tables kept per data directory (newest first)


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
    cache: bool | None = None,
) -> dict[str, float]:
    """`oracle_share_at_k`: true expected kept purchases of the picks / of the oracle's picks.

    Only for simulated data (a `truth/` folder next to the tables); evaluation may read it,
    training never does. Over `max_users` evaluated users, it is estimated on a random sample.
    The oracle's picks are kept in the table cache unless `cache` (or `RECSYS_TABLE_CACHE`)
    turns it off.
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
    cached = _oracle_cache_file(
        Path(data_dir), target, ids, max(ks), cutoff, horizon_days, cache=cache
    )
    oracle = _read_derived(cached)
    if oracle is None:
        oracle = sim_truth.oracle_picks(truth, ids, max(ks), target=target, at=cutoff)
        _write_oracle(cached, oracle)
    out: dict[str, float] = {}
    reco_value = value_fn(
        truth, reco[col].to_numpy(), reco[C.SKU_ID].to_numpy(), horizon_days=horizon_days, at=cutoff
    )
    for k in ks:
        model_v = float(reco_value[reco[C.RANK].to_numpy() <= k].sum())
        oracle_v = float(oracle.loc[oracle[C.RANK] <= k, C.SCORE].sum())
        out[f"oracle_share_at_{k}"] = model_v / oracle_v if oracle_v > 0 else 0.0
    return out


def _oracle_cache_file(
    data_dir: Path,
    target: str,
    ids: np.ndarray,
    k: int,
    cutoff: pd.Timestamp,
    horizon: float,
    *,
    cache: bool | None = None,
) -> Path | None:
    """Where the oracle's picks for these users are cached; None when caching is off.

    The oracle depends only on the ground truth, the users, k, the cutoff, the horizon and the
    simulator's code, so runs of other models on the same holdout reuse it.
    """
    from recsys.contract.cache_key import file_digests, package_digest
    from recsys.contract.table_cache import cache_enabled, cache_root, writable_dir

    root = cache_root(data_dir)
    folder = root / ORACLE_CACHE_DIR
    if not cache_enabled(cache) or not writable_dir(folder):
        return None
    truth_files = sorted(p for p in (data_dir / "truth").rglob("*") if p.is_file())
    digest = hashlib.sha256(package_digest("recsys.simulation").encode())
    digest.update(f"{target};{k};{cutoff.isoformat()};{horizon};{len(ids)};".encode())
    digest.update("\0".join(map(str, ids)).encode())
    for path, sha in file_digests(truth_files, root).items():
        digest.update(f"{Path(path).relative_to(data_dir).as_posix()}\0{sha}\0".encode())
    return folder / f"picks-{digest.hexdigest()[:32]}.parquet"


def _write_oracle(path: Path | None, oracle: pd.DataFrame) -> None:
    """Cache oracle picks, keeping only the newest `ORACLE_KEEP` tables of the folder."""
    if path is None:
        return
    _keep_derived(path, oracle.reset_index(drop=True))
    try:
        older = sorted(path.parent.glob("picks-*.parquet"), key=lambda p: p.stat().st_mtime)
        for stale in older[:-ORACLE_KEEP]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # the cache only saves time


def sample_holdout(truth: pd.DataFrame, user_col: str, n: int | None, seed: int) -> pd.DataFrame:
    """The holdout truth of at most `n` of its users, drawn with `seed` (all of it when None).

    The draw depends only on the set of users, the seed and `n`, so two models evaluated on the
    same holdout with the same settings are scored on the same users (paired comparisons).
    """
    if n is None:
        return truth
    users = np.sort(truth[user_col].unique().astype(str))
    if len(users) <= n:
        return truth
    rng = np.random.default_rng(seed)
    chosen = users[np.sort(rng.choice(len(users), size=n, replace=False))]
    return truth.loc[truth[user_col].isin(chosen).to_numpy()].reset_index(drop=True)


def evaluate_model(
    model: BaseRecommender,
    dataset: Dataset,
    truth: pd.DataFrame,
    segments: pd.DataFrame | None,
    config: TrainConfig,
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Metrics, per-user primary metric and the reco table of `model` on the holdout truth."""
    from recsys.evaluation.metrics import evaluate, evaluate_per_user

    truth = sample_holdout(truth, dataset.user_col, config.eval_users, config.seed)
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


@dataclass
class Prepared:
    """What a run trains and evaluates on, and the table cache entry its tables came from."""

    tables: dict[str, pd.DataFrame]
    split: Any
    dataset: Dataset
    cache_entry: CacheEntry | None = None


def needs_side_features(config: TrainConfig) -> bool:
    """Whether the configured model reads side features (ALS and the like do not: the tables,
    a few seconds on millions of lines, are then not built)."""
    from recsys.models import make_model

    try:
        return make_model(config.model, **config.params).needs_side_features
    except (ValueError, TypeError):
        return True  # a bad model or parameter fails at the fit, with its own message


def prepare(
    config: TrainConfig, *, cache: bool | None = None
) -> tuple[dict[str, pd.DataFrame], Any, Dataset]:
    """Load and validate the tables, split them in time and build the training dataset."""
    prepared = prepare_cached(config, cache=cache)
    return prepared.tables, prepared.split, prepared.dataset


def prepare_cached(config: TrainConfig, *, cache: bool | None = None) -> Prepared:
    """`prepare`, also returning the table cache entry (for results derived from the tables).

    `cache` = False loads without the table cache (validating afresh, storing nothing); None
    leaves it to `RECSYS_TABLE_CACHE`.
    """
    from features.dataset import build_dataset
    from features.fingerprint import fingerprint_cached
    from features.weights import InteractionWeights
    from recsys.contract.loader import load_tables_cached
    from recsys.evaluation.splitters import temporal_split

    loaded = load_tables_cached(config.data, on_quarantine="warn", cache=cache)
    tables = loaded.tables
    if len(tables[Tables.PURCHASES]) == 0:
        raise EmptyDataError(f"no purchases in {config.data}: nothing to train on")

    split = temporal_split(tables, holdout_days=config.holdout_days, arrow_columns=loaded.arrow)
    weights = InteractionWeights(**config.weights)
    # One fingerprint of the whole input (logged with the run); the split's tables are passed
    # whole with the cutoff, so nothing after it is used and the log is not copied.
    fingerprint = fingerprint_cached(tables, loaded.cache_entry)
    dataset = build_dataset(
        split.tables,
        config.target,
        cutoff=split.cutoff,
        weights=weights,
        with_features=needs_side_features(config),
        fingerprint=str(fingerprint["digest"]),
        arrow_columns=loaded.arrow,
    )
    dataset.meta["fingerprint"] = fingerprint
    if dataset.interactions.nnz == 0:
        raise EmptyDataError(
            f"target {config.target!r} has no interactions before the cutoff {split.cutoff} "
            f"in {config.data}"
        )
    return Prepared(tables, split, dataset, loaded.cache_entry)


def _derived_file(
    kind: str, settings: dict[str, Any], entry: CacheEntry | None, cache: bool | None
) -> Path | None:
    """Where a result derived from the cached tables is kept, if anywhere.

    It depends on the tables (the entry), `settings` and the code that computes it, all in the
    name, so a change to any of them computes it afresh.
    """
    from recsys.contract.cache_key import package_digest, source_digest
    from recsys.contract.table_cache import cache_enabled

    if entry is None or not cache_enabled(cache):
        return None
    digest = hashlib.sha256()
    for package in ("features", "recsys.data", "recsys.evaluation", "recsys.models"):
        digest.update(package_digest(package).encode())
    digest.update(source_digest(__name__).encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    try:
        return entry.derived(f"{kind}-{digest.hexdigest()[:32]}.parquet")
    except OSError:
        return None  # a read-only cache: compute it


def _read_derived(path: Path | None) -> pd.DataFrame | None:
    """A result kept earlier beside the data (None when absent or unreadable: compute it)."""
    if path is None or not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError):
        return None


def _keep_derived(path: Path | None, frame: pd.DataFrame) -> None:
    """Keep a derived result (atomically; a cache that cannot be written is simply not used)."""
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def _baseline_file(
    config: TrainConfig, entry: CacheEntry | None, cache: bool | None = None
) -> Path | None:
    """Where the popularity baseline's per-user metric for this holdout is cached, if anywhere."""
    settings = {
        "target": config.target,
        "holdout_days": config.holdout_days,
        "eval_users": config.eval_users,
        "ks": list(config.ks),
        "primary_metric": config.primary_metric,
        "seed": config.seed,
        "weights": config.weights,
    }
    return _derived_file("popular-per-user", settings, entry, cache)


def holdout_tables(
    config: TrainConfig, split: Any, entry: CacheEntry | None = None, cache: bool | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The holdout's truth and user segments of the target (kept beside the table cache).

    Both depend only on the tables, the target and the holdout length; computing them takes
    about a second on `medium`, reading them back a tenth of that.
    """
    settings = {"target": config.target, "holdout_days": config.holdout_days}
    files = [_derived_file(kind, settings, entry, cache) for kind in ("truth", "segments")]
    kept = [_read_derived(path) for path in files]
    if kept[0] is not None and kept[1] is not None:
        return kept[0], kept[1]
    truth, segments = split.truth(config.target), split.segments(config.target)
    for path, frame in zip(files, (truth, segments), strict=True):
        _keep_derived(path, frame)
    return truth, segments


def baseline_per_user(
    config: TrainConfig,
    dataset: Dataset,
    truth: pd.DataFrame,
    segments: pd.DataFrame | None,
    entry: CacheEntry | None = None,
    cache: bool | None = None,
) -> pd.DataFrame:
    """The popularity baseline's per-user primary metric on the holdout (cached when possible)."""
    from recsys.models import make_model

    path = _baseline_file(config, entry, cache)
    kept = _read_derived(path)
    if kept is not None:
        return kept
    baseline = make_model("popular", random_state=config.seed).fit(dataset)
    _, per_user, _ = evaluate_model(baseline, dataset, truth, segments, config)
    _keep_derived(path, per_user)
    return per_user


def fit_model(
    config: TrainConfig, dataset: Dataset, *, alongside: TrackingWarmup | None = None
) -> tuple[BaseRecommender, float]:
    """The configured model fitted on `dataset`, and the seconds the fit took.

    `alongside` is started just before the fit itself (see `TrackingWarmup`).
    """
    from recsys.models import make_model

    model = make_model(config.model, random_state=config.seed, **config.params)
    start = time.perf_counter()
    if alongside is not None:
        alongside.start()
    model.fit(dataset)
    return model, time.perf_counter() - start


def run_training(
    config: TrainConfig, *, log_to_mlflow: bool = True, cache: bool | None = None
) -> TrainResult:
    """Run one training job end to end and (by default) record it as an MLflow run.

    `cache` = False runs without the table cache and the results kept beside it (the data is
    validated afresh and nothing is stored); None leaves it to `RECSYS_TABLE_CACHE`.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prepared = prepare_cached(config, cache=cache)
    tables, split, dataset = prepared.tables, prepared.split, prepared.dataset
    timings["prepare_s"] = time.perf_counter() - t0

    warmup = None
    if log_to_mlflow:
        from training.tracking import TrackingWarmup

        # MLflow loads while the model fits, and is waited for before evaluating (the wait
        # counts as logging time).
        warmup = TrackingWarmup(config.experiment_name)
    model, timings["fit_s"] = fit_model(config, dataset, alongside=warmup)
    waited = time.perf_counter()
    if warmup is not None:
        warmup.wait()
    waited = time.perf_counter() - waited
    t1 = time.perf_counter()
    truth, segments = holdout_tables(config, split, prepared.cache_entry, cache)
    if len(truth) == 0:
        raise EmptyDataError(
            f"no {config.target} purchases in the last {config.holdout_days} days: "
            "nothing to evaluate on (lower --holdout-days?)"
        )
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
            cache=cache,
        )
    )
    # The popularity baseline on the same holdout: a first champion must beat it.
    base_per_user = baseline_per_user(config, dataset, truth, segments, prepared.cache_entry, cache)
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
            with_features=needs_side_features(config),
            fingerprint=dataset.fingerprint,
        )
        full_model, timings["refit_full_s"] = fit_model(config, full)
    if log_to_mlflow:
        from training.registry import log_run

        t2 = time.perf_counter()
        result.run_id, result.model_version = log_run(result, split, dataset, tables, full_model)
        timings["log_s"] = time.perf_counter() - t2 + waited
    timings["total_s"] = time.perf_counter() - t0
    return result


def metrics_json(result: TrainResult) -> str:
    """The run's metrics as pretty JSON (sorted keys)."""
    return json.dumps(result.metrics, indent=2, sort_keys=True)
