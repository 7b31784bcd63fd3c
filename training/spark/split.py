"""The temporal holdout of recsys/evaluation/splitters.py, computed with Spark DataFrames.

Same window [cutoff, end) (end just after the last purchase, cutoff = end − holdout), same truth
and segment tables, collected to the driver (one row per holdout (user, SKU) pair and per user):
the metric code is then the local engine's own. tests/spark/test_parity.py checks equality.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.columns import FAULT_RETURN_REASONS, Columns, Tables
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY, user_column
from recsys.evaluation.splitters import EPSILON, IS_NEW, KEPT_QTY, NEW_USER
from recsys.exceptions import EmptyDataError

C = Columns
USER_TABLE: dict[str, str] = {"agent": Tables.AGENTS, "customer": Tables.CUSTOMERS}


@dataclass(frozen=True)
class SparkSplit:
    """The holdout window of a temporal split (the Spark tables stay where they are)."""

    cutoff: pd.Timestamp
    end: pd.Timestamp
    holdout_days: float

    @property
    def cutoff_ns(self) -> int:
        """The cutoff as int64 ns since the epoch."""
        return int(self.cutoff.value)

    @property
    def end_ns(self) -> int:
        """The end of the window as int64 ns since the epoch."""
        return int(self.end.value)


def temporal_split(tables: Mapping[str, DataFrame], holdout_days: float = 14) -> SparkSplit:
    """The window of `recsys.evaluation.splitters.temporal_split`, from the Spark purchases.

    Raises
    ------
    ValueError
        If `holdout_days` is not positive or no purchase falls before the cutoff.
    EmptyDataError
        If there are no purchases.
    """
    if not holdout_days > 0:
        raise ValueError(f"holdout_days must be > 0, got {holdout_days!r}")
    row = tables[Tables.PURCHASES].agg(F.min(C.TS).alias("lo"), F.max(C.TS).alias("hi")).first()
    if row is None or row["hi"] is None:
        raise EmptyDataError("the purchases table is empty: there is nothing to split")
    first = pd.Timestamp(int(row["lo"]), tz="UTC")
    last = pd.Timestamp(int(row["hi"]), tz="UTC")
    end = last + EPSILON
    cutoff = end - pd.Timedelta(days=holdout_days)
    if not first < cutoff:
        raise ValueError(
            f"holdout_days={holdout_days} leaves no purchases before the cutoff "
            f"{cutoff.isoformat()} (purchases span {first.isoformat()} to {last.isoformat()})"
        )
    return SparkSplit(cutoff=cutoff, end=end, holdout_days=float(holdout_days))


def seen_pairs(tables: Mapping[str, DataFrame], target: str, cutoff_ns: int) -> DataFrame:
    """Distinct (user id, sku_id) pairs with a purchase (agents: or a share) before the cutoff."""
    col = user_column(target)
    before = F.col(C.TS) < F.lit(cutoff_ns)
    pairs = tables[Tables.PURCHASES].where(before).select(col, C.SKU_ID)
    if target == "agent":
        pairs = pairs.unionByName(tables[Tables.SHARES].where(before).select(C.AGENT_ID, C.SKU_ID))
    return pairs.distinct()


def truth(tables: Mapping[str, DataFrame], split: SparkSplit, target: str) -> pd.DataFrame:
    """`Split.truth(target)`: one row per (user, SKU) bought in the holdout, sorted by both."""
    col = user_column(target)
    ts = F.col(C.TS)
    test = tables[Tables.PURCHASES].where(
        (ts >= F.lit(split.cutoff_ns)) & (ts < F.lit(split.end_ns))
    )
    # every return of a holdout line counts, even one filed after the window
    fault = F.col(C.REASON).isin(list(FAULT_RETURN_REASONS))
    rets = (
        tables[Tables.RETURNS]
        .groupBy(C.PURCHASE_ID)
        .agg(
            F.sum(C.QTY).alias("_returned"),
            F.sum(F.when(fault, F.col(C.QTY)).otherwise(F.lit(0))).alias("_fault"),
        )
    )
    lines = test.select(col, C.SKU_ID, C.PURCHASE_ID, C.QTY).join(rets, C.PURCHASE_ID, "left")
    lines = lines.select(
        col,
        C.SKU_ID,
        C.QTY,
        F.least(F.coalesce(F.col("_returned"), F.lit(0)), F.col(C.QTY)).alias(RETURNED_QTY),
        F.least(F.coalesce(F.col("_fault"), F.lit(0)), F.col(C.QTY)).alias(FAULT_RETURNED_QTY),
    )
    pairs = lines.groupBy(col, C.SKU_ID).agg(
        F.sum(C.QTY).alias(C.QTY),
        F.sum(RETURNED_QTY).alias(RETURNED_QTY),
        F.sum(FAULT_RETURNED_QTY).alias(FAULT_RETURNED_QTY),
    )
    seen = seen_pairs(tables, target, split.cutoff_ns).withColumn("_seen", F.lit(True))
    pairs = pairs.join(seen, on=[col, C.SKU_ID], how="left")
    out = pairs.select(
        col,
        C.SKU_ID,
        C.QTY,
        RETURNED_QTY,
        FAULT_RETURNED_QTY,
        (F.col(C.QTY) - F.col(RETURNED_QTY)).alias(KEPT_QTY),
        F.col("_seen").isNull().alias(IS_NEW),
    ).toPandas()
    out = out.sort_values([col, C.SKU_ID], kind="stable").reset_index(drop=True)
    out[col] = out[col].astype(object)
    out[C.SKU_ID] = out[C.SKU_ID].astype(object)
    for c in (C.QTY, RETURNED_QTY, FAULT_RETURNED_QTY, KEPT_QTY):
        out[c] = out[c].astype(np.int64)
    out[IS_NEW] = out[IS_NEW].astype(bool)
    return out


def segments(
    tables: Mapping[str, DataFrame],
    split: SparkSplit,
    target: str,
    *,
    new_days: float = 30.0,
    max_new_interactions: int = 3,
) -> pd.DataFrame:
    """`Split.segments(target)`: new_user, region (and tier for agents) per user, sorted by id."""
    col = user_column(target)
    before = F.col(C.TS) < F.lit(split.cutoff_ns)
    counts = tables[Tables.PURCHASES].where(before).select(col)
    if target == "agent":
        counts = counts.unionByName(tables[Tables.SHARES].where(before).select(C.AGENT_ID))
    per_user = counts.groupBy(col).agg(F.count(F.lit(1)).alias("_n"))
    recent_from = (split.cutoff - pd.Timedelta(days=new_days)).value
    users = tables[USER_TABLE[target]].join(per_user, on=col, how="left")
    n_before = F.coalesce(F.col("_n"), F.lit(0))
    picked = [
        col,
        ((F.col(C.JOINED_AT) >= F.lit(recent_from)) | (n_before <= max_new_interactions)).alias(
            NEW_USER
        ),
        C.REGION,
    ]
    if target == "agent":
        picked.append(C.TIER)
    out = users.select(*picked).toPandas()
    out = out.sort_values(col, kind="stable").reset_index(drop=True)
    out[col] = out[col].astype(object)
    out[C.REGION] = out[C.REGION].astype(object)
    out[NEW_USER] = out[NEW_USER].astype(bool)
    if target == "agent":
        out[C.TIER] = out[C.TIER].astype(np.int64)
    return out
