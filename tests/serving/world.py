"""A tiny hand-made world for serving tests, published with the real publisher.

30 SKUs s00..s29: category snacks / beauty / home by i % 3; SKUs with i % 5 == 1 are sold only
in "north", the rest everywhere; s28 is discontinued and s29 suspended in the catalogue.
`RotatingRecommender(shift)` ranks, for user number u, SKU s{(u + shift) % 30} first, then
s{(u + shift + 1) % 30}, ... so every published list is known in advance; lists are cut to
TOP_N = 10 picks, so filters must refill from the fallback lists:

- global: s15..s24 (n_buyers 10..1); region:north: s21, s26, s11, s16; region:south: s12,
  s13, s14; tier:3: s03, s04.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.data.dataset import RETURNED_QTY, SKU_IDX, USER_IDX, Dataset, user_column
from recsys.data.id_map import IdMap
from recsys.models.base import BaseRecommender
from training.publish import PublishReport, publish_snapshot
from training.publish_inputs import History

C = Columns
N_SKUS = 30
TOP_N = 10
NOW = pd.Timestamp("2026-11-01", tz="UTC")
SKUS = [f"s{i:02d}" for i in range(N_SKUS)]
AGENTS = [f"a{i:02d}" for i in range(24)]
CUSTOMERS = [f"c{i:02d}" for i in range(6)]
CATEGORY = ["snacks", "beauty", "home"]
NORTH_ONLY = {s for i, s in enumerate(SKUS) if i % 5 == 1}
FALLBACKS: dict[str, list[str]] = {
    "global": [f"s{i}" for i in range(15, 25)],
    "region:north": ["s21", "s26", "s11", "s16"],
    "region:south": ["s12", "s13", "s14"],
    "tier:3": ["s03", "s04"],
}


def sku_table() -> pd.DataFrame:
    """The catalogue rows the snapshot carries (status as of publishing)."""
    return pd.DataFrame(
        {
            C.SKU_ID: SKUS,
            C.TITLE: [f"product {i}" for i in range(N_SKUS)],
            C.CATEGORY: [CATEGORY[i % 3] for i in range(N_SKUS)],
            C.SERIES: [None] * N_SKUS,
            C.BRAND: ["B"] * N_SKUS,
            C.PRICE: [10.0 + i for i in range(N_SKUS)],
            C.STATUS: [
                "discontinued" if i == 28 else "suspended" if i == 29 else "active"
                for i in range(N_SKUS)
            ],
            C.REGIONS: [["north"] if s in NORTH_ONLY else [] for s in SKUS],
        }
    )


def fallbacks() -> dict[str, pd.DataFrame]:
    """The fallback lists of the module docstring (score = n_buyers = length - position)."""
    out = {}
    for name, skus in FALLBACKS.items():
        n = len(skus)
        out[name] = pd.DataFrame(
            {
                C.SKU_ID: skus,
                C.SCORE: np.arange(n, 0, -1, dtype=float),
                "n_buyers": np.arange(n, 0, -1),
            }
        )
    return out


def dataset(target: str, users: list[str]) -> Dataset:
    """A Dataset with no interactions: the rotating model needs none."""
    ucol = user_column(target)
    events = pd.DataFrame(
        {
            ucol: pd.Series([], dtype=object),
            C.SKU_ID: pd.Series([], dtype=object),
            C.TS: pd.Series([], dtype="datetime64[ns, UTC]"),
            C.QTY: pd.Series([], dtype=np.int64),
            RETURNED_QTY: pd.Series([], dtype=np.int64),
            USER_IDX: pd.Series([], dtype=np.int64),
            SKU_IDX: pd.Series([], dtype=np.int64),
        }
    )
    return Dataset(
        target=target,  # type: ignore[arg-type]
        users=IdMap(users),
        skus=IdMap(SKUS),
        interactions=sp.csr_matrix((len(users), N_SKUS), dtype=np.float32),
        events=events,
        user_table=pd.DataFrame({ucol: users}),
        sku_table=sku_table(),
        cutoff=NOW,
        # Everything is scorable: the snapshot's SKU table, not the model, says what is sellable.
        sku_available=np.ones(N_SKUS, dtype=bool),
    )


class RotatingRecommender(BaseRecommender):
    """User u ranks s{(u + shift) % 30} first, then the following SKUs in order."""

    name: ClassVar[str] = "rotating"
    scores_cold_users: ClassVar[bool] = True

    def __init__(self, shift: int = 0, random_state: int = 0) -> None:
        self.shift = shift
        self.random_state = random_state

    def _fit(self, dataset: Dataset) -> None:
        self.fitted_ = True

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        j = np.arange(N_SKUS)
        distance = (j[None, :] - user_idx[:, None] - self.shift) % N_SKUS
        return ((N_SKUS - distance) / N_SKUS).astype(np.float32)

    def _sku_vectors(self) -> np.ndarray:
        # SKUs on a circle: s{j}'s nearest neighbours are s{j-1} and s{j+1}, then s{j±2}.
        angle = 2 * np.pi * np.arange(N_SKUS) / N_SKUS
        return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def expected(users: list[str], user: str, shift: int = 0, k: int = TOP_N) -> list[str]:
    """The published list (first k) of `user` under `RotatingRecommender(shift)`."""
    u = users.index(user)
    return [SKUS[(u + shift + i) % N_SKUS] for i in range(min(k, TOP_N))]


def publish(
    client: Any,
    target: str = "agent",
    shift: int = 0,
    *,
    version: str = "1",
    history: dict[tuple[str, str], int] | None = None,
) -> PublishReport:
    """Fit a rotating model on the tiny world and publish it with the real publisher."""
    users = AGENTS if target == "agent" else CUSTOMERS
    model = RotatingRecommender(shift=shift).fit(dataset(target, users))
    hist = None
    if history:
        rows = [users.index(u) for u, _ in history]
        cols = [SKUS.index(s) for _, s in history]
        counts = sp.csr_matrix(
            (np.array(list(history.values()), dtype=np.float32), (rows, cols)),
            shape=(len(users), N_SKUS),
        )
        hist = History(pd.Index(users), counts, exact=True)
    return publish_snapshot(
        client,
        target,
        model,
        users,
        sku_table=sku_table(),
        fallbacks=fallbacks(),
        meta={"model_name": "rotating", "model_version": version},
        top_n=TOP_N,
        batch_size=10,
        progress=False,
        history=hist,
        similar_k=6,
    )


BLOCKED = {"s28", "s29"}  # discontinued / suspended in the catalogue


def served(users: list[str], user: str, shift: int, k: int) -> list[str]:
    """What the service must answer (no hints): the published list without blocked SKUs,
    refilled from the global fallback list."""
    out = [s for s in expected(users, user, shift) if s not in BLOCKED]
    out += [s for s in FALLBACKS["global"] if s not in out and s not in BLOCKED]
    return out[:k]
