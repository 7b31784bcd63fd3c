"""Agent profiles and SKU return figures published beside the picks, for people who check them.

A merchandiser looking at an agent's feed (the picks explorer, `serving/explorer/`) needs to know
who she is: region, tier, how many customers she has, the price range they buy in and their
favourite categories, and for each SKU how often it comes back. These records are built from the
contract tables at publish time and stored in the snapshot (docs/cache-contract.md, section 11):

- `CacheKeys.profiles(snap, b)` (`<picks bucket key>:profiles`): hash, agent id → JSON profile
  (same bucket as her picks);
- `CacheKeys.sku_stats(snap)` (`<skus key>:stats`): hash, SKU id → JSON `{"units", "returned",
  "return_rate"}`.

The service never needs them to answer; a snapshot without them is still complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd

from features.logs import returned_units
from recsys.columns import Columns, Tables

C = Columns
PROFILE_FIELDS: tuple[str, ...] = (
    "region",
    "tier",
    "audience_size",
    "buyers",
    "units",
    "return_rate",
    "price_band",
    "top_categories",
)
PRICE_QUANTILES: dict[str, float] = {"low": 0.25, "median": 0.5, "high": 0.75}
RETURNED = "returned"
_SHARE = "share"


def purchase_lines(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Purchase lines with the units returned (capped at the units bought) and the category."""
    purchases = tables[Tables.PURCHASES]
    cols = [C.PURCHASE_ID, C.CUSTOMER_ID, C.AGENT_ID, C.SKU_ID, C.QTY, C.UNIT_PRICE]
    lines = purchases[cols].copy()
    qty = lines[C.QTY].to_numpy(dtype=np.int64)
    lines[RETURNED], _ = returned_units(lines[C.PURCHASE_ID], qty, tables[Tables.RETURNS])
    category = tables[Tables.SKUS].set_index(C.SKU_ID)[C.CATEGORY]
    lines[C.CATEGORY] = lines[C.SKU_ID].map(category)
    return lines


def _weighted_quantiles(lines: pd.DataFrame) -> pd.DataFrame:
    """Per agent, the unit price below which 25% / 50% / 75% of her units sold."""
    order = lines.sort_values([C.AGENT_ID, C.UNIT_PRICE], kind="stable")
    groups = order.groupby(C.AGENT_ID, sort=False)[C.QTY]
    frac = groups.cumsum() / groups.transform("sum")
    out = {}
    for name, q in PRICE_QUANTILES.items():
        # a tiny tolerance: a cumulative share of 0.2499999 must count as the quartile
        reached = order[frac.to_numpy() >= q - 1e-9]
        out[name] = reached.groupby(C.AGENT_ID, sort=False)[C.UNIT_PRICE].first()
    return pd.DataFrame(out)


def _top_categories(lines: pd.DataFrame, n: int) -> pd.Series:
    """Per agent, her `n` biggest categories by units: [{"category", "share" of units}, ...]."""
    units = lines.groupby([C.AGENT_ID, C.CATEGORY])[C.QTY].sum().reset_index()
    units[_SHARE] = units[C.QTY] / units.groupby(C.AGENT_ID)[C.QTY].transform("sum")
    units = units.sort_values(
        [C.AGENT_ID, _SHARE, C.CATEGORY], ascending=[True, False, True], kind="stable"
    )
    top = units.groupby(C.AGENT_ID, sort=False).head(n)
    pairs = [
        {"category": c, "share": round(float(s), 4)}
        for c, s in zip(top[C.CATEGORY], top[_SHARE], strict=True)
    ]
    return pd.Series(pairs, index=top[C.AGENT_ID].to_numpy()).groupby(level=0).agg(list)


def check_n_categories(n_categories: int) -> None:
    """Raise ValueError unless `n_categories` >= 1."""
    if n_categories < 1:
        raise ValueError(f"n_categories must be >= 1, got {n_categories}")


def profile_frame(
    agents: pd.DataFrame,
    audience: pd.Series,
    per_agent: pd.DataFrame,
    prices: pd.DataFrame,
    categories: pd.Series,
) -> pd.DataFrame:
    """Profile rows in `agents`' order from figures indexed by agent id (missing = none).

    `agents` has `region` and `tier`; `audience` counts her bound customers; `per_agent` holds
    `buyers`, `units` and `returned` of the lines through her; `prices` the columns of
    `PRICE_QUANTILES`; `categories` her top categories (a list each).
    """
    index = agents.index
    sums = per_agent.reindex(index, fill_value=0)
    units = sums["units"].astype(np.int64)
    out = pd.DataFrame(
        {
            "region": agents[C.REGION].astype(object),
            "tier": agents[C.TIER].astype(np.int64),
            "audience_size": audience.reindex(index, fill_value=0).astype(np.int64),
            "buyers": sums["buyers"].astype(np.int64),
            "units": units,
            "return_rate": (sums[RETURNED] / units.where(units > 0)).round(4),
        },
        index=index,
    )
    bands = prices.reindex(index)[list(PRICE_QUANTILES)].to_numpy(dtype=np.float64)
    out["price_band"] = [
        None if np.isnan(lo) else {"low": float(lo), "median": float(mid), "high": float(hi)}
        for lo, mid, hi in bands
    ]
    cats = categories.reindex(index)
    out["top_categories"] = [c if isinstance(c, list) else [] for c in cats]
    return out[list(PROFILE_FIELDS)]


def build_agent_profiles(tables: dict[str, pd.DataFrame], n_categories: int = 3) -> pd.DataFrame:
    """One profile row per agent (index = agent id), with the columns of `PROFILE_FIELDS`.

    `audience_size` counts the customers bound to her; `buyers`, `units` and `return_rate`
    (units returned / units bought) cover the purchases made through her; `price_band` holds the
    unit prices below which a quarter, half and three quarters of her units sold; and
    `top_categories` her `n_categories` biggest categories with their share of her units. An
    agent with no purchases has no price band, no categories and no return rate.

    Raises
    ------
    ValueError
        If `n_categories` < 1.
    """
    check_n_categories(n_categories)
    agents = tables[Tables.AGENTS].set_index(C.AGENT_ID)
    lines = purchase_lines(tables)
    by_agent = lines.groupby(C.AGENT_ID)
    per_agent = pd.DataFrame(
        {
            "buyers": by_agent[C.CUSTOMER_ID].nunique(),
            "units": by_agent[C.QTY].sum(),
            RETURNED: by_agent[RETURNED].sum(),
        }
    )
    return profile_frame(
        agents,
        tables[Tables.CUSTOMERS].groupby(C.AGENT_ID).size(),
        per_agent,
        _weighted_quantiles(lines),
        _top_categories(lines, n_categories),
    )


def build_sku_stats(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Units bought and returned, and the return rate, of every SKU sold at least once."""
    lines = purchase_lines(tables)
    stats = lines.groupby(C.SKU_ID)[[C.QTY, RETURNED]].sum()
    return pd.DataFrame(
        {
            "units": stats[C.QTY].astype(np.int64),
            "returned": stats[RETURNED].astype(np.int64),
            "return_rate": (stats[RETURNED] / stats[C.QTY]).round(4),
        }
    )


def _clean(value: Any) -> Any:
    """A JSON-ready value: numpy scalars to Python, NaN to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def encode_records(
    frame: pd.DataFrame, chunk: int = 10_000
) -> Iterator[tuple[list[bytes], list[bytes]]]:
    """(ids, JSON values) of a frame's rows (index = id), `chunk` rows at a time."""
    columns = list(frame.columns)
    ids = frame.index.to_numpy(dtype=object)
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start : start + chunk]
        rows = zip(*(part[c].tolist() for c in columns), strict=True)
        values = [orjson.dumps(dict(zip(columns, map(_clean, r), strict=True))) for r in rows]
        yield [str(i).encode() for i in ids[start : start + chunk]], values
