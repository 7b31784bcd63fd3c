"""The audience signal: what an agent's own customers want, from an item-to-customer model.

An agent with few shares of her own but a known group should still get good picks (issue 5, 1).
The item-to-customer ALS scores customer c for SKU s as u_c · v_s; her audience score is the
activity-weighted mean over her customers,

    audience(a, s) = Σ_c w_c (u_c · v_s) / Σ_c w_c = (Σ_c w_c u_c / Σ_c w_c) · v_s,

so it is one dot product with a precomputed audience vector per agent (exactly the mean of her
customers' scores, at the cost of scoring one user). Weights w_c = log1p(lines in the last
`activity_days`): customers who buy often count more, customers who never bought count 0.
Her customers are those bound to her in the customers table who joined before the cutoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.columns import Columns, Tables
from recsys.data.dataset import RETURNED_QTY, SKU_IDX, USER_IDX, Dataset
from recsys.models.implicit_models import ALSRecommender
from recsys.ranking.lookup import PairLookup

C = Columns


@dataclass
class Audience:
    """Per-agent audience vectors and her customers' purchase counts per SKU."""

    vectors: np.ndarray  # n_agents × d: activity-weighted mean customer factors
    item_factors: np.ndarray  # n_skus × d (customer model)
    warm_skus: np.ndarray  # SKUs the customer model has learnt
    n_customers: np.ndarray  # bound customers who joined before the cutoff
    n_active: np.ndarray  # of them, with a purchase before the cutoff
    bought: PairLookup  # agents × SKUs: her customers who bought it before (distinct)
    kept: PairLookup  # agents × SKUs: her customers who kept a unit of it
    bought_matrix: sp.csr_matrix  # the same counts as a matrix (candidate generation)
    region_buyers: np.ndarray  # n_regions × n_skus: customers living there who bought lately
    customer_agent: np.ndarray  # agent index of each customer of the customer model (-1: none)
    customer_weight: np.ndarray  # activity weight w_c of each customer
    customer_factors: np.ndarray  # n_customers × d

    def scores(self, agent_idx: np.ndarray) -> np.ndarray:
        """Dense audience scores (len(agent_idx) × n_skus), -inf for SKUs the model never saw."""
        out = np.asarray(self.vectors[agent_idx] @ self.item_factors.T, dtype=np.float32)
        out[:, ~self.warm_skus] = -np.inf
        return out

    def pair_scores(self, agent_idx: np.ndarray, sku_idx: np.ndarray) -> np.ndarray:
        """Audience scores of aligned (agent, SKU) pairs (0 for SKUs the model never saw)."""
        vals = np.einsum("ij,ij->i", self.vectors[agent_idx], self.item_factors[sku_idx])
        return np.where(self.warm_skus[sku_idx], vals, 0.0).astype(np.float32)


def _binding(tables: Mapping[str, pd.DataFrame], ds_agents: Dataset, customers: Any) -> np.ndarray:
    """The agent index of each customer of `customers` (-1: unbound or joined after the cutoff)."""
    table = tables[Tables.CUSTOMERS]
    joined = (pd.to_datetime(table[C.JOINED_AT], utc=True) < ds_agents.cutoff).to_numpy()
    cust = customers.to_index(table[C.CUSTOMER_ID].to_numpy(dtype=object), "ignore")
    agent = ds_agents.users.to_index(table[C.AGENT_ID].to_numpy(dtype=object), "ignore")
    out = np.full(len(customers), -1, dtype=np.int64)
    ok = (cust >= 0) & joined
    out[cust[ok]] = agent[ok]
    return out


def build_audience(
    tables: Mapping[str, pd.DataFrame],
    agent_dataset: Dataset,
    *,
    regions: np.ndarray | None = None,
    popularity_days: int = 28,
    weights: Mapping[str, Any] | None = None,
    factors: int = 32,
    iterations: int = 15,
    regularization: float = 0.05,
    alpha: float = 2.0,
    activity_days: int = 90,
    random_state: int = 0,
    enabled: bool = True,
) -> Audience:
    """Fit the item-to-customer ALS before the agent dataset's cutoff and aggregate it per agent.

    Without a customers table (or customer events), or with `enabled=False` (the agent-history
    only ablation), the audience is empty: zero vectors, no counts, so the ranker simply learns
    not to rely on it.
    """
    from features.dataset import build_dataset

    n_agents, n_skus = agent_dataset.n_users, agent_dataset.n_skus
    empty = sp.csr_matrix((n_agents, n_skus), dtype=np.float32)
    region_names = np.asarray(regions if regions is not None else [], dtype=object)
    if not enabled or Tables.CUSTOMERS not in tables or len(tables[Tables.CUSTOMERS]) == 0:
        return Audience(
            vectors=np.zeros((n_agents, 1), np.float32),
            item_factors=np.zeros((n_skus, 1), np.float32),
            warm_skus=np.zeros(n_skus, dtype=bool),
            n_customers=np.zeros(n_agents),
            n_active=np.zeros(n_agents),
            bought=PairLookup(empty),
            kept=PairLookup(empty),
            bought_matrix=empty,
            region_buyers=np.zeros((len(region_names), n_skus), np.float32),
            customer_agent=np.zeros(0, np.int64),
            customer_weight=np.zeros(0, np.float32),
            customer_factors=np.zeros((0, 1), np.float32),
        )
    cds = build_dataset(
        tables,
        "customer",
        cutoff=agent_dataset.cutoff,
        weights=dict(weights or {}),
        with_features=False,
        fingerprint="",
    )
    owner = _binding(tables, agent_dataset, cds.users)
    ev = cds.events
    cust = ev[USER_IDX].to_numpy(dtype=np.int64)
    sku = ev[SKU_IDX].to_numpy(dtype=np.int64)
    recent = (ev[C.TS] >= cds.cutoff - pd.Timedelta(days=activity_days)).to_numpy()
    activity = np.log1p(np.bincount(cust[recent], minlength=cds.n_users)).astype(np.float32)
    bound = owner >= 0
    members = sp.csr_matrix(
        (np.ones(int(bound.sum()), np.float32), (owner[bound], np.flatnonzero(bound))),
        shape=(n_agents, cds.n_users),
    )
    if cds.interactions.nnz:
        model = ALSRecommender(
            factors=factors,
            iterations=iterations,
            regularization=regularization,
            alpha=alpha,
            random_state=random_state,
        ).fit(cds)
        user_f = np.asarray(model.model_.user_factors, dtype=np.float32)
        item_f = np.asarray(model.model_.item_factors, dtype=np.float32)
        warm = model.warm_skus_
    else:
        user_f = np.zeros((cds.n_users, 1), np.float32)
        item_f = np.zeros((n_skus, 1), np.float32)
        warm = np.zeros(n_skus, dtype=bool)
    weighted = members @ sp.diags(activity)
    total = np.asarray(weighted.sum(axis=1)).ravel()
    vectors = np.asarray(weighted @ user_f) / np.where(total > 0, total, 1.0)[:, None]
    lines_per_customer = np.bincount(cust, minlength=cds.n_users)
    kept_units = (ev[C.QTY] - ev[RETURNED_QTY]).to_numpy(dtype=np.float64)
    bought_any = _distinct(cust, sku, np.ones(len(cust)), (cds.n_users, n_skus))
    kept_any = _distinct(cust, sku, kept_units, (cds.n_users, n_skus))
    bought = (members @ bought_any).tocsr()
    kept = (members @ kept_any).tocsr()
    region_buyers = _region_buyers(tables, cds, region_names, popularity_days)
    return Audience(
        vectors=vectors.astype(np.float32),
        item_factors=item_f,
        warm_skus=np.asarray(warm, dtype=bool),
        n_customers=np.asarray(members.sum(axis=1)).ravel(),
        n_active=np.asarray(members @ (lines_per_customer > 0).astype(np.float32)).ravel(),
        bought=PairLookup(bought),
        kept=PairLookup(kept),
        bought_matrix=bought.astype(np.float32),
        region_buyers=region_buyers,
        customer_agent=owner,
        customer_weight=activity,
        customer_factors=user_f,
    )


def _region_buyers(
    tables: Mapping[str, pd.DataFrame], cds: Dataset, regions: np.ndarray, days: int
) -> np.ndarray:
    """Distinct customers per (their region, SKU) who bought it in the last `days` days."""
    table = tables[Tables.CUSTOMERS]
    region_of = np.full(cds.n_users, -1, dtype=np.int64)
    rows = cds.users.to_index(table[C.CUSTOMER_ID].to_numpy(dtype=object), "ignore")
    codes = pd.Index(regions).get_indexer(table[C.REGION].astype(str).to_numpy(dtype=object))
    region_of[rows[rows >= 0]] = codes[rows >= 0]
    ev = cds.events
    recent = (ev[C.TS] >= cds.cutoff - pd.Timedelta(days=days)).to_numpy()
    cust = ev[USER_IDX].to_numpy(dtype=np.int64)[recent]
    sku = ev[SKU_IDX].to_numpy(dtype=np.int64)[recent]
    key = np.unique(cust * cds.n_skus + sku)
    g = region_of[key // cds.n_skus]
    ok = g >= 0
    flat = np.bincount(
        g[ok] * cds.n_skus + key[ok] % cds.n_skus, minlength=len(regions) * cds.n_skus
    )
    return flat.reshape(len(regions), cds.n_skus).astype(np.float32)


def _distinct(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """0/1 CSR: 1 where the summed `values` of a (row, col) pair are positive."""
    matrix = sp.csr_matrix((values, (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data = (matrix.data > 0).astype(np.float32)
    matrix.eliminate_zeros()
    return matrix
