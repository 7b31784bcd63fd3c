"""Popularity baselines: the most-bought SKUs of a recent window, global, per region or per tier.

They are the baselines every learned model must beat (issue 3, 2) and the serving fallback lists
(`ranking_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from recsys.columns import Columns
from recsys.data.dataset import RETURNED_QTY, SKU_IDX, USER_IDX, Dataset
from recsys.models.base import BaseRecommender, check_k, topk_from_scores

C = Columns
PopularBy = Literal["global", "region", "tier"]
POPULAR_BY: tuple[str, ...] = ("global", "region", "tier")
# the user-table column each grouped popularity ranks within
GROUP_COLUMNS: dict[str, str] = {"region": C.REGION, "tier": C.TIER}


def window_stats(events: pd.DataFrame, groups: np.ndarray | None = None) -> pd.DataFrame:
    """Distinct buyers and kept units per (group, SKU) of purchase lines (`user_idx`, `sku_idx`,
    `qty`, `returned_qty`); `groups` gives each user index a group code (-1 = none: not
    counted), None puts every line in group 0."""
    user = events[USER_IDX].to_numpy(dtype=np.int64)
    group = np.zeros(len(events), dtype=np.int64) if groups is None else groups[user]
    frame = pd.DataFrame(
        {
            "group": group,
            SKU_IDX: events[SKU_IDX].to_numpy(dtype=np.int64),
            USER_IDX: user,
            # units that stayed with the buyer: a wave of returns should not keep a SKU on top
            "units": (events[C.QTY] - events[RETURNED_QTY]).clip(lower=0).to_numpy(),
        }
    )
    frame = frame[frame["group"] >= 0]
    stats = frame.groupby(["group", SKU_IDX], sort=False).agg(
        buyers=(USER_IDX, "nunique"), units=("units", "sum")
    )
    return stats.reset_index()


def stats_scores(
    stats: pd.DataFrame, n_skus: int, min_buyers: int, n_groups: int = 1
) -> np.ndarray:
    """Popularity score per (group, SKU) from `window_stats` rows (group codes in [0, n_groups)).

    Returns
    -------
    np.ndarray
        float32 (n_groups × n_skus); the integer part is the number of buyers and the fraction
        ranks ties by kept units, so sorting by it sorts by (buyers, units). SKUs with fewer
        than `min_buyers` buyers in a group score -inf there.
    """
    out = np.full((n_groups, n_skus), -np.inf, dtype=np.float32)
    stats = stats[stats["buyers"].to_numpy() >= min_buyers]
    if stats.empty:
        return out
    units = stats["units"].to_numpy(dtype=np.float64)
    score = stats["buyers"].to_numpy(dtype=np.float64) + units / (units.max() + 1.0)
    out[stats["group"].to_numpy(np.int64), stats[SKU_IDX].to_numpy(np.int64)] = score.astype(
        np.float32
    )
    return out


def window_scores(
    events: pd.DataFrame,
    n_skus: int,
    min_buyers: int,
    groups: np.ndarray | None = None,
    n_groups: int = 1,
) -> np.ndarray:
    """Popularity score per (group, SKU) of the purchase lines in a window (`stats_scores` of
    their `window_stats`): distinct buyers plus kept units as a tie-break fraction."""
    if events.empty:
        return np.full((n_groups, n_skus), -np.inf, dtype=np.float32)
    return stats_scores(window_stats(events, groups), n_skus, min_buyers, n_groups)


class PopularRecommender(BaseRecommender):
    """Most-bought SKUs (distinct buyers, ties by kept units) in the window before the cutoff.

    Buyers are users of the target: agents whose customers bought the SKU (item-to-agent), or
    customers (item-to-customer); units are the kept units of the lines attributed to them.
    With `by="region"` or `by="tier"` each user gets the ranking of her own region or tier first,
    then the global one; users with no region/tier get the global ranking. Known users with no
    history are scored too (they have a region), so `scores_cold_users` is True. SKUs with fewer
    than `min_buyers` buyers in the window come after the ranked ones, in all-time order (the
    fallback the base class fills short lists from; it is the global ranking for this model).
    """

    name = "popular"
    scores_cold_users = True

    def __init__(
        self,
        window_days: int = 28,
        min_buyers: int = 1,
        by: PopularBy = "global",
        random_state: int = 0,
    ) -> None:
        self.window_days = window_days
        self.min_buyers = min_buyers
        self.by = by
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.window_days, (int, np.integer)) or self.window_days < 1:
            raise ValueError(f"window_days must be an integer >= 1, got {self.window_days!r}")
        if not isinstance(self.min_buyers, (int, np.integer)) or self.min_buyers < 1:
            raise ValueError(f"min_buyers must be an integer >= 1, got {self.min_buyers!r}")
        if self.by not in POPULAR_BY:
            raise ValueError(f"by must be one of {POPULAR_BY}, got {self.by!r}")

    def _fit(self, dataset: Dataset) -> None:
        self._check_params()
        if self.by != "global" and GROUP_COLUMNS[self.by] not in dataset.user_table.columns:
            raise ValueError(
                f"by={self.by!r} needs column {GROUP_COLUMNS[self.by]!r} in the "
                f"{dataset.target} table, which has {list(dataset.user_table.columns)}"
            )
        scores = self._window_scorer(dataset)
        self.global_scores_: np.ndarray = scores("global", None, None)[0]
        # Rankings per region and per tier are kept whatever `by` is: serving uses them as
        # fallback lists (`ranking_for`).
        self.group_names_: dict[str, np.ndarray] = {}
        self.group_scores_: dict[str, np.ndarray] = {}
        self.user_groups_: dict[str, np.ndarray] = {}
        for kind, column in GROUP_COLUMNS.items():
            if column not in dataset.user_table.columns:
                continue
            codes, names = pd.factorize(dataset.user_table[column], sort=True)
            self.group_names_[kind] = np.asarray(names, dtype=object)
            self.user_groups_[kind] = codes.astype(np.int64)
            self.group_scores_[kind] = scores(kind, codes.astype(np.int64), names)
        # The fallback order of the base class becomes (window ranking, then all-time counts),
        # so unknown users and short lists get the same global list as `ranking_for()`.
        all_time = self.popularity_ / (float(self.popularity_.max(initial=0.0)) + 1.0)
        ranked = np.isfinite(self.global_scores_)
        self.popularity_ = np.where(ranked, self.global_scores_ + 1.0, all_time).astype(np.float32)

    def _window_scorer(
        self, dataset: Dataset
    ) -> Callable[[str, np.ndarray | None, pd.Index | None], np.ndarray]:
        """(kind, each user's group code, the group names) → scores, from the window's lines
        or, when the dataset carries them (`Dataset.window_stats`), from its aggregates.

        Raises
        ------
        ValueError
            If the aggregates cover another window than `window_days`.
        """
        n_skus, min_buyers = dataset.n_skus, self.min_buyers
        aggregated = dataset.window_stats
        if aggregated is None:
            start = dataset.cutoff - pd.Timedelta(days=int(self.window_days))
            ev = dataset.events
            window = ev[(ev[C.TS] >= start) & (ev[C.TS] < dataset.cutoff)]

            def from_lines(
                kind: str, codes: np.ndarray | None, names: pd.Index | None
            ) -> np.ndarray:
                n = 1 if names is None else len(names)
                return window_scores(window, n_skus, min_buyers, codes, n)

            return from_lines
        if aggregated.days != int(self.window_days):
            raise ValueError(
                f"the dataset carries the popularity of its last {aggregated.days} days only "
                f"(aggregated by the Spark engine), not of {self.window_days}: fit with "
                f"window_days={aggregated.days}"
            )

        def from_stats(kind: str, codes: np.ndarray | None, names: pd.Index | None) -> np.ndarray:
            stats = aggregated.stats[kind]
            if names is None:
                return stats_scores(stats.assign(group=0), n_skus, min_buyers)
            group = pd.Index(names).get_indexer(stats["group"])
            known = stats.assign(group=group)[group >= 0]
            return stats_scores(known, n_skus, min_buyers, len(names))

        return from_stats

    def _group_block(self, kind: str, codes: np.ndarray) -> np.ndarray:
        """Scores for rows in groups `codes` (-1 = none): own group first, then global."""
        base = np.tile(self.global_scores_, (len(codes), 1))
        if kind not in self.group_scores_:
            return base
        grouped = self.group_scores_[kind][np.maximum(codes, 0)]
        grouped[codes < 0] = -np.inf
        # Offset so that any SKU ranked in the group comes before every global-only SKU.
        finite = self.global_scores_[np.isfinite(self.global_scores_)]
        offset = float(finite.max()) + 1.0 if len(finite) else 0.0
        return np.where(np.isfinite(grouped), grouped + offset, base).astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        if self.by == "global":
            return np.tile(self.global_scores_, (len(user_idx), 1))
        return self._group_block(self.by, self.user_groups_[self.by][user_idx])

    def ranking_for(
        self, region: str | None = None, tier: int | None = None, k: int = 20
    ) -> pd.DataFrame:
        """Top-k available SKUs (sku_id, score, rank) for a region, a tier, or everyone.

        An unknown region or tier gets the global list. The order is the one `recommend` gives
        a user of that region (tier) with `exclude_seen=False` under the matching `by`.

        Raises
        ------
        ValueError
            If both `region` and `tier` are given, or `k` < 1.
        """
        self.check_fitted()
        check_k(k)
        if region is not None and tier is not None:
            raise ValueError(f"give region or tier, not both (got region={region!r}, tier={tier})")
        kind, value = ("region", region) if region is not None else ("tier", tier)
        code = -1
        if value is not None and kind in self.group_names_:
            match = np.flatnonzero(self.group_names_[kind] == value)
            code = int(match[0]) if len(match) else -1
        scores = self._group_block(kind, np.array([code]))[0]
        # Below the ranked SKUs come the rest in fallback order, as in `recommend`.
        floor = float(self.popularity_.max(initial=0.0)) + 1.0
        scores = np.where(np.isfinite(scores), scores + floor, self.popularity_)
        scores = np.where(self.available_, scores, -np.inf).astype(np.float32)
        idx, val = topk_from_scores(scores[None, :], k)
        valid = idx[0] >= 0
        return pd.DataFrame(
            {
                C.SKU_ID: self.skus_.to_external(idx[0][valid]),
                C.SCORE: val[0][valid],
                C.RANK: np.arange(1, int(valid.sum()) + 1, dtype=np.int32),
            }
        )
