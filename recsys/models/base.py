"""The one interface every recommender implements, with blocked top-k scoring.

Subclasses implement `_fit` and `_score` (a dense block of scores for a few users: memory is
bounded by `batch_size` × n_skus, never the full users × SKUs matrix); they may override `_topk`
with a library's own fast path (e.g. implicit's threaded recommend).
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.data.dataset import Dataset, user_column
from recsys.data.id_map import IdMap
from recsys.exceptions import NotFittedError

C = Columns
# Upper bound on floats in one dense score block (4M floats = 16 MB).
BLOCK_FLOATS = 4_000_000


def check_k(k: int) -> None:
    """Raise ValueError unless `k` >= 1."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k largest finite scores per row, best first.

    Rows with fewer than k finite scores are padded with index -1 and score -inf.
    """
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    if kk < n_cols:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(n_cols), (n_rows, 1))
    vals = np.take_along_axis(scores, part, axis=1)
    # stable order: score desc, then column index asc, so ties rank deterministically
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    idx = np.where(np.isfinite(vals), idx, -1)
    if kk < k:
        pad = k - kk
        idx = np.hstack([idx, np.full((n_rows, pad), -1)])
        vals = np.hstack([vals, np.full((n_rows, pad), -np.inf, dtype=vals.dtype)])
    return idx, vals


def mask_rows(scores: np.ndarray, matrix: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set to -inf, in place, the entries of `scores` where `matrix[rows]` has a stored value."""
    sub = matrix[rows]
    r, c = sub.nonzero()
    scores[r, c] = -np.inf


def batches(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices covering range(n) in steps of `size`."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class BaseRecommender(ABC):
    """Fit on a `Dataset`; recommend top-k SKUs as a reco table (id, sku_id, score, rank).

    Every model can recommend a SKU again (repeat purchases matter); `exclude_seen` is a per-call
    choice. Users unknown to the model (or with no interactions, for models that cannot score
    them) get the global popularity ranking learned at fit time.
    """

    name: ClassVar[str] = "base"
    # True when the model can score users with no interactions (e.g. from side features).
    scores_cold_users: ClassVar[bool] = False

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    @property
    def needs_side_features(self) -> bool:
        """Whether `fit` reads the dataset's side-feature tables (else they need not be built)."""
        return False

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, dataset: Dataset) -> Self:
        """Learn from `dataset` and return self."""
        self.target_ = dataset.target
        self.users_: IdMap = dataset.users
        self.skus_: IdMap = dataset.skus
        self.seen_: sp.csr_matrix = (dataset.interactions != 0).astype(np.float32).tocsr()
        self.available_: np.ndarray = np.asarray(dataset.sku_available, dtype=bool)
        self.has_history_: np.ndarray = np.diff(self.seen_.indptr) > 0
        counts = np.asarray(self.seen_.sum(axis=0)).ravel()
        self.popularity_: np.ndarray = counts.astype(np.float32)
        self._fit(dataset)
        return self

    @abstractmethod
    def _fit(self, dataset: Dataset) -> None:
        """Model-specific fitting; set fitted attributes ending in `_`."""

    @abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense float32 scores (len(user_idx) × n_skus) for known users; -inf = never recommend."""

    def check_fitted(self) -> None:
        """Raise NotFittedError unless `fit` has been called."""
        if not hasattr(self, "skus_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(dataset) first")

    # ---- recommending --------------------------------------------------------------------
    def _batch_size(self) -> int:
        return max(1, BLOCK_FLOATS // max(1, len(self.skus_)))

    def _topk(
        self, user_idx: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (sku_idx, score) arrays for known users, computed block by block."""
        out_idx = np.empty((len(user_idx), k), dtype=np.int64)
        out_val = np.empty((len(user_idx), k), dtype=np.float32)
        for sl in batches(len(user_idx), self._batch_size()):
            rows = user_idx[sl]
            scores = np.asarray(self._score(rows), dtype=np.float32)
            scores[:, ~self.available_] = -np.inf
            if exclude_seen:
                mask_rows(scores, self.seen_, rows)
            out_idx[sl], out_val[sl] = topk_from_scores(scores, k)
        return out_idx, out_val

    def _fill_from_fallback(
        self,
        idx: np.ndarray,
        val: np.ndarray,
        user_idx: np.ndarray,
        rows: np.ndarray,
        exclude_seen: bool,
    ) -> None:
        """Fill the empty (-1) slots of `rows` in place from the global popularity order.

        Filled picks rank below the row's own picks; memory is bounded by the block size.
        """
        k = idx.shape[1]
        order = np.argsort(-self.popularity_, kind="stable")
        order = order[self.available_[order]]
        n_skus = len(self.skus_)
        for sl in batches(len(rows), self._batch_size()):
            block = rows[sl]
            taken = np.zeros((len(block), n_skus), dtype=bool)
            r, c = np.nonzero(idx[block] >= 0)
            taken[r, idx[block][r, c]] = True
            known = np.flatnonzero(user_idx[block] >= 0)
            if exclude_seen and len(known):
                sr, sc = self.seen_[user_idx[block][known]].nonzero()
                taken[known[sr], sc] = True
            # enough candidates for the fullest row: k plus whatever it already took
            depth = min(len(order), k + int(taken.sum(axis=1).max(initial=0)))
            cand = np.broadcast_to(order[:depth], (len(block), depth))
            free = ~np.take_along_axis(taken, cand, axis=1)
            for i, row in enumerate(block):
                have = idx[row][idx[row] >= 0]
                need = k - len(have)
                extra = cand[i][free[i]][:need]
                idx[row, len(have) : len(have) + len(extra)] = extra
                if len(have):
                    floor = float(val[row, : len(have)].min())
                    fill = floor - 1.0 - np.arange(len(extra))
                else:  # a cold user: the popularity ranking itself, with its counts as scores
                    fill = self.popularity_[extra]
                val[row, len(have) : len(have) + len(extra)] = fill

    def recommend(
        self, ids: Iterable[str], k: int = 20, exclude_seen: bool = False
    ) -> pd.DataFrame:
        """Top-k SKUs for each id as a reco table (id column, sku_id, score, rank 1..k).

        Parameters
        ----------
        ids
            External agent or customer ids; unknown ones get the popularity fallback.
        k
            Number of picks per id.
        exclude_seen
            Drop SKUs the user already interacted with (off by default: rebuying matters).
        """
        self.check_fitted()
        check_k(k)
        ids_arr = np.asarray(
            list(ids) if not isinstance(ids, (np.ndarray, pd.Series)) else ids, dtype=object
        )
        ids_arr = pd.unique(ids_arr)
        user_idx = self.users_.to_index(ids_arr, on_unknown="ignore")
        scorable = user_idx >= 0
        if not self.scores_cold_users:
            scorable &= np.where(user_idx >= 0, self.has_history_[np.maximum(user_idx, 0)], False)
        idx = np.full((len(ids_arr), k), -1, dtype=np.int64)
        val = np.full((len(ids_arr), k), -np.inf, dtype=np.float32)
        if scorable.any():
            idx[scorable], val[scorable] = self._topk(user_idx[scorable], k, exclude_seen)
        # Users the model cannot score, and short lists, are filled from popularity.
        short = np.flatnonzero((idx < 0).any(axis=1))
        if len(short):
            self._fill_from_fallback(idx, val, user_idx, short, exclude_seen)
        return self._to_frame(ids_arr, idx, val)

    def _to_frame(self, ids: np.ndarray, idx: np.ndarray, val: np.ndarray) -> pd.DataFrame:
        k = idx.shape[1]
        valid = idx >= 0
        rows = np.repeat(np.arange(len(ids)), k).reshape(len(ids), k)
        ranks = np.cumsum(valid, axis=1)
        return pd.DataFrame(
            {
                user_column(self.target_): ids[rows[valid]],
                C.SKU_ID: self.skus_.to_external(idx[valid]),
                C.SCORE: val[valid].astype(np.float32),
                C.RANK: ranks[valid].astype(np.int32),
            }
        )

    # ---- similar SKUs --------------------------------------------------------------------
    def _sku_vectors(self) -> np.ndarray | None:
        """Per-SKU vectors for cosine similarity (n_skus × d), or None if the model has none."""
        return None

    def similar_skus(self, sku_ids: Iterable[str], k: int = 10) -> pd.DataFrame:
        """The k most similar SKUs to each given SKU (sku_id, similar_sku_id, score, rank).

        Raises
        ------
        NotImplementedError
            If the model has no notion of SKU similarity.
        """
        self.check_fitted()
        check_k(k)
        vectors = self._sku_vectors()
        if vectors is None:
            raise NotImplementedError(f"{type(self).__name__} has no SKU similarity")
        ids_arr = pd.unique(np.asarray(list(sku_ids), dtype=object))
        sku_idx = self.skus_.to_index(ids_arr, on_unknown="ignore")
        known = sku_idx >= 0
        ids_arr, sku_idx = ids_arr[known], sku_idx[known]
        # float64 products, kept as float32: the float32 result then no longer depends on how
        # the SKUs were batched (BLAS kernels differ by shape in the last bits), so every engine
        # and batch size publishes the same bytes
        vectors = np.asarray(vectors, dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        unit = vectors / np.where(norms > 0, norms, 1.0)[:, None]
        frames = []
        for sl in batches(len(sku_idx), self._batch_size()):
            rows = sku_idx[sl]
            sims = (unit[rows] @ unit.T).astype(np.float32)
            sims[np.arange(len(rows)), rows] = -np.inf  # a SKU is not similar to itself
            sims[:, ~self.available_] = -np.inf
            idx, val = topk_from_scores(sims, k)
            valid = idx >= 0
            rep = np.repeat(ids_arr[sl], k).reshape(len(rows), k)
            frames.append(
                pd.DataFrame(
                    {
                        C.SKU_ID: rep[valid],
                        "similar_sku_id": self.skus_.to_external(idx[valid]),
                        C.SCORE: val[valid],
                        C.RANK: np.cumsum(valid, axis=1)[valid].astype(np.int32),
                    }
                )
            )
        if not frames:
            return pd.DataFrame(columns=[C.SKU_ID, "similar_sku_id", C.SCORE, C.RANK])
        return pd.concat(frames, ignore_index=True)

    # ---- persistence ---------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Save the fitted model to folder `path` (pickle plus the id maps as Parquet)."""
        self.check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.users_.save(path / "users.parquet")
        self.skus_.save(path / "skus.parquet")
        with open(path / "model.pkl", "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, path: Path) -> Any:
        """Load a model saved with `save`."""
        with open(Path(path) / "model.pkl", "rb") as fh:
            model = pickle.load(fh)
        if not isinstance(model, BaseRecommender):
            raise TypeError(f"{path} does not hold a recommender, got {type(model).__name__}")
        return model

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (for logging), read from attributes of the same name."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}
