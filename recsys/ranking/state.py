"""What the logs say at a cutoff, in the shape the ranker reads: sub-models, profiles, popularity.

`RankingState.build(tables, cutoff, ...)` uses only events with `ts < cutoff` (the datasets are
built by `features.dataset.build_dataset` with that cutoff, and every count below filters on it).
The ranked model builds one state at an inner cutoff to learn from, and one at its own cutoff to
serve from. Everything is indexed like the agent dataset: agents × SKUs of the whole catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recsys.columns import Columns
from recsys.data.dataset import RETURNED_QTY, SKU_IDX, USER_IDX, Dataset
from recsys.models.implicit_models import ALSRecommender, BPRRecommender
from recsys.models.itemknn import ItemKNNRecommender
from recsys.models.repeat import repeat_scores
from recsys.ranking.audience import Audience, build_audience
from recsys.ranking.lookup import PairLookup
from recsys.ranking.profiles import (
    AgentInfo,
    Popularity,
    SkuInfo,
    agent_info,
    popularity,
    shares_before,
    sku_info,
)

C = Columns
NS_PER_DAY = 86_400 * 10**9


@dataclass
class RankingState:
    """Everything the candidates, features, rules and reasons read, as of `cutoff`."""

    cutoff: pd.Timestamp
    agents: Any  # IdMap
    skus: Any  # IdMap
    interactions: sp.csr_matrix  # agents × SKUs weights (the agent dataset's)
    als: ALSRecommender
    knn: ItemKNNRecommender
    repeat: sp.csr_matrix  # agents × SKUs recency-weighted kept units through her
    audience: Audience
    sku: SkuInfo
    agent: AgentInfo
    popularity: Popularity
    shares: PairLookup  # her shares of a SKU before the cutoff
    last_share_ns: PairLookup  # when she last shared it (ns since epoch)
    sold_recent: sp.csr_matrix  # agents × SKUs kept units sold through her lately
    content: np.ndarray  # n_skus × n_content normalised SKU side-feature vectors
    agent_content: np.ndarray  # n_agents × n_content normalised profile of what sold for her
    neighbours: np.ndarray  # n_agents × n_neighbours agent indices, -1 = none
    bpr: BPRRecommender | None = None  # agent BPR, fitted only when a source reads it

    @cached_property
    def repeat_at(self) -> PairLookup:
        """`repeat` as a pair lookup."""
        return PairLookup(self.repeat)

    @cached_property
    def sold_recent_at(self) -> PairLookup:
        """`sold_recent` as a pair lookup."""
        return PairLookup(self.sold_recent)

    @cached_property
    def knn_similarity_to(self) -> sp.csr_matrix:
        """The item-kNN similarity transposed: row s holds the SKUs that count s a neighbour."""
        return sp.csr_matrix(self.knn.similarity_.T)

    @cached_property
    def sold_recent_any(self) -> sp.csr_matrix:
        """`sold_recent` as 0/1 (she sold a unit of it lately and kept it)."""
        matrix = sp.csr_matrix(self.sold_recent, dtype=np.float32, copy=True)
        matrix.data = (matrix.data > 0).astype(np.float32)
        matrix.eliminate_zeros()
        return matrix

    @cached_property
    def content_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """The non-zero entries of each SKU's content vector: (columns, values), zero-padded.

        A SKU has a handful (category, series, brand, tags, price band) of some 150 columns, so
        a pair's content score reads those few instead of the whole dense vector.
        """
        csr = sp.csr_matrix(self.content)
        counts = np.diff(csr.indptr)
        width = max(int(counts.max(initial=0)), 1)
        cols = np.zeros((self.content.shape[0], width), dtype=np.int64)
        vals = np.zeros((self.content.shape[0], width), dtype=np.float32)
        rows = np.repeat(np.arange(csr.shape[0]), counts)
        slot = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], counts)
        cols[rows, slot] = csr.indices
        vals[rows, slot] = csr.data
        return cols, vals

    @property
    def n_agents(self) -> int:
        """Agents in the id map."""
        return len(self.agents)

    @property
    def n_skus(self) -> int:
        """SKUs in the catalogue."""
        return len(self.skus)

    @classmethod
    def build(
        cls,
        tables: Mapping[str, pd.DataFrame],
        cutoff: pd.Timestamp,
        *,
        agent_dataset: Dataset | None = None,
        weights: Mapping[str, Any] | None = None,
        als_params: Mapping[str, Any] | None = None,
        knn_params: Mapping[str, Any] | None = None,
        audience_params: Mapping[str, Any] | None = None,
        bpr_params: Mapping[str, Any] | None = None,
        popularity_days: int = 28,
        recent_days: int = 28,
        n_neighbours: int = 10,
        random_state: int = 0,
        num_threads: int = 1,
    ) -> RankingState:
        """The state of the log before `cutoff` (the agent dataset is built unless given).

        `num_threads` caps the OpenMP threads of the sub-models (implicit's ALS and kNN): more
        threads than free cores spin against each other on a shared machine. A BPR model is
        fitted only when `bpr_params` is given (the BPR candidate source reads it).
        """
        with threadpool_limits(limits=int(num_threads), user_api="openmp"):
            return cls._build(
                tables,
                cutoff,
                agent_dataset=agent_dataset,
                weights=weights,
                als_params=als_params,
                knn_params=knn_params,
                audience_params=audience_params,
                bpr_params=bpr_params,
                popularity_days=popularity_days,
                recent_days=recent_days,
                n_neighbours=n_neighbours,
                random_state=random_state,
            )

    @classmethod
    def _build(
        cls,
        tables: Mapping[str, pd.DataFrame],
        cutoff: pd.Timestamp,
        *,
        agent_dataset: Dataset | None,
        weights: Mapping[str, Any] | None,
        als_params: Mapping[str, Any] | None,
        knn_params: Mapping[str, Any] | None,
        audience_params: Mapping[str, Any] | None,
        bpr_params: Mapping[str, Any] | None,
        popularity_days: int,
        recent_days: int,
        n_neighbours: int,
        random_state: int,
    ) -> RankingState:
        from features.dataset import build_dataset

        ds = agent_dataset
        if ds is None:
            ds = build_dataset(tables, "agent", cutoff=cutoff, weights=dict(weights or {}))
        als = ALSRecommender(random_state=random_state, **dict(als_params or {})).fit(ds)
        knn = ItemKNNRecommender(random_state=random_state, **dict(knn_params or {})).fit(ds)
        bpr = None
        if bpr_params is not None:
            bpr = BPRRecommender(random_state=random_state, **dict(bpr_params)).fit(ds)
        repeat = repeat_scores(ds.events, (ds.n_users, ds.n_skus), ds.cutoff, half_life_days=60)
        sku = sku_info(tables, ds)
        agent = agent_info(tables, ds, sku)
        audience = build_audience(
            tables,
            ds,
            regions=agent.regions,
            popularity_days=popularity_days,
            weights=weights,
            random_state=random_state,
            **dict(audience_params or {}),
        )
        shares = _share_matrices(tables, ds)
        content = _content_vectors(ds)
        return cls(
            cutoff=ds.cutoff,
            agents=ds.users,
            skus=ds.skus,
            interactions=ds.interactions,
            als=als,
            knn=knn,
            repeat=repeat,
            audience=audience,
            sku=sku,
            agent=agent,
            popularity=popularity(tables, ds, agent, popularity_days),
            shares=PairLookup(shares[0]),
            last_share_ns=PairLookup(shares[1]),
            sold_recent=_sold_recent(ds, recent_days),
            content=content,
            agent_content=_agent_content(ds, content),
            neighbours=_neighbours(als, n_neighbours),
            bpr=bpr,
        )


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _share_matrices(
    tables: Mapping[str, pd.DataFrame], ds: Dataset
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Agents × SKUs: number of shares, and the time of the last one (ns)."""
    frame = shares_before(tables, ds)
    shape = (ds.n_users, ds.n_skus)
    if frame.empty:
        return sp.csr_matrix(shape), sp.csr_matrix(shape)
    last = frame.groupby(["u", "s"], sort=True)["t"].agg(["size", "max"]).reset_index()
    rows, cols = last["u"].to_numpy(), last["s"].to_numpy()
    count = sp.csr_matrix((last["size"].to_numpy(np.float64), (rows, cols)), shape=shape)
    when = sp.csr_matrix((last["max"].to_numpy(np.float64), (rows, cols)), shape=shape)
    return count, when


def _sold_recent(ds: Dataset, days: int) -> sp.csr_matrix:
    """Agents × SKUs: kept units sold through her in the last `days` before the cutoff."""
    ev = ds.events
    recent = (ev[C.TS] >= ds.cutoff - pd.Timedelta(days=days)).to_numpy()
    kept = (ev[C.QTY] - ev[RETURNED_QTY]).to_numpy(dtype=np.float64)[recent]
    matrix = sp.csr_matrix(
        (kept, (ev[USER_IDX].to_numpy()[recent], ev[SKU_IDX].to_numpy()[recent])),
        shape=(ds.n_users, ds.n_skus),
    )
    matrix.sum_duplicates()
    matrix.data = np.maximum(matrix.data, 0.0)
    matrix.eliminate_zeros()
    return matrix


def _content_vectors(ds: Dataset) -> np.ndarray:
    """Unit-length SKU side-feature vectors (category, series, brand, tags, price band)."""
    feats = ds.sku_features
    if feats is None:
        return np.zeros((ds.n_skus, 1), dtype=np.float32)
    prefixes = ("category=", "series=", "brand=", "tag=", "price_band=")
    cols = [c for c in feats.columns if str(c).startswith(prefixes)]
    return _normalise_rows(feats[cols].to_numpy(dtype=np.float32))


def _agent_content(ds: Dataset, content: np.ndarray) -> np.ndarray:
    """Each agent's unit-length mean content vector of the kept units sold through her."""
    ev = ds.events
    kept = np.maximum((ev[C.QTY] - ev[RETURNED_QTY]).to_numpy(np.float64), 0.0)
    weights = sp.csr_matrix(
        (kept, (ev[USER_IDX].to_numpy(), ev[SKU_IDX].to_numpy())), shape=(ds.n_users, ds.n_skus)
    )
    return _normalise_rows(np.asarray(weights @ content, dtype=np.float32))


def _neighbours(als: ALSRecommender, n: int, block: int = 2048) -> np.ndarray:
    """The n agents nearest to each agent by cosine of ALS factors (-1 for cold agents)."""
    factors = _normalise_rows(np.asarray(als.model_.user_factors, dtype=np.float32))
    warm = als.warm_users_
    n_agents = len(factors)
    out = np.full((n_agents, n), -1, dtype=np.int64)
    if n <= 0 or warm.sum() < 2:
        return out
    for lo in range(0, n_agents, block):
        rows = np.arange(lo, min(lo + block, n_agents))
        sims = factors[rows] @ factors.T
        sims[:, ~warm] = -np.inf
        sims[np.arange(len(rows)), rows] = -np.inf
        kk = min(n, int(warm.sum()) - 1)
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        out[rows, :kk] = np.take_along_axis(part, order, axis=1)
    out[~warm] = -1
    return out
