"""What a Spark publish needs besides the model, from the Spark tables (training/publish_inputs.py).

The small parts come to the driver: the SKU table and the fallback lists (ranked on the
executors, top k per list collected). The per-user parts stay distributed: one row per agent (or
customer) with her region and purchase history, to be joined with her factors and scored where
she lives. tests/spark/test_publish.py checks them against the local builders.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recsys.cache.keys import check_target, fallback_field
from recsys.columns import Columns, Tables
from recsys.data.dataset import user_column
from training.publish_inputs import N_BUYERS, build_sku_table
from training.publish_profiles import (
    PRICE_QUANTILES,
    RETURNED,
    check_n_categories,
    profile_frame,
)
from training.spark.io import collect_table

C = Columns
AUDIENCE = "audience"
CATEGORIES = "categories"
NS_PER_DAY = 86_400 * 10**9
SKU_ROW = "sku_row"
HIST_SKUS = "hist_skus"
HIST_COUNTS = "hist_counts"
_KEPT = "kept"
_GROUP = "_group"


def sku_table(tables: Mapping[str, DataFrame]) -> pd.DataFrame:
    """The publish SKU table (`build_sku_table`), collected: every catalogue SKU, sorted by id."""
    return build_sku_table({Tables.SKUS: collect_table(tables[Tables.SKUS], Tables.SKUS)})


def sku_rows(spark: SparkSession, skus: pd.DataFrame) -> DataFrame:
    """(sku_id, sku_row): each SKU's row in the publish SKU table."""
    pdf = pd.DataFrame(
        {C.SKU_ID: skus[C.SKU_ID].astype(str), SKU_ROW: np.arange(len(skus), dtype=np.int32)}
    )
    return spark.createDataFrame(pdf)


def _kept_lines(tables: Mapping[str, DataFrame], target: str) -> DataFrame:
    """Purchase lines with units kept and the region and tier of the user they count for."""
    lines = _with_returned(tables).select(
        C.TS,
        C.CUSTOMER_ID,
        C.AGENT_ID,
        C.SKU_ID,
        C.QTY,
        (F.col(C.QTY) - F.col(RETURNED)).alias(_KEPT),
    )
    agents = tables[Tables.AGENTS].select(C.AGENT_ID, C.REGION, C.TIER)
    if target == "agent":
        return lines.join(agents, C.AGENT_ID, "left")
    customers = tables[Tables.CUSTOMERS].select(
        C.CUSTOMER_ID, C.REGION, F.col(C.AGENT_ID).alias("_own_agent")
    )
    tiers = agents.select(F.col(C.AGENT_ID).alias("_own_agent"), C.TIER)
    return lines.join(customers, C.CUSTOMER_ID, "left").join(tiers, "_own_agent", "left")


def _ranked(lines: DataFrame, group: str | None, k: int) -> DataFrame:
    """Top k SKUs per group by distinct buyers, then kept units, then SKU id (rank column)."""
    keys = [group, C.SKU_ID] if group else [C.SKU_ID]
    stats = lines.groupBy(*keys).agg(
        F.countDistinct(C.CUSTOMER_ID).alias(N_BUYERS), F.sum(_KEPT).alias(_KEPT)
    )
    order = [F.col(N_BUYERS).desc(), F.col(_KEPT).desc(), F.col(C.SKU_ID).asc()]
    window = Window.partitionBy(group).orderBy(*order) if group else Window.orderBy(*order)
    ranked = stats.withColumn("_rank", F.row_number().over(window))
    return ranked.where(F.col("_rank") <= k)


def _frame(rows: pd.DataFrame) -> pd.DataFrame:
    """A fallback list frame (sku_id, score, n_buyers) in rank order."""
    rows = rows.sort_values("_rank", kind="stable")
    return pd.DataFrame(
        {
            C.SKU_ID: rows[C.SKU_ID].to_numpy(dtype=object),
            C.SCORE: rows[N_BUYERS].to_numpy(dtype=np.float32),
            N_BUYERS: rows[N_BUYERS].to_numpy(dtype=np.int64),
        }
    )


def fallbacks(
    tables: Mapping[str, DataFrame],
    target: str,
    *,
    k: int = 100,
    window_days: int = 28,
    now: pd.Timestamp | None = None,
) -> dict[str, pd.DataFrame]:
    """`training.publish_inputs.build_fallbacks`, ranked on the executors (top k collected)."""
    check_target(target)
    if k < 1 or window_days < 1:
        raise ValueError(f"k and window_days must be >= 1, got k={k}, window_days={window_days}")
    skus = tables[Tables.SKUS]
    active = skus.where(F.col(C.STATUS) == "active").select(C.SKU_ID, C.REGIONS)
    lines = _kept_lines(tables, target).join(F.broadcast(active), C.SKU_ID, "inner")
    lines = lines.where(F.col(_KEPT) > 0).persist()
    try:
        if now is not None:
            end_ns = int(now.value)
        else:
            row = lines.agg(F.max(C.TS).alias("hi")).first()
            hi = None if row is None else row["hi"]
            end_ns = int(hi) if hi is not None else int(pd.Timestamp.now("UTC").value)
        ts = F.col(C.TS)
        window = lines.where((ts > F.lit(end_ns - window_days * NS_PER_DAY)) & (ts <= end_ns))

        out: dict[str, pd.DataFrame] = {}
        glob = _frame(_ranked(window, None, k).toPandas())
        if len(glob) < k:
            # pad from all-time buyers: at most k SKUs are taken already, so 2k candidates do
            extra = _frame(_ranked(lines, None, 2 * k).toPandas())
            extra = extra[~extra[C.SKU_ID].isin(set(glob[C.SKU_ID]))].head(k - len(glob))
            extra[N_BUYERS] = 0
            extra[C.SCORE] = np.float32(0.0)
            glob = pd.concat([glob, extra], ignore_index=True)
        out[fallback_field("global")] = glob

        sold_here = (F.size(C.REGIONS) == 0) | F.array_contains(C.REGIONS, F.col(C.REGION))
        by_region = window.where(F.col(C.REGION).isNotNull() & sold_here)
        regions = _ranked(by_region.withColumn(_GROUP, F.col(C.REGION)), _GROUP, k).toPandas()
        for region, rows in sorted(regions.groupby(_GROUP, sort=False), key=lambda kv: kv[0]):
            out[fallback_field("region", region)] = _frame(rows)
        by_tier = window.where(F.col(C.TIER).isNotNull()).withColumn(_GROUP, F.col(C.TIER))
        tiers = _ranked(by_tier, _GROUP, k).toPandas()
        for tier, rows in sorted(tiers.groupby(_GROUP, sort=False), key=lambda kv: kv[0]):
            out[fallback_field("tier", int(tier))] = _frame(rows)
    finally:
        lines.unpersist()
    return {key: frame for key, frame in out.items() if len(frame)}


def user_rows(
    tables: Mapping[str, DataFrame],
    target: str,
    skus: DataFrame,
    factors: DataFrame,
) -> DataFrame:
    """One row per agent (customer) of the tables: id, region, history, factors, warm flag.

    History (as in `build_history`): distinct customers per (agent, SKU), or orders per
    (customer, SKU), over the whole log, as parallel arrays of SKU-table rows and counts.
    `factors` is the model's (user_id, factors, warm) frame; users it lacks get nulls.
    """
    col = user_column(check_target(target))
    table = tables[Tables.AGENTS if target == "agent" else Tables.CUSTOMERS]
    counted = C.CUSTOMER_ID if target == "agent" else C.ORDER_ID
    pairs = (
        tables[Tables.PURCHASES].groupBy(col, C.SKU_ID).agg(F.countDistinct(counted).alias("_n"))
    )
    pairs = pairs.join(F.broadcast(skus), C.SKU_ID, "inner")
    history = pairs.groupBy(col).agg(
        F.collect_list(F.struct(F.col(SKU_ROW), F.col("_n"))).alias("_hist")
    )
    users = table.select(F.col(col).alias("user_id"), C.REGION)
    users = users.join(history.withColumnRenamed(col, "user_id"), "user_id", "left")
    users = users.join(factors, "user_id", "left")
    return users.select(
        "user_id",
        C.REGION,
        F.coalesce(F.col("_hist." + SKU_ROW), F.array().cast("array<int>")).alias(HIST_SKUS),
        F.coalesce(F.col("_hist._n"), F.array().cast("array<bigint>")).alias(HIST_COUNTS),
        "factors",
        F.coalesce(F.col("warm"), F.lit(False)).alias("warm"),
    )


def _with_returned(tables: Mapping[str, DataFrame]) -> DataFrame:
    """Purchase lines with `returned`: units returned, capped at those bought (as locally)."""
    returned = tables[Tables.RETURNS].groupBy(C.PURCHASE_ID).agg(F.sum(C.QTY).alias("_ret"))
    lines = tables[Tables.PURCHASES].join(returned, C.PURCHASE_ID, "left")
    back = F.least(F.coalesce(F.col("_ret"), F.lit(0)), F.col(C.QTY))
    return lines.withColumn(RETURNED, back.cast("long")).drop("_ret")


def returned_lines(tables: Mapping[str, DataFrame]) -> DataFrame:
    """`training.publish_profiles.purchase_lines` on the executors: lines, returned, category."""
    lines = _with_returned(tables).select(
        C.CUSTOMER_ID, C.AGENT_ID, C.SKU_ID, C.QTY, C.UNIT_PRICE, RETURNED
    )
    categories = tables[Tables.SKUS].select(C.SKU_ID, C.CATEGORY)
    return lines.join(F.broadcast(categories), C.SKU_ID, "left")


def _price_bands(lines: DataFrame) -> DataFrame:
    """Per agent, the unit prices below which 25% / 50% / 75% of her units sold."""
    priced = lines.groupBy(C.AGENT_ID, C.UNIT_PRICE).agg(F.sum(C.QTY).alias("_q"))
    # ordered by price, the default frame takes every row of an equal price at once: the share
    # reached at a price is the same as after its last line in the local, line-by-line sum
    below = F.sum("_q").over(Window.partitionBy(C.AGENT_ID).orderBy(C.UNIT_PRICE))
    share = below / F.sum("_q").over(Window.partitionBy(C.AGENT_ID))
    priced = priced.withColumn("_share", share)
    return priced.groupBy(C.AGENT_ID).agg(
        *[
            F.min(F.when(F.col("_share") >= q - 1e-9, F.col(C.UNIT_PRICE))).alias(name)
            for name, q in PRICE_QUANTILES.items()
        ]
    )


def _top_categories(lines: DataFrame, n: int) -> DataFrame:
    """Per agent, her `n` biggest categories by units with their share, in rank order."""
    units = lines.groupBy(C.AGENT_ID, C.CATEGORY).agg(F.sum(C.QTY).alias("_u"))
    units = units.withColumn(
        "share", F.col("_u") / F.sum("_u").over(Window.partitionBy(C.AGENT_ID))
    )
    order = Window.partitionBy(C.AGENT_ID).orderBy(F.col("share").desc(), F.col(C.CATEGORY))
    top = units.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= n)
    # structs sort by their first field: the rank
    ranked = F.array_sort(F.collect_list(F.struct("rank", C.CATEGORY, "share")))
    return top.groupBy(C.AGENT_ID).agg(ranked.alias(CATEGORIES))


def agent_profile_rows(
    tables: Mapping[str, DataFrame], n_categories: int = 3, lines: DataFrame | None = None
) -> DataFrame:
    """One row per agent with what her profile is built from, left distributed.

    Columns: agent id, region, tier, `audience` (bound customers), `buyers`, `units` and
    `returned` of the lines through her (null when none), the `PRICE_QUANTILES` prices and
    `categories`, her top `n_categories` as an array of (rank, category, share) in rank order.
    `profiles_from_rows` turns any chunk of them into profile rows. `lines` may pass
    `returned_lines(tables)` already persisted (the aggregates read it three times).

    Raises
    ------
    ValueError
        If `n_categories` < 1.
    """
    check_n_categories(n_categories)
    lines = lines if lines is not None else returned_lines(tables)
    per_agent = lines.groupBy(C.AGENT_ID).agg(
        F.countDistinct(C.CUSTOMER_ID).alias("buyers"),
        F.sum(C.QTY).alias("units"),
        F.sum(RETURNED).alias(RETURNED),
    )
    audience = tables[Tables.CUSTOMERS].groupBy(C.AGENT_ID).agg(F.count(F.lit(1)).alias(AUDIENCE))
    agents = tables[Tables.AGENTS].select(C.AGENT_ID, C.REGION, C.TIER)
    return (
        agents.join(audience, C.AGENT_ID, "left")
        .join(per_agent, C.AGENT_ID, "left")
        .join(_price_bands(lines), C.AGENT_ID, "left")
        .join(_top_categories(lines, n_categories), C.AGENT_ID, "left")
    )


def profiles_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The profile rows (`profile_frame`, index = agent id) of a pandas chunk of
    `agent_profile_rows`, in the chunk's order."""
    ids = pd.Index(rows[C.AGENT_ID].astype(str).to_numpy(dtype=object), name=C.AGENT_ID)
    agents = pd.DataFrame(
        {C.REGION: rows[C.REGION].to_numpy(), C.TIER: rows[C.TIER].to_numpy()}, index=ids
    )
    audience = pd.Series(rows[AUDIENCE].fillna(0).to_numpy(), index=ids)
    sold = rows["units"].notna().to_numpy()  # agents without lines count as none sold
    per_agent = pd.DataFrame(
        {name: rows[name].to_numpy() for name in ("buyers", "units", RETURNED)}, index=ids
    )[sold]
    prices = pd.DataFrame(
        {name: rows[name].to_numpy(dtype=np.float64) for name in PRICE_QUANTILES}, index=ids
    )
    categories = pd.Series(
        [
            [{"category": c[C.CATEGORY], "share": round(float(c["share"]), 4)} for c in ranked]
            if ranked is not None
            else []
            for ranked in rows[CATEGORIES]
        ],
        index=ids,
        dtype=object,
    )
    return profile_frame(agents, audience, per_agent, prices, categories)


def agent_profiles(tables: Mapping[str, DataFrame], n_categories: int = 3) -> pd.DataFrame:
    """`training.publish_profiles.build_agent_profiles` from `agent_profile_rows`, collected
    (a publish writes them from the executors instead).

    Raises
    ------
    ValueError
        If `n_categories` < 1.
    """
    check_n_categories(n_categories)
    lines = returned_lines(tables).persist()
    try:
        return profiles_from_rows(agent_profile_rows(tables, n_categories, lines).toPandas())
    finally:
        lines.unpersist()


def sku_stats(tables: Mapping[str, DataFrame], lines: DataFrame | None = None) -> pd.DataFrame:
    """`training.publish_profiles.build_sku_stats`, aggregated on the executors (collected)."""
    lines = lines if lines is not None else returned_lines(tables)
    stats = lines.groupBy(C.SKU_ID).agg(
        F.sum(C.QTY).alias("units"), F.sum(RETURNED).alias("returned")
    )
    frame = stats.toPandas().set_index(C.SKU_ID).sort_index()
    return pd.DataFrame(
        {
            "units": frame["units"].astype(np.int64),
            "returned": frame["returned"].astype(np.int64),
            "return_rate": (frame["returned"] / frame["units"]).round(4),
        }
    )
