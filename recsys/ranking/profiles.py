"""Profiles of SKUs and agents, and recent popularity, as of a cutoff (read by the ranker).

Arrays are in the agent dataset's id-map order; only events with `ts < cutoff` count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.columns import Columns, Tables
from recsys.data.dataset import RETURNED_QTY, SKU_IDX, USER_IDX, Dataset
from recsys.ranking.lookup import PairLookup

C = Columns
PRICE_BAND = (0.1, 0.9)  # quantiles of the relative prices of her lines: her price band


@dataclass
class SkuInfo:
    """Per-SKU arrays in catalogue (id-map) order."""

    category: np.ndarray  # int codes into `categories`
    categories: np.ndarray
    series: np.ndarray  # int codes, -1 = none
    price: np.ndarray
    rel_price: np.ndarray  # log(price / median price of its category)
    launched_ns: np.ndarray
    region_mask: np.ndarray  # n_regions × n_skus bool: sold there (empty list = everywhere)
    available: np.ndarray  # active in the catalogue
    return_rate: np.ndarray  # smoothed towards the category (features/item_features.py)
    fault_rate: np.ndarray
    category_return_rate: np.ndarray  # per SKU: its category's pooled rate
    log_units: np.ndarray  # log1p(units sold before the cutoff)
    mean_qty: np.ndarray  # units per line (1 when never sold)
    n_lines: np.ndarray  # purchase lines before the cutoff
    returned_lines: np.ndarray  # of them, lines with a unit returned before the cutoff
    category_line_rate: np.ndarray  # per SKU: share of its category's lines returned


@dataclass
class AgentInfo:
    """Per-agent arrays in agent id-map order."""

    region: np.ndarray  # int codes into `regions`, -1 = unknown
    regions: np.ndarray
    tier: np.ndarray
    price_mean: np.ndarray  # mean rel_price of units sold through her
    price_sd: np.ndarray
    price_low: np.ndarray  # 10th percentile of the rel_price of her lines (NaN: no lines)
    price_high: np.ndarray  # 90th percentile
    n_lines: np.ndarray
    log_units: np.ndarray
    category_mix: np.ndarray  # n_agents × n_categories, shares of units
    return_rate: np.ndarray  # smoothed share of her units returned
    log_shares: np.ndarray
    n_shares: np.ndarray
    series_share: PairLookup  # agents × series: share of her units in each series
    pair_units: PairLookup  # agents × SKUs: units sold through her
    pair_returned: PairLookup  # agents × SKUs: of them, units returned


@dataclass
class Popularity:
    """Agents who sold each SKU over recent windows, overall, per region and per tier."""

    recent: np.ndarray  # n_skus: agents who sold it in the last `days`
    region: np.ndarray  # n_regions × n_skus
    region_week: np.ndarray  # n_regions × n_skus: units sold in the last 7 days
    region_prev_week: np.ndarray  # units sold in the 7 days before those
    tier: np.ndarray  # n_tiers × n_skus (tier t at row t - 1)


def sku_info(tables: Mapping[str, pd.DataFrame], ds: Dataset) -> SkuInfo:
    """Catalogue attributes and sales history of every SKU, in id-map order."""
    table = _aligned(tables[Tables.SKUS], C.SKU_ID, ds.skus.external_ids)
    categories, category = np.unique(table[C.CATEGORY].astype(str), return_inverse=True)
    series_codes, _ = pd.factorize(table[C.SERIES], use_na_sentinel=True)
    price = table[C.PRICE].to_numpy(dtype=np.float64)
    log_price = np.log(np.maximum(price, 1e-6))
    median = pd.Series(log_price).groupby(category).median().to_numpy()
    regions = _region_names(tables)
    mask = np.zeros((len(regions), len(table)), dtype=bool)
    for j, listed in enumerate(table[C.REGIONS]):
        names = [] if listed is None else list(listed)
        if names:
            mask[np.searchsorted(regions, [r for r in names if r in set(regions)]), j] = True
        else:
            mask[:, j] = True
    ev = ds.events
    s = ev[SKU_IDX].to_numpy(dtype=np.int64)
    qty = ev[C.QTY].to_numpy(dtype=np.float64)
    units = np.bincount(s, weights=qty, minlength=ds.n_skus)
    lines = np.bincount(s, minlength=ds.n_skus).astype(np.float64)
    returned = np.bincount(s, weights=ev[RETURNED_QTY].to_numpy(np.float64), minlength=ds.n_skus)
    ret_lines = np.bincount(
        s, weights=(ev[RETURNED_QTY] > 0).to_numpy(np.float64), minlength=ds.n_skus
    )
    cat_lines = np.bincount(category, weights=lines, minlength=len(categories))
    cat_ret_lines = np.bincount(category, weights=ret_lines, minlength=len(categories))
    cat_line_rate = np.divide(
        cat_ret_lines, cat_lines, out=np.zeros_like(cat_ret_lines), where=cat_lines > 0
    )
    cat_units = np.bincount(category, weights=units, minlength=len(categories))
    cat_ret = np.bincount(category, weights=returned, minlength=len(categories))
    cat_rate = np.divide(cat_ret, cat_units, out=np.zeros_like(cat_ret), where=cat_units > 0)
    feats = ds.sku_features
    rate = feats["return_rate"].to_numpy(np.float64) if feats is not None else cat_rate[category]
    fault = feats["fault_return_rate"].to_numpy(np.float64) if feats is not None else rate * 0.5
    launched = pd.to_datetime(table[C.LAUNCHED_AT], utc=True)
    return SkuInfo(
        category=category.astype(np.int64),
        categories=categories.astype(object),
        series=series_codes.astype(np.int64),
        price=price,
        rel_price=log_price - median[category],
        launched_ns=launched.to_numpy(dtype="datetime64[ns]").view(np.int64),
        region_mask=mask,
        available=np.asarray(ds.sku_available, dtype=bool),
        return_rate=rate,
        fault_rate=fault,
        category_return_rate=cat_rate[category],
        log_units=np.log1p(units),
        mean_qty=np.divide(units, lines, out=np.ones_like(units), where=lines > 0),
        n_lines=lines.astype(np.float64),
        returned_lines=ret_lines,
        category_line_rate=cat_line_rate[category],
    )


def _aligned(frame: pd.DataFrame, key: str, ids: np.ndarray) -> pd.DataFrame:
    """Rows of `frame` in the order of `ids` (KeyError naming ids the table lacks)."""
    indexed = frame.drop_duplicates(key).set_index(key, drop=False)
    missing = ~pd.Index(ids).isin(indexed.index)
    if missing.any():
        raise KeyError(
            f"{int(missing.sum())} ids are not in the {key} table, e.g. {ids[missing][:3]}"
        )
    return indexed.loc[ids].reset_index(drop=True)


def _region_names(tables: Mapping[str, pd.DataFrame]) -> np.ndarray:
    found: set[str] = set()
    for name in (Tables.AGENTS, Tables.CUSTOMERS):
        if name in tables:
            found.update(tables[name][C.REGION].dropna().astype(str))
    for listed in tables[Tables.SKUS][C.REGIONS]:
        if listed is not None:
            found.update(str(r) for r in listed)
    return np.array(sorted(found), dtype=object)


def agent_info(tables: Mapping[str, pd.DataFrame], ds: Dataset, sku: SkuInfo) -> AgentInfo:
    """Region, tier, price band, category mix, return rate and sharing of every agent."""
    n = ds.n_users
    table = _aligned(tables[Tables.AGENTS], C.AGENT_ID, ds.users.external_ids)
    regions = _region_names(tables)
    region = pd.Index(regions).get_indexer(table[C.REGION].astype(str).to_numpy(dtype=object))
    ev = ds.events
    u = ev[USER_IDX].to_numpy(dtype=np.int64)
    s = ev[SKU_IDX].to_numpy(dtype=np.int64)
    qty = ev[C.QTY].to_numpy(dtype=np.float64)
    units = np.bincount(u, weights=qty, minlength=n)
    safe = np.where(units > 0, units, 1.0)
    mean = np.bincount(u, weights=qty * sku.rel_price[s], minlength=n) / safe
    sq = np.bincount(u, weights=qty * sku.rel_price[s] ** 2, minlength=n) / safe
    n_cat = len(sku.categories)
    mix = np.bincount(u * n_cat + sku.category[s], weights=qty, minlength=n * n_cat)
    returned = np.bincount(u, weights=ev[RETURNED_QTY].to_numpy(np.float64), minlength=n)
    prior = returned.sum() / units.sum() if units.sum() > 0 else 0.0
    shares = share_counts(tables, ds)
    n_series = int(sku.series.max(initial=-1)) + 1
    has_series = sku.series[s] >= 0
    series = sp.csr_matrix(
        (qty[has_series] / safe[u[has_series]], (u[has_series], sku.series[s][has_series])),
        shape=(n, max(n_series, 1)),
    )
    shape = (n, ds.n_skus)
    units_m = sp.csr_matrix((qty, (u, s)), shape=shape)
    returned_m = sp.csr_matrix((ev[RETURNED_QTY].to_numpy(np.float64), (u, s)), shape=shape)
    band = (
        pd.DataFrame({"u": u, "p": sku.rel_price[s]})
        .groupby("u")["p"]
        .quantile([PRICE_BAND[0], PRICE_BAND[1]])
        .unstack()
        .reindex(np.arange(n))
    )
    return AgentInfo(
        region=region.astype(np.int64),
        regions=regions,
        tier=table[C.TIER].fillna(1).to_numpy(dtype=np.int64),
        price_mean=np.where(units > 0, mean, 0.0),
        price_sd=np.sqrt(np.maximum(sq - mean**2, 0.0)),
        price_low=band[PRICE_BAND[0]].to_numpy(dtype=np.float64),
        price_high=band[PRICE_BAND[1]].to_numpy(dtype=np.float64),
        n_lines=np.bincount(u, minlength=n).astype(np.float64),
        log_units=np.log1p(units),
        category_mix=(mix.reshape(n, n_cat) / safe[:, None]).astype(np.float32),
        return_rate=(returned + 20 * prior) / (units + 20),
        log_shares=np.log1p(shares),
        n_shares=shares,
        series_share=PairLookup(series),
        pair_units=PairLookup(units_m),
        pair_returned=PairLookup(returned_m),
    )


def shares_before(tables: Mapping[str, pd.DataFrame], ds: Dataset) -> pd.DataFrame:
    shares = tables.get(Tables.SHARES)
    if shares is None or len(shares) == 0:
        return pd.DataFrame({"u": np.zeros(0, np.int64), "s": np.zeros(0, np.int64), "t": []})
    ts = pd.to_datetime(shares[C.TS], utc=True)
    keep = (ts < ds.cutoff).to_numpy()
    u = ds.users.to_index(shares.loc[keep, C.AGENT_ID].to_numpy(dtype=object), "ignore")
    s = ds.skus.to_index(shares.loc[keep, C.SKU_ID].to_numpy(dtype=object), "ignore")
    t = ts[keep].to_numpy(dtype="datetime64[ns]").view(np.int64)
    ok = (u >= 0) & (s >= 0)
    return pd.DataFrame({"u": u[ok], "s": s[ok], "t": t[ok]})


def share_counts(tables: Mapping[str, pd.DataFrame], ds: Dataset) -> np.ndarray:
    frame = shares_before(tables, ds)
    return np.bincount(frame["u"].to_numpy(np.int64), minlength=ds.n_users).astype(np.float64)


def popularity(
    tables: Mapping[str, pd.DataFrame], ds: Dataset, agent: AgentInfo, days: int
) -> Popularity:
    """Agents who sold each SKU in recent windows: overall, per agent region, per agent tier;
    and units sold per region in the last two weeks (the trend).

    An agent counts once per SKU and window however many units she sold: popularity across
    agents, not the volume of a few big groups.
    """
    ev = ds.events
    age = (ds.cutoff - ev[C.TS]).dt.total_seconds().to_numpy() / 86_400.0
    u = ev[USER_IDX].to_numpy(dtype=np.int64)
    s = ev[SKU_IDX].to_numpy(dtype=np.int64)
    n_skus, n_reg = ds.n_skus, len(agent.regions)

    def sellers(mask: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
        key = np.unique(u[mask] * n_skus + s[mask])
        g = group[key // n_skus]
        ok = g >= 0
        flat = np.bincount(g[ok] * n_skus + key[ok] % n_skus, minlength=n_groups * n_skus)
        return flat.reshape(n_groups, n_skus).astype(np.float32)

    def units(mask: np.ndarray) -> np.ndarray:
        g = agent.region[u[mask]]
        ok = g >= 0
        qty = ev[C.QTY].to_numpy(dtype=np.float64)[mask][ok]
        flat = np.bincount(g[ok] * n_skus + s[mask][ok], weights=qty, minlength=n_reg * n_skus)
        return flat.reshape(n_reg, n_skus).astype(np.float32)

    window = age < days
    week = age < 7
    prev = (age >= 7) & (age < 14)
    zero = np.zeros(ds.n_users, dtype=np.int64)
    tiers = np.clip(agent.tier - 1, 0, 4)
    return Popularity(
        recent=sellers(window, zero, 1)[0],
        region=sellers(window, agent.region, n_reg),
        region_week=units(week),
        region_prev_week=units(prev),
        tier=sellers(window, tiers, 5),
    )
