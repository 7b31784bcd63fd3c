"""Agent and customer side features, one row per user of the id map, from the log before a cutoff.

Both targets get `region=`, the price bands and categories of what they bought (`price_band=`
and `category=` as shares of units, `price_level` as the mean catalogue price percentile of a
unit) and `has_purchases`. Agents add `tier=` and `tier_level`, `audience_size` (bound
customers, log-scaled) and `audience_return_rate`; customers add `return_rate`. Rates are smoothed
towards the global rate (docs/features.md). An agent's purchases are her customers' purchases
attributed to her.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.encoding import (
    FeatureConfig,
    log_scaled,
    mix,
    one_hot,
    smoothed_rate,
)
from features.interactions import USER_TABLE, build_events
from features.item_features import region_vocab, sku_attributes, sku_categories
from features.logs import require_tables, utc_series
from recsys.columns import TIERS, Columns, Tables
from recsys.data.dataset import RETURNED_QTY, SKU_IDX, USER_IDX, user_column
from recsys.data.id_map import IdMap

C = Columns


def aligned_users(tables: Mapping[str, pd.DataFrame], target: str, users: IdMap) -> pd.DataFrame:
    """The agents (or customers) table in id-map order (index = the user id).

    Raises
    ------
    ValueError
        If the table repeats a user id.
    KeyError
        If the id map names users that the table lacks.
    """
    col = user_column(target)
    table = tables[USER_TABLE[target]].set_index(col, drop=False)
    if not table.index.is_unique:
        dupes = table.index[table.index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"table {USER_TABLE[target]!r} has duplicate {col} values, e.g. {dupes}")
    missing = ~pd.Index(users.external_ids).isin(table.index)
    if missing.any():
        raise KeyError(
            f"users id map has {int(missing.sum())} ids not in table {USER_TABLE[target]!r}"
        )
    return table.loc[users.external_ids].set_axis(pd.Index(users.external_ids, name=col))


def purchase_profile(
    events: pd.DataFrame,
    n_users: int,
    attrs: pd.DataFrame,
    n_bands: int,
    categories: list[str],
    index: pd.Index,
) -> pd.DataFrame:
    """Price-band and category mixes, mean price level and `has_purchases` of each user."""
    u = events[USER_IDX].to_numpy(dtype=np.int64)
    s = events[SKU_IDX].to_numpy(dtype=np.int64)
    qty = events[C.QTY].to_numpy(dtype=np.float64)
    band = attrs["price_band"].to_numpy()[s]
    code = attrs["category_code"].to_numpy()[s]
    units = np.bincount(u, weights=qty, minlength=n_users)
    level_sum = np.bincount(u, weights=qty * attrs["price_level"].to_numpy()[s], minlength=n_users)
    bands = mix(u, n_users, band, n_bands, qty)
    cats = mix(u, n_users, code, len(categories), qty)
    out = pd.DataFrame(
        np.hstack([bands, cats]),
        columns=[f"price_band={b}" for b in range(n_bands)] + [f"category={c}" for c in categories],
        index=index,
    )
    out["price_level"] = np.divide(
        level_sum, units, out=np.zeros(n_users, dtype=np.float64), where=units > 0
    )
    out["has_purchases"] = (units > 0).astype(np.float64)
    return out


def return_rate(events: pd.DataFrame, n_users: int, strength: float) -> np.ndarray:
    """Share of each user's bought units returned, smoothed towards the global share."""
    u = events[USER_IDX].to_numpy(dtype=np.int64)
    bought = np.bincount(u, weights=events[C.QTY].to_numpy(np.float64), minlength=n_users)
    returned = np.bincount(u, weights=events[RETURNED_QTY].to_numpy(np.float64), minlength=n_users)
    total = bought.sum()
    prior = returned.sum() / total if total > 0 else 0.0
    return smoothed_rate(returned, bought, prior, strength)


def audience_size(
    tables: Mapping[str, pd.DataFrame], users: IdMap, cutoff: pd.Timestamp
) -> np.ndarray:
    """Number of customers bound to each agent who had joined before the cutoff."""
    customers = tables[Tables.CUSTOMERS]
    joined = (utc_series(customers[C.JOINED_AT]) < cutoff).to_numpy()
    idx = users.to_index(customers.loc[joined, C.AGENT_ID].to_numpy(dtype=object), "ignore")
    return np.bincount(idx[idx >= 0], minlength=len(users)).astype(np.float64)


def build_user_features(
    tables: Mapping[str, pd.DataFrame],
    target: str,
    users: IdMap,
    skus: IdMap,
    cutoff: pd.Timestamp,
    config: FeatureConfig | None = None,
    *,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Numeric agent (or customer) features aligned to `users` (index = user id, float32, no NaN).

    Only events before `cutoff` are used; `events` may pass the `Dataset.events` frame already
    built for the same target, cutoff and id maps.
    """
    col = user_column(target)
    require_tables(tables, [Tables.SKUS, USER_TABLE[target], Tables.PURCHASES, Tables.RETURNS])
    cfg = config or FeatureConfig()
    if events is None:
        events = build_events(tables, target, cutoff, users=users, skus=skus)
    table = aligned_users(tables, target, users)
    index = table.index
    n_users = len(users)
    categories = sku_categories(tables)
    attrs = sku_attributes(tables, skus, cfg.n_price_bands)

    parts = [one_hot(table[C.REGION], region_vocab(tables), "region")]
    if target == "agent":
        tier = table[C.TIER].astype("Int64")
        parts.append(one_hot(tier.astype(str).where(tier.notna()), [str(t) for t in TIERS], "tier"))
        lo, hi = min(TIERS), max(TIERS)
        level = ((tier.astype("Float64") - lo) / (hi - lo)).fillna(0.0)
        parts.append(pd.DataFrame({"tier_level": level.to_numpy(dtype=np.float64)}, index=index))
    parts.append(purchase_profile(events, n_users, attrs, cfg.n_price_bands, categories, index))
    rate = return_rate(events, n_users, cfg.return_prior_units)
    if target == "agent":
        size = log_scaled(audience_size(tables, users, cutoff))
        extra = {"audience_size": size, "audience_return_rate": rate}
    else:
        extra = {"return_rate": rate}
    parts.append(pd.DataFrame(extra, index=index))
    out = pd.concat(parts, axis=1).astype(np.float32)
    out.index.name = col
    return out
