"""Where a publish gets its picks: a recommender's reco tables turned into SKU-table rows.

`publish_snapshot` asks a *picks source* for one batch of users at a time. A fitted
`BaseRecommender` is wrapped in `ModelSource`; anything else with the same `picks_for` method
(e.g. precomputed arrays in the benchmark) can be published directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from recsys.columns import Columns
from recsys.data.dataset import user_column

C = Columns


@dataclass(frozen=True)
class UserPicks:
    """Picks of a batch of users: user i's picks are rows offsets[i]:offsets[i + 1], best first.

    `sku_index` holds rows of the snapshot's SKU table. `popular` marks users whose list is the
    model's popularity fallback (it could not score them), so their picks say so. `reasons` and
    `params` (picks × 3), when given, are the model's own reasons for its picks and are stored
    as they are.
    """

    offsets: np.ndarray
    sku_index: np.ndarray
    score: np.ndarray
    popular: np.ndarray | None = None
    n_dropped: int = 0
    reasons: np.ndarray | None = None
    params: np.ndarray | None = None

    @property
    def counts(self) -> np.ndarray:
        """Number of picks per user."""
        return np.diff(self.offsets)


class PicksSource(Protocol):
    """Anything that can give the top-k picks of a batch of users as SKU-table rows."""

    def picks_for(self, users: np.ndarray, k: int) -> UserPicks:
        """The top-k picks of each of `users`."""
        ...


def picks_from_reco(
    reco: pd.DataFrame, users: np.ndarray, sku_pos: pd.Index, user_col: str
) -> UserPicks:
    """Turn a reco table (id, sku_id, score, rank) into `UserPicks` over `users` and `sku_pos`.

    Rows of users not in `users`, or of SKUs not in `sku_pos`, are dropped and counted.
    """
    pos = pd.Index(users).get_indexer(reco[user_col])
    sku = sku_pos.get_indexer(reco[C.SKU_ID])
    keep = (pos >= 0) & (sku >= 0)
    order = np.lexsort((reco[C.RANK].to_numpy()[keep], pos[keep]))
    pos = pos[keep][order]
    offsets = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pos, minlength=len(users)), out=offsets[1:])
    return UserPicks(
        offsets=offsets,
        sku_index=sku[keep][order],
        score=reco[C.SCORE].to_numpy(np.float64)[keep][order],
        n_dropped=int((~keep).sum()),
    )


class ModelSource:
    """A fitted `BaseRecommender` as a picks source."""

    def __init__(
        self, model: Any, target: str, sku_pos: pd.Index, *, exclude_seen: bool = False
    ) -> None:
        self.model = model
        self.user_col = user_column(target)
        self.sku_pos = sku_pos
        self.exclude_seen = exclude_seen

    def picks_for(self, users: np.ndarray, k: int) -> UserPicks:
        """Score `users` with the model's `recommend` and map its SKUs to SKU-table rows."""
        reco = self.model.recommend(users, k=k, exclude_seen=self.exclude_seen)
        picks = picks_from_reco(reco, users, self.sku_pos, self.user_col)
        reasons = params = None
        explain = getattr(self.model, "pick_reasons", None)
        if callable(explain) and len(picks.sku_index):
            # a model that knows why it picked (the ranked model) gives its own reasons
            owners = np.repeat(np.asarray(users, dtype=object), picks.counts)
            reasons, params = explain(owners, self.sku_pos.to_numpy()[picks.sku_index])
        return UserPicks(
            picks.offsets,
            picks.sku_index,
            picks.score,
            self._cold(users),
            picks.n_dropped,
            reasons,
            params,
        )

    def _cold(self, users: np.ndarray) -> np.ndarray | None:
        """Users the model cannot score (it serves them its popularity ranking)."""
        model = self.model
        if not hasattr(model, "users_") or not hasattr(model, "has_history_"):
            return None
        idx = model.users_.to_index(users, on_unknown="ignore")
        scorable = idx >= 0
        if not getattr(model, "scores_cold_users", False):
            scorable &= np.where(scorable, model.has_history_[np.maximum(idx, 0)], False)
        return ~scorable

    def similar_for(self, skus: np.ndarray, k: int) -> UserPicks | None:
        """The k most similar SKUs of each of `skus`, or None when the model has no similarity."""
        known = np.asarray([s in self.model.skus_ for s in skus], dtype=bool)
        try:
            sim = self.model.similar_skus(skus[known], k=k)
        except (NotImplementedError, AttributeError):
            return None
        sim = sim[np.isfinite(sim[C.SCORE].to_numpy(np.float64))]
        frame = sim.rename(columns={C.SKU_ID: "_src", C.SIMILAR_SKU_ID: C.SKU_ID})
        return picks_from_reco(frame, skus, self.sku_pos, "_src")


def batches(ids: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(batch number, slice of `ids`) in steps of `size`."""
    for i, start in enumerate(range(0, len(ids), size)):
        yield i, ids[start : start + size]
