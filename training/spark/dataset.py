"""The training `Dataset` from Spark tables: pairs computed on the executors, then collected.

The driver gets what the model and the local metric code need: the id maps, the users × SKUs
matrix (sparse: 12 bytes per stored pair), the aligned users and SKUs tables and the popularity
baseline's window aggregated per (region or tier, SKU) (`WindowStats`). The event log stays in
Spark; the ALS solve reads the pairs there (`SparkDataset.ratings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.item_features import aligned_skus
from features.spark_interactions import (
    USER_TABLE,
    WEIGHT,
    distinct_ids,
    event_lines,
    index_frame,
    pair_weights,
    share_lines,
)
from features.user_features import aligned_users
from features.weight_spec import WeightRules
from features.weights import InteractionWeights, as_weights
from recsys.columns import Columns, Tables
from recsys.data.dataset import (
    FAULT_RETURNED_QTY,
    RETURNED_QTY,
    SKU_IDX,
    USER_IDX,
    Dataset,
    Target,
    WindowStats,
    user_column,
)
from recsys.exceptions import EmptyDataError
from recsys.models.popular import GROUP_COLUMNS
from training.spark.io import collect_table

C = Columns
NS_PER_DAY = 86_400 * 10**9
EPSILON_NS = 1_000  # the local engine's default cutoff lies 1 µs after the last event
_KEPT = "_kept"  # a window line's units not returned, clipped at 0


@dataclass
class SparkDataset:
    """A driver-side `Dataset` and the distributed pairs it was collected from."""

    dataset: Dataset
    ratings: DataFrame
    events: DataFrame

    def release(self) -> None:
        """Drop the cached pairs from the executors."""
        self.ratings.unpersist()


def log_end_ns(tables: Mapping[str, DataFrame]) -> int:
    """Just after the last share, purchase or return (int64 ns): the cutoff keeping every event.

    Raises
    ------
    EmptyDataError
        If the event tables hold no rows.
    """
    last = []
    for name in (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS):
        row = tables[name].agg(F.max(C.TS).alias("hi")).first()
        if row is not None and row["hi"] is not None:
            last.append(int(row["hi"]))
    if not last:
        raise EmptyDataError("tables hold no shares, purchases or returns: nothing to learn from")
    return max(last) + EPSILON_NS


def _matrix(pairs: DataFrame, shape: tuple[int, int]) -> sp.csr_matrix:
    """The collected (user_idx, sku_idx, weight) pairs as a float32 CSR matrix."""
    pdf = pairs.select(USER_IDX, SKU_IDX, WEIGHT).toPandas()
    matrix = sp.csr_matrix(
        (
            pdf[WEIGHT].to_numpy(dtype=np.float64).astype(np.float32),
            (pdf[USER_IDX].to_numpy(dtype=np.int64), pdf[SKU_IDX].to_numpy(dtype=np.int64)),
        ),
        shape=shape,
    )
    matrix.sort_indices()
    return matrix


def _no_events(col: str) -> pd.DataFrame:
    """An empty `Dataset.events` frame: the window's lines stay on the executors."""

    def ints() -> np.ndarray:
        return np.zeros(0, dtype=np.int64)

    return pd.DataFrame(
        {
            col: pd.Series([], dtype=object),
            C.SKU_ID: pd.Series([], dtype=object),
            C.TS: pd.DatetimeIndex([], tz="UTC"),
            C.QTY: ints(),
            C.UNIT_PRICE: np.zeros(0, dtype=np.float64),
            RETURNED_QTY: ints(),
            FAULT_RETURNED_QTY: ints(),
            USER_IDX: ints(),
            SKU_IDX: ints(),
        }
    )


def _aggregate(lines: DataFrame, *group: str) -> pd.DataFrame:
    """Distinct buyers and kept units per (group, SKU), collected (one row per pair)."""
    stats = lines.groupBy(*group, SKU_IDX).agg(
        F.countDistinct(USER_IDX).alias("buyers"), F.sum(_KEPT).alias("units")
    )
    pdf = stats.toPandas()
    return pd.DataFrame(
        {
            "group": pdf[group[0]].to_numpy(dtype=np.int64) if group else None,
            SKU_IDX: pdf[SKU_IDX].to_numpy(dtype=np.int64),
            "buyers": pdf["buyers"].to_numpy(dtype=np.int64),
            "units": pdf["units"].to_numpy(dtype=np.int64),
        }
    )


def _window_stats(
    spark: SparkSession, events: DataFrame, user_table: pd.DataFrame, since_ns: int, days: int
) -> WindowStats:
    """The popularity window's `WindowStats`, aggregated on the executors: only one row per
    (group, SKU) reaches the driver, not the window's purchase lines."""
    kept = F.greatest(F.col(C.QTY) - F.col(RETURNED_QTY), F.lit(0)).alias(_KEPT)
    lines = events.where(F.col(C.TS) >= F.lit(since_ns)).select(USER_IDX, SKU_IDX, kept)
    lines = lines.persist()
    try:
        stats = {"global": _aggregate(lines)}
        for kind, column in GROUP_COLUMNS.items():
            if column not in user_table.columns:
                continue
            # the groups of the driver's aligned user table, as the local popularity reads them
            codes, names = pd.factorize(user_table[column], sort=True)
            known = np.flatnonzero(codes >= 0)
            groups = spark.createDataFrame(
                pd.DataFrame({USER_IDX: known.astype(np.int64), "_group": codes[known]})
            )
            frame = _aggregate(lines.join(groups, USER_IDX, "inner"), "_group")
            frame["group"] = np.asarray(names, dtype=object)[frame["group"].to_numpy()]
            stats[kind] = frame
    finally:
        lines.unpersist()
    return WindowStats(days=days, stats=stats)


def build_spark_dataset(
    spark: SparkSession,
    tables: Mapping[str, DataFrame],
    target: str,
    *,
    cutoff: pd.Timestamp | None = None,
    weights: InteractionWeights | Mapping[str, Any] | None = None,
    window_days: int = 28,
    fingerprint: str = "",
) -> SparkDataset:
    """The `Dataset` of `features.dataset.build_dataset(..., with_features=False)`, via Spark.

    Its `interactions`, id maps, users and SKUs tables equal the local engine's. Its `events`
    are empty: the popularity baseline reads `window_stats` instead, the last `window_days`
    before the cutoff aggregated on the executors.

    Raises
    ------
    EmptyDataError
        If there are no users, no SKUs, or no interactions before the cutoff.
    """
    col = user_column(target)
    w = as_weights(weights)
    rules = WeightRules.from_weights(w)
    cutoff_ns = log_end_ns(tables) if cutoff is None else int(cutoff.value)
    cutoff_ts = pd.Timestamp(cutoff_ns, tz="UTC")
    users = distinct_ids(tables[USER_TABLE[target]], col)
    skus = distinct_ids(tables[Tables.SKUS], C.SKU_ID)
    if len(users) == 0 or len(skus) == 0:
        raise EmptyDataError(
            f"no {USER_TABLE[target]} or no skus in the tables ({len(users)} users, "
            f"{len(skus)} skus): nothing to train the {target} target on"
        )
    user_index = index_frame(spark, users, col, USER_IDX)
    sku_index = index_frame(spark, skus, C.SKU_ID, SKU_IDX)
    events = event_lines(tables, target, user_index, sku_index, cutoff_ns)
    shares = None
    if target == "agent":
        shares = share_lines(
            tables, user_index.withColumnRenamed(col, C.AGENT_ID), sku_index, cutoff_ns
        )
    pairs = pair_weights(events, shares, rules, cutoff_ns).persist()
    matrix = _matrix(pairs, (len(users), len(skus)))
    if matrix.nnz == 0:
        pairs.unpersist()
        raise EmptyDataError(
            f"target {target!r} has no interactions before the cutoff {cutoff_ts.isoformat()} "
            "(net-negative pairs are dropped)"
        )
    local = {
        Tables.SKUS: collect_table(tables[Tables.SKUS], Tables.SKUS),
        USER_TABLE[target]: collect_table(tables[USER_TABLE[target]], USER_TABLE[target]),
    }
    sku_table = aligned_skus(local, skus).reset_index(drop=True)
    user_table = aligned_users(local, target, users).reset_index(drop=True)
    since = cutoff_ns - window_days * NS_PER_DAY
    window = _window_stats(spark, events, user_table, since, window_days)
    available = (sku_table[C.STATUS].astype(str) == "active").to_numpy(dtype=bool)
    name: Target = "agent" if target == "agent" else "customer"
    dataset = Dataset(
        target=name,
        users=users,
        skus=skus,
        interactions=matrix,
        events=_no_events(col),
        user_table=user_table,
        sku_table=sku_table,
        cutoff=cutoff_ts,
        sku_available=available,
        fingerprint=fingerprint,
        window_stats=window,
        meta={
            "engine": "spark",
            "weights": w.model_dump(),
            "features": None,
            "events_window_days": window_days,
            "n_interactions": int(matrix.nnz),
            "n_users_with_interactions": int(np.count_nonzero(np.diff(matrix.indptr))),
        },
    )
    return SparkDataset(dataset=dataset, ratings=pairs, events=events)
