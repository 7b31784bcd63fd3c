"""Item-kNN: SKU-SKU similarity from co-occurrence in the users × SKUs matrix (`implicit`).

The similarity comes from `implicit.nearest_neighbours` (cosine, BM25 or TF-IDF weighting of
the co-occurrence); a user's scores are her interaction row times the neighbour matrix, which is
what implicit's own scorer computes, done here block by block for the base class.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.models.base import BaseRecommender, batches, check_k, topk_from_scores

C = Columns
Weighting = Literal["bm25", "cosine", "tfidf"]
WEIGHTINGS: tuple[str, ...] = ("bm25", "cosine", "tfidf")


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (implicit is slower with threaded OpenBLAS)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def positive_part(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """A float32 copy of `matrix` with negative and zero entries dropped."""
    out = matrix.astype(np.float32, copy=True).tocsr()
    out.data = np.maximum(out.data, 0.0)
    out.eliminate_zeros()
    return out


def significance_weights(
    similarity: sp.csr_matrix, user_items: sp.csr_matrix, shrink: float
) -> sp.csr_matrix:
    """Scale each stored similarity by n / (n + shrink), n = number of users sharing both SKUs.

    Pairs seen together by few users get pulled towards zero (Herlocker et al. 1999 call this
    significance weighting). Computed in row blocks so the co-occurrence counts stay bounded.
    """
    binary = (user_items > 0).astype(np.float32).tocsr()
    item_users = binary.T.tocsr()
    blocks = []
    n_items = similarity.shape[0]
    step = max(1, 4_000_000 // max(1, n_items))
    for sl in batches(n_items, step):
        sim = similarity[sl]
        counts = (item_users[sl] @ binary).multiply(sim != 0).tocsr()
        counts.data = counts.data / (counts.data + shrink)
        blocks.append(sim.multiply(counts).tocsr())
    if not blocks:
        return similarity
    return sp.vstack(blocks, format="csr").astype(np.float32)


class ItemKNNRecommender(BaseRecommender):
    """Score SKUs by their similarity to what the user interacted with (implicit item-kNN).

    Negative pair weights (returns that outweigh purchases) are dropped before the similarity is
    computed: a returned SKU should not make its neighbours look good. A SKU is its own nearest
    neighbour, so the user's own SKUs score high and can be recommended again.
    """

    name = "itemknn"

    def __init__(
        self,
        k_neighbours: int = 100,
        weighting: Weighting = "bm25",
        shrink: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int = 1,
        random_state: int = 0,
    ) -> None:
        self.k_neighbours = k_neighbours
        self.weighting = weighting
        self.shrink = shrink
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.k_neighbours, (int, np.integer)) or self.k_neighbours < 1:
            raise ValueError(f"k_neighbours must be an integer >= 1, got {self.k_neighbours!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not self.shrink >= 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink!r}")

    def _library_model(self) -> object:
        from implicit.nearest_neighbours import (
            BM25Recommender,
            CosineRecommender,
            TFIDFRecommender,
        )

        k = int(self.k_neighbours)
        if self.weighting == "bm25":
            return BM25Recommender(
                K=k, K1=self.bm25_k1, B=self.bm25_b, num_threads=self.num_threads
            )
        if self.weighting == "cosine":
            return CosineRecommender(K=k, num_threads=self.num_threads)
        return TFIDFRecommender(K=k, num_threads=self.num_threads)

    def _fit(self, dataset: Dataset) -> None:
        self._check_params()
        from implicit.utils import ParameterWarning

        self.user_items_: sp.csr_matrix = positive_part(dataset.interactions)
        model = self._library_model()
        with single_thread_blas(), warnings.catch_warnings():
            # implicit's weighting helpers hand COO to its own CSR check; the warning is noise
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(self.user_items_, show_progress=False)  # type: ignore[attr-defined]
        similarity = model.similarity.tocsr().astype(np.float32)  # type: ignore[attr-defined]
        if self.shrink > 0:
            similarity = significance_weights(similarity, self.user_items_, float(self.shrink))
        similarity.sort_indices()
        self.similarity_: sp.csr_matrix = similarity

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        with single_thread_blas():
            block = (self.user_items_[user_idx] @ self.similarity_).tocoo()
        # SKUs not reachable from the user's SKUs have no evidence: -inf lets the base class
        # fill from popularity instead of ranking them by column order.
        out = np.full((len(user_idx), self.similarity_.shape[1]), -np.inf, dtype=np.float32)
        out[block.row, block.col] = block.data
        return out

    def similar_skus(self, sku_ids: Iterable[str], k: int = 10) -> pd.DataFrame:
        """The k nearest neighbours of each known SKU (sku_id, similar_sku_id, score, rank)."""
        self.check_fitted()
        check_k(k)
        ids_arr = pd.unique(np.asarray(list(sku_ids), dtype=object))
        sku_idx = self.skus_.to_index(ids_arr, on_unknown="ignore")
        ids_arr, sku_idx = ids_arr[sku_idx >= 0], sku_idx[sku_idx >= 0]
        frames = []
        for sl in batches(len(sku_idx), self._batch_size()):
            rows = sku_idx[sl]
            sims = np.full((len(rows), self.similarity_.shape[1]), -np.inf, dtype=np.float32)
            block = self.similarity_[rows].tocoo()
            sims[block.row, block.col] = block.data
            sims[np.arange(len(rows)), rows] = -np.inf  # a SKU is not similar to itself
            sims[:, ~self.available_] = -np.inf
            idx, val = topk_from_scores(sims, k)
            valid = idx >= 0
            frames.append(
                pd.DataFrame(
                    {
                        C.SKU_ID: np.repeat(ids_arr[sl], k).reshape(len(rows), k)[valid],
                        C.SIMILAR_SKU_ID: self.skus_.to_external(idx[valid]),
                        C.SCORE: val[valid],
                        C.RANK: np.cumsum(valid, axis=1)[valid].astype(np.int32),
                    }
                )
            )
        if not frames:
            return pd.DataFrame(columns=[C.SKU_ID, C.SIMILAR_SKU_ID, C.SCORE, C.RANK])
        return pd.concat(frames, ignore_index=True)
