"""Encoders shared by the SKU and user feature tables: one-hot, multi-hot, bands, mixes, rates.

Every encoder returns float32 columns named `<prefix>=<value>` (0/1 flags or shares in [0, 1]),
so a feature table is numeric, NaN-free and ready for LightFM or a ranker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

OTHER = "_other"


class FeatureConfig(BaseModel):
    """Knobs of the side-feature tables (docs/features.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_price_bands: int = Field(5, ge=1)
    max_brands: int = Field(50, ge=0)
    max_tags: int = Field(50, ge=0)
    max_series: int = Field(50, ge=0)
    # Pseudo-units of the prior in smoothed return rates: (returns + a·prior) / (bought + a).
    return_prior_units: float = Field(20.0, ge=0.0)
    # Age since launch saturates (feature = 1) at this many days, on a log scale.
    age_horizon_days: float = Field(365.0, gt=0.0)

    def flat(self) -> dict[str, str]:
        """Parameters as strings keyed `features.<name>`, for logging."""
        return {f"features.{k}": str(v) for k, v in self.model_dump().items()}


def top_values(values: pd.Series, n: int) -> list[str]:
    """The `n` most frequent non-null values, ties broken by value (stable across row orders)."""
    counts = values.dropna().astype(str).value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [v for v, _ in ranked[:n]]


def one_hot(
    values: pd.Series, vocab: Sequence[str], prefix: str, *, other: bool = False
) -> pd.DataFrame:
    """0/1 columns `prefix=v` for v in `vocab` (plus `prefix=_other` for the rest, if asked)."""
    codes = pd.Categorical(values.astype(object).where(values.notna(), None), categories=vocab)
    out = np.zeros((len(values), len(vocab) + int(other)), dtype=np.float32)
    known = codes.codes >= 0
    out[np.flatnonzero(known), codes.codes[known]] = 1.0
    if other:
        out[:, -1] = (~known & values.notna().to_numpy()).astype(np.float32)
    names = [f"{prefix}={v}" for v in vocab] + ([f"{prefix}={OTHER}"] if other else [])
    return pd.DataFrame(out, columns=names, index=values.index)


def multi_hot(
    lists: pd.Series, vocab: Sequence[str], prefix: str, *, empty_means_all: bool = False
) -> pd.DataFrame:
    """0/1 columns `prefix=v`: 1 where v is in the row's list (all ones for `[]` if asked)."""
    items = [list(x) if isinstance(x, (list, tuple, np.ndarray)) else [] for x in lists]
    lengths = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))
    flat = pd.Series([str(v) for x in items for v in x], dtype=object)
    rows = np.repeat(np.arange(len(lists)), lengths)
    codes = pd.Categorical(flat, categories=vocab).codes
    out = np.zeros((len(lists), len(vocab)), dtype=np.float32)
    known = codes >= 0
    out[rows[known], codes[known]] = 1.0
    if empty_means_all:
        out[lengths == 0] = 1.0
    return pd.DataFrame(out, columns=[f"{prefix}={v}" for v in vocab], index=lists.index)


def band_edges(values: np.ndarray, n_bands: int) -> np.ndarray:
    """The inner quantile edges that split `values` into `n_bands` bands of about equal size."""
    if len(values) == 0 or n_bands <= 1:
        return np.empty(0, dtype=np.float64)
    return np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, n_bands + 1)[1:-1])


def band_of(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Band index 0..len(edges) of each value (a value equal to an edge goes to the upper band)."""
    return np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="right")


def percentile_of(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Share of `reference` at or below each value, in [0, 1]."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    if len(ref) == 0:
        return np.zeros(len(values), dtype=np.float64)
    return np.searchsorted(ref, np.asarray(values, dtype=np.float64), side="right") / len(ref)


def mix(
    group: np.ndarray, n_groups: int, value: np.ndarray, n_values: int, weight: np.ndarray
) -> np.ndarray:
    """Row-normalised n_groups × n_values shares of `weight` (rows with no weight stay zero)."""
    ok = (group >= 0) & (value >= 0)
    flat = group[ok].astype(np.int64) * n_values + value[ok]
    out = np.bincount(flat, weights=weight[ok], minlength=n_groups * n_values).astype(np.float64)
    out = out.reshape(n_groups, n_values)
    totals = out.sum(axis=1, keepdims=True)
    return np.divide(out, totals, out=np.zeros_like(out), where=totals > 0)


def smoothed_rate(
    hits: np.ndarray, trials: np.ndarray, prior: np.ndarray | float, strength: float
) -> np.ndarray:
    """Smoothed rate (hits + strength·prior) / (trials + strength); `prior` when both are 0."""
    hits = np.asarray(hits, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    prior_arr = np.broadcast_to(np.asarray(prior, dtype=np.float64), trials.shape)
    denom = trials + strength
    return np.divide(hits + strength * prior_arr, denom, out=prior_arr.copy(), where=denom > 0)


def log_scaled(values: np.ndarray) -> np.ndarray:
    """log1p(values) / log1p(max): counts squashed into [0, 1] (all zeros if max is 0)."""
    v = np.log1p(np.maximum(np.asarray(values, dtype=np.float64), 0.0))
    top = v.max() if len(v) else 0.0
    return v / top if top > 0 else np.zeros_like(v)
