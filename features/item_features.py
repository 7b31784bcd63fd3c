"""SKU side features, one row per SKU of the id map, from the catalogue and the log before a cutoff.

Columns (docs/features.md): `category=`, `series=`, `brand=` (most frequent N plus `_other`),
`tag=` (most frequent N), `price_band=` and `price_level`, `age` and `not_launched`,
`return_rate` and `fault_return_rate` (smoothed towards the category's rate), and `region=`
(where the SKU is sold; an empty list means everywhere).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.encoding import (
    FeatureConfig,
    band_edges,
    band_of,
    multi_hot,
    one_hot,
    percentile_of,
    smoothed_rate,
    top_values,
)
from features.logs import map_ids, purchase_lines, require_tables, utc_series
from recsys.columns import Columns, Tables
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY, SKU_IDX
from recsys.data.id_map import IdMap

C = Columns
NS_PER_DAY = 86_400 * 10**9


def region_vocab(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Every region named by agents, customers or SKU availability lists, sorted."""
    found: set[str] = set()
    for name in (Tables.AGENTS, Tables.CUSTOMERS):
        if name in tables:
            found.update(tables[name][C.REGION].dropna().astype(str))
    if Tables.SKUS in tables:
        for regions in tables[Tables.SKUS][C.REGIONS]:
            if regions is not None:
                found.update(str(r) for r in regions)
    return sorted(found)


def aligned_skus(tables: Mapping[str, pd.DataFrame], skus: IdMap) -> pd.DataFrame:
    """The skus table in id-map order (index = sku_id).

    Raises
    ------
    ValueError
        If the catalogue repeats a sku_id.
    KeyError
        If the id map names SKUs that the catalogue lacks.
    """
    table = tables[Tables.SKUS].set_index(C.SKU_ID, drop=False)
    if not table.index.is_unique:
        dupes = table.index[table.index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"skus table has duplicate sku_id values, e.g. {dupes}")
    missing = ~pd.Index(skus.external_ids).isin(table.index)
    if missing.any():
        raise KeyError(f"skus id map has {int(missing.sum())} ids not in the catalogue")
    return table.loc[skus.external_ids]


def sku_price_edges(tables: Mapping[str, pd.DataFrame], n_bands: int) -> np.ndarray:
    """Inner edges of the catalogue's price quantile bands (shared by SKU and user features)."""
    return band_edges(tables[Tables.SKUS][C.PRICE].to_numpy(dtype=np.float64), n_bands)


def sku_line_arrays(
    tables: Mapping[str, pd.DataFrame], skus: IdMap, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """Purchase lines before `cutoff` reduced to what SKU features need: sku_idx and unit counts."""
    lines = purchase_lines(tables, cutoff)
    return pd.DataFrame(
        {
            SKU_IDX: map_ids(skus, lines[C.SKU_ID]),
            C.QTY: lines[C.QTY].to_numpy(dtype=np.int64),
            RETURNED_QTY: lines[RETURNED_QTY].to_numpy(dtype=np.int64),
            FAULT_RETURNED_QTY: lines[FAULT_RETURNED_QTY].to_numpy(dtype=np.int64),
        }
    )


def sku_return_rates(
    category: np.ndarray, lines: pd.DataFrame, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed return and fault-return rates (by units) per SKU, with the category rate as prior.

    `category` holds each SKU's category in id-map order; `lines` has `sku_idx`, `qty`,
    `returned_qty` and `fault_returned_qty`.
    """
    n = len(category)
    pos = lines[SKU_IDX].to_numpy(dtype=np.int64)
    ok = pos >= 0

    def units(col: str) -> np.ndarray:
        return np.bincount(pos[ok], weights=lines[col].to_numpy(np.float64)[ok], minlength=n)

    bought, returned, fault = units(C.QTY), units(RETURNED_QTY), units(FAULT_RETURNED_QTY)
    sums = (
        pd.DataFrame({"cat": category, "b": bought, "r": returned, "f": fault})
        .groupby("cat", sort=True)[["b", "r", "f"]]
        .sum()
    )
    total = bought.sum()
    # The category's rate, or the global rate for a category that sold nothing before the cutoff.
    glob_r = returned.sum() / total if total > 0 else 0.0
    glob_f = fault.sum() / total if total > 0 else 0.0
    cat_b = sums["b"].to_numpy()
    safe_b = np.where(cat_b > 0, cat_b, 1.0)
    cat_r = np.where(cat_b > 0, sums["r"].to_numpy() / safe_b, glob_r)
    cat_f = np.where(cat_b > 0, sums["f"].to_numpy() / safe_b, glob_f)
    at = sums.index.get_indexer(category)
    return (
        smoothed_rate(returned, bought, cat_r[at], strength),
        smoothed_rate(fault, bought, cat_f[at], strength),
    )


def build_sku_features(
    tables: Mapping[str, pd.DataFrame],
    skus: IdMap,
    cutoff: pd.Timestamp,
    config: FeatureConfig | None = None,
    *,
    lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Numeric SKU features aligned to `skus` (index = sku_id, float32, no NaN).

    Only events before `cutoff` are used. `lines` may pass purchase lines already cut at the
    cutoff and mapped to `skus` (columns `sku_idx`, `qty`, `returned_qty`, `fault_returned_qty`,
    e.g. `Dataset.events`), which saves reading the log again.
    """
    require_tables(tables, [Tables.SKUS, Tables.PURCHASES, Tables.RETURNS])
    cfg = config or FeatureConfig()
    if lines is None:
        lines = sku_line_arrays(tables, skus, cutoff)
    catalogue = tables[Tables.SKUS]
    index = pd.Index(skus.external_ids, name=C.SKU_ID)
    cat = aligned_skus(tables, skus).set_axis(index)

    parts: list[pd.DataFrame] = [
        one_hot(cat[C.CATEGORY], sku_categories(tables), "category"),
        one_hot(
            cat[C.SERIES], top_values(catalogue[C.SERIES], cfg.max_series), "series", other=True
        ),
        one_hot(cat[C.BRAND], top_values(catalogue[C.BRAND], cfg.max_brands), "brand", other=True),
        multi_hot(cat[C.TAGS], top_values(catalogue[C.TAGS].explode(), cfg.max_tags), "tag"),
    ]

    price = cat[C.PRICE].to_numpy(dtype=np.float64)
    bands = band_of(price, sku_price_edges(tables, cfg.n_price_bands))
    band_names = [str(b) for b in range(cfg.n_price_bands)]
    parts.append(one_hot(pd.Series(bands.astype(str), index=index), band_names, "price_band"))

    launched = utc_series(cat[C.LAUNCHED_AT]).to_numpy(dtype="datetime64[ns]").view(np.int64)
    age_days = np.maximum((cutoff.value - launched) / NS_PER_DAY, 0.0)
    return_rate, fault_rate = sku_return_rates(
        cat[C.CATEGORY].astype(str).to_numpy(), lines, cfg.return_prior_units
    )
    numeric = pd.DataFrame(
        {
            "price_level": percentile_of(price, catalogue[C.PRICE].to_numpy(dtype=np.float64)),
            "age": np.minimum(np.log1p(age_days) / np.log1p(cfg.age_horizon_days), 1.0),
            "not_launched": (launched >= cutoff.value).astype(np.float64),
            "return_rate": return_rate,
            "fault_return_rate": fault_rate,
        },
        index=index,
    )
    parts.append(numeric)
    parts.append(multi_hot(cat[C.REGIONS], region_vocab(tables), "region", empty_means_all=True))
    return pd.concat(parts, axis=1).astype(np.float32)


def sku_categories(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """The catalogue's categories, sorted (the vocabulary of every `category=` column)."""
    return sorted(tables[Tables.SKUS][C.CATEGORY].dropna().astype(str).unique())


def sku_attributes(
    tables: Mapping[str, pd.DataFrame], skus: IdMap, n_price_bands: int
) -> pd.DataFrame:
    """Per SKU in id-map order: category code (into `sku_categories`), price band, price level."""
    cat = aligned_skus(tables, skus)
    price = cat[C.PRICE].to_numpy(dtype=np.float64)
    codes = pd.Categorical(cat[C.CATEGORY].astype(str), categories=sku_categories(tables)).codes
    return pd.DataFrame(
        {
            "category_code": codes.astype(np.int64),
            "price_band": band_of(price, sku_price_edges(tables, n_price_bands)).astype(np.int64),
            "price_level": percentile_of(
                price, tables[Tables.SKUS][C.PRICE].to_numpy(dtype=np.float64)
            ),
        }
    )
