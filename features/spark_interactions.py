"""The interaction matrix of features/interactions.py, computed with Spark DataFrames.

Same rules, same result (tests/spark/test_parity.py): purchase lines and shares with
`ts < cutoff` of known users and SKUs; units returned by returns filed before the cutoff, capped
at the line's quantity; each event weighted by `features.weight_spec` (the formula the local
engine is checked against), summed per (user, SKU) pair in float64, finished (log scale, clip)
and dropped when zero. Timestamps are int64 ns since the epoch (training/spark/io.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from features.weight_spec import WeightRules, age_days, finish_pair, line_weight, share_weight
from recsys.columns import FAULT_RETURN_REASONS, Columns, Tables
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY, SKU_IDX, USER_IDX, user_column
from recsys.data.id_map import IdMap

C = Columns
WEIGHT = "weight"
USER_TABLE: dict[str, str] = {"agent": Tables.AGENTS, "customer": Tables.CUSTOMERS}


class SparkOps:
    """`features.weight_spec.Ops` over Spark column expressions."""

    def exp2(self, x: Column) -> Column:
        """2 ** x."""
        return F.pow(F.lit(2.0), x)

    def maximum(self, x: Column, floor: float) -> Column:
        """max(x, floor)."""
        return F.greatest(x, F.lit(float(floor)))

    def signed_log1p(self, x: Column) -> Column:
        """sign(x) · log1p(|x|)."""
        return F.signum(x) * F.log1p(F.abs(x))


SPARK_OPS = SparkOps()


def distinct_ids(frame: DataFrame, column: str) -> IdMap:
    """The sorted distinct non-null values of `column`, as the local engine's IdMap orders them."""
    values = frame.select(column).where(F.col(column).isNotNull()).distinct().toPandas()[column]
    return IdMap.from_values(values.to_numpy(dtype=object))


def index_frame(spark: SparkSession, ids: IdMap, column: str, index: str) -> DataFrame:
    """A (column, index) DataFrame of an IdMap, to join external ids to their indices."""
    pdf = pd.DataFrame(
        {column: ids.external_ids.astype(str), index: np.arange(len(ids), dtype=np.int32)}
    )
    return spark.createDataFrame(pdf)


def returned_before(returns: DataFrame, cutoff_ns: int | None) -> DataFrame:
    """Units returned per purchase id (all, and for a fault reason) by returns before the cutoff."""
    rets = returns if cutoff_ns is None else returns.where(F.col(C.TS) < F.lit(cutoff_ns))
    fault = F.col(C.REASON).isin(list(FAULT_RETURN_REASONS))
    return rets.groupBy(C.PURCHASE_ID).agg(
        F.sum(C.QTY).alias("_returned"),
        F.sum(F.when(fault, F.col(C.QTY)).otherwise(F.lit(0))).alias("_fault"),
    )


def event_lines(
    tables: Mapping[str, DataFrame],
    target: str,
    users: DataFrame,
    skus: DataFrame,
    cutoff_ns: int,
) -> DataFrame:
    """`Dataset.events` as a DataFrame: purchase lines before the cutoff of known users and SKUs.

    `users` and `skus` are index frames (`index_frame`) with columns (user id, user_idx) and
    (sku_id, sku_idx). `returned_qty` ≤ qty and `fault_returned_qty` ≤ returned_qty count
    returns filed before the cutoff.
    """
    col = user_column(target)
    purchases = tables[Tables.PURCHASES].where(F.col(C.TS) < F.lit(cutoff_ns))
    lines = purchases.select(col, C.SKU_ID, C.PURCHASE_ID, C.TS, C.QTY, C.UNIT_PRICE)
    rets = returned_before(tables[Tables.RETURNS], cutoff_ns)
    lines = lines.join(rets, on=C.PURCHASE_ID, how="left")
    returned = F.least(F.coalesce(F.col("_returned"), F.lit(0)), F.col(C.QTY))
    lines = lines.withColumn(RETURNED_QTY, returned.cast("long"))
    fault = F.least(F.coalesce(F.col("_fault"), F.lit(0)), F.col(RETURNED_QTY))
    lines = lines.withColumn(FAULT_RETURNED_QTY, fault.cast("long"))
    lines = lines.join(users, on=col, how="inner").join(F.broadcast(skus), on=C.SKU_ID, how="inner")
    return lines.select(
        col,
        C.SKU_ID,
        C.TS,
        C.QTY,
        C.UNIT_PRICE,
        RETURNED_QTY,
        FAULT_RETURNED_QTY,
        USER_IDX,
        SKU_IDX,
    )


def share_lines(
    tables: Mapping[str, DataFrame], users: DataFrame, skus: DataFrame, cutoff_ns: int
) -> DataFrame:
    """Shares before the cutoff by known agents of known SKUs: (user_idx, sku_idx, ts)."""
    shares = tables[Tables.SHARES].where(F.col(C.TS) < F.lit(cutoff_ns))
    shares = shares.select(C.AGENT_ID, C.SKU_ID, C.TS)
    shares = shares.join(users, on=C.AGENT_ID, how="inner")
    shares = shares.join(F.broadcast(skus), on=C.SKU_ID, how="inner")
    return shares.select(USER_IDX, SKU_IDX, C.TS)


def pair_weights(
    events: DataFrame, shares: DataFrame | None, rules: WeightRules, cutoff_ns: int
) -> DataFrame:
    """(user_idx, sku_idx, weight): events (and shares) summed per pair, finished, zeros dropped.

    Weights are float64 (a purchase and its return cancel exactly); the caller casts to float32.
    """
    columns = {name: F.col(name).cast("double") for name in rules.line_columns}
    age = age_days(F.col(C.TS), cutoff_ns)
    weighted = events.select(
        USER_IDX, SKU_IDX, line_weight(columns, age, rules, SPARK_OPS).alias(WEIGHT)
    )
    if shares is not None and rules.share_value > 0:
        value = share_weight(age, rules, SPARK_OPS)
        value = value if isinstance(value, Column) else F.lit(float(value))  # no decay: a constant
        weighted = weighted.unionByName(shares.select(USER_IDX, SKU_IDX, value.alias(WEIGHT)))
    summed = weighted.groupBy(USER_IDX, SKU_IDX).agg(F.sum(WEIGHT).alias(WEIGHT))
    finished = summed.select(
        USER_IDX, SKU_IDX, finish_pair(F.col(WEIGHT), rules, SPARK_OPS).alias(WEIGHT)
    )
    return finished.where(F.col(WEIGHT) != 0.0)
