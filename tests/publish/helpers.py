"""A tiny hand-made world for publish tests: contract tables, a Dataset, hand-built models.

20 SKUs s00..s19 (s17 suspended, s18 discontinued; even SKUs sold everywhere, odd ones only
in "north"), 24 agents a00..a23 (even ones north, odd ones south; tier 1 + i % 3), two customers
per agent, and purchases: customer c{2i} of agent a{i} buys s{i % 20} twice (two orders),
customer c{2i+1} buys s{(i + 1) % 20} once; so agent a{i} has 1 customer who bought s{i % 20}
and 1 who bought s{(i + 1) % 20}, except where they coincide.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.columns import Columns, Tables
from recsys.contract.schema import empty_table
from recsys.data.dataset import RETURNED_QTY, SKU_IDX, USER_IDX, Dataset
from recsys.data.id_map import IdMap
from recsys.models.base import BaseRecommender

C = Columns
NOW = pd.Timestamp("2026-11-01", tz="UTC")
N_SKUS, N_AGENTS = 20, 24


def sku_ids() -> list[str]:
    """s00..s19."""
    return [f"s{i:02d}" for i in range(N_SKUS)]


def agent_ids() -> list[str]:
    """a00..a23."""
    return [f"a{i:02d}" for i in range(N_AGENTS)]


def tiny_tables() -> dict[str, pd.DataFrame]:
    """The six contract tables of the world described in the module docstring."""
    skus = pd.DataFrame(
        {
            C.SKU_ID: sku_ids(),
            C.TITLE: [f"product {i}" for i in range(N_SKUS)],
            C.CATEGORY: ["snacks" if i % 4 < 2 else "beauty" for i in range(N_SKUS)],
            C.SERIES: [None] * N_SKUS,
            C.BRAND: ["B"] * N_SKUS,
            C.PRICE: [10.0 + i for i in range(N_SKUS)],
            C.TAGS: [[] for _ in range(N_SKUS)],
            C.LAUNCHED_AT: [NOW - pd.Timedelta(days=200)] * N_SKUS,
            C.REGIONS: [[] if i % 2 == 0 else ["north"] for i in range(N_SKUS)],
            C.STATUS: [
                "suspended" if i == 17 else "discontinued" if i == 18 else "active"
                for i in range(N_SKUS)
            ],
        }
    )
    agents = pd.DataFrame(
        {
            C.AGENT_ID: agent_ids(),
            C.REGION: ["north" if i % 2 == 0 else "south" for i in range(N_AGENTS)],
            C.TIER: [1 + i % 3 for i in range(N_AGENTS)],
            C.JOINED_AT: [NOW - pd.Timedelta(days=300)] * N_AGENTS,
        }
    )
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: [f"c{j:02d}" for j in range(2 * N_AGENTS)],
            C.REGION: ["north" if (j // 2) % 2 == 0 else "south" for j in range(2 * N_AGENTS)],
            C.AGENT_ID: [f"a{j // 2:02d}" for j in range(2 * N_AGENTS)],
            C.JOINED_AT: [NOW - pd.Timedelta(days=300)] * (2 * N_AGENTS),
        }
    )
    rows = []
    for i in range(N_AGENTS):
        for order in range(2):
            rows.append((f"c{2 * i:02d}", f"a{i:02d}", f"s{i % N_SKUS:02d}", f"o{i}-{order}", 1))
        rows.append((f"c{2 * i + 1:02d}", f"a{i:02d}", f"s{(i + 1) % N_SKUS:02d}", f"o{i}-x", 2))
    purchases = pd.DataFrame(
        {
            C.PURCHASE_ID: [f"p{n:03d}" for n in range(len(rows))],
            C.ORDER_ID: [r[3] for r in rows],
            C.TS: [NOW - pd.Timedelta(days=1 + n % 20) for n in range(len(rows))],
            C.CUSTOMER_ID: [r[0] for r in rows],
            C.AGENT_ID: [r[1] for r in rows],
            C.SKU_ID: [r[2] for r in rows],
            C.QTY: [r[4] for r in rows],
            C.UNIT_PRICE: [10.0] * len(rows),
            C.SHARE_ID: [None] * len(rows),
        }
    )
    returns = empty_table(Tables.RETURNS)
    shares = empty_table(Tables.SHARES)
    return {
        Tables.SKUS: skus,
        Tables.AGENTS: agents,
        Tables.CUSTOMERS: customers,
        Tables.SHARES: shares,
        Tables.PURCHASES: purchases,
        Tables.RETURNS: returns,
    }


def tiny_dataset(tables: dict[str, pd.DataFrame] | None = None) -> Dataset:
    """The agent-target Dataset of the tiny world (interactions = units bought per pair)."""
    tables = tables or tiny_tables()
    users, skus = IdMap(agent_ids()), IdMap(sku_ids())
    purchases = tables[Tables.PURCHASES]
    events = pd.DataFrame(
        {
            C.AGENT_ID: purchases[C.AGENT_ID],
            C.SKU_ID: purchases[C.SKU_ID],
            C.TS: purchases[C.TS],
            C.QTY: purchases[C.QTY],
            RETURNED_QTY: 0,
            USER_IDX: users.to_index(purchases[C.AGENT_ID].to_numpy()),
            SKU_IDX: skus.to_index(purchases[C.SKU_ID].to_numpy()),
        }
    )
    matrix = sp.coo_matrix(
        (events[C.QTY].astype(np.float32), (events[USER_IDX], events[SKU_IDX])),
        shape=(len(users), len(skus)),
    ).tocsr()
    sku_table = tables[Tables.SKUS]
    return Dataset(
        target="agent",
        users=users,
        skus=skus,
        interactions=matrix,
        events=events,
        user_table=tables[Tables.AGENTS],
        sku_table=sku_table,
        cutoff=NOW,
        sku_available=(sku_table[C.STATUS] == "active").to_numpy(),
    )


class FixedRecommender(BaseRecommender):
    """Scores SKU j for agent i as ((i * 7 + j * 3 + shift) % 20) / 20: distinct and known."""

    name: ClassVar[str] = "fixed"

    def __init__(self, shift: int = 0, random_state: int = 0) -> None:
        self.shift = shift
        self.random_state = random_state

    def _fit(self, dataset: Dataset) -> None:
        self.fitted_ = True

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        j = np.arange(len(self.skus_))
        raw = (user_idx[:, None] * 7 + j[None, :] * 3 + self.shift) % 20
        return (raw / 20.0).astype(np.float32)

    def _sku_vectors(self) -> np.ndarray:
        j = np.arange(len(self.skus_), dtype=np.float32)
        return np.stack([np.cos(j), np.sin(j)], axis=1)


class FailingRecommender(FixedRecommender):
    """A FixedRecommender whose `recommend` raises on call number `fail_on` (1-based)."""

    name: ClassVar[str] = "failing"

    def __init__(self, fail_on: int = 3, shift: int = 0, random_state: int = 0) -> None:
        super().__init__(shift=shift, random_state=random_state)
        self.fail_on = fail_on
        self.calls = 0

    def recommend(self, ids, k=20, exclude_seen=False):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError(f"scoring exploded on call {self.calls}")
        return super().recommend(ids, k=k, exclude_seen=exclude_seen)


class NanRecommender(FixedRecommender):
    """A FixedRecommender whose scores are NaN from its second `recommend` call on."""

    name: ClassVar[str] = "nan"

    def recommend(self, ids, k=20, exclude_seen=False):  # type: ignore[no-untyped-def]
        reco = super().recommend(ids, k=k, exclude_seen=exclude_seen)
        self.calls_ = getattr(self, "calls_", 0) + 1
        if self.calls_ >= 2:
            reco[C.SCORE] = np.float32("nan")
        return reco
