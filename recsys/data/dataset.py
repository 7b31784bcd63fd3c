"""The training view of the logs that every recommender fits on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.data.id_map import IdMap

Target = Literal["agent", "customer"]
TARGETS: tuple[Target, ...] = ("agent", "customer")
USER_COLUMN: dict[str, str] = {"agent": Columns.AGENT_ID, "customer": Columns.CUSTOMER_ID}

# Column names of `Dataset.events` beyond the user id column.
USER_IDX = "user_idx"
SKU_IDX = "sku_idx"
RETURNED_QTY = "returned_qty"
FAULT_RETURNED_QTY = "fault_returned_qty"


@dataclass(frozen=True)
class WindowStats:
    """Distinct buyers and kept units per (group, SKU) over the purchase lines of the last
    `days` before the cutoff, aggregated where the lines are (the Spark engine) rather than
    collected as `Dataset.events`.

    `stats[kind]` for kind "global", "region" or "tier" has columns `group` (the region or
    tier value; None for "global"), `sku_idx`, `buyers` and `units` (kept units, each line's
    clipped at 0). Users without a region (tier) are not counted in that grouping.
    """

    days: int
    stats: Mapping[str, pd.DataFrame]


def user_column(target: str) -> str:
    """The id column of a target: `agent_id` for agents, `customer_id` for customers."""
    try:
        return USER_COLUMN[target]
    except KeyError:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}") from None


@dataclass
class Dataset:
    """Everything a recommender may learn from, for one target, up to `cutoff`.

    `users` and `skus` fix the index order of every matrix and aligned frame: row i of
    `interactions`, `user_table` and `user_features` is user `users.to_external([i])`.

    Attributes
    ----------
    target
        "agent" (item-to-agent) or "customer" (item-to-customer).
    users, skus
        Id maps; `users` holds every known agent/customer (also those with no interactions, so
        feature-based models can score them), `skus` the whole catalogue (also SKUs with no
        interactions yet: new launches stay candidates).
    interactions
        users × skus CSR matrix of float32 weights (features/weights.py says how they are built).
    events
        One row per purchase line before the cutoff attributed to the user: user id column,
        `sku_id`, `ts`, `qty`, `unit_price`, `returned_qty`, `fault_returned_qty`, plus integer
        `user_idx` and `sku_idx`.
    user_table, sku_table
        The agents/customers and skus tables aligned to the id maps.
    user_features, sku_features
        Side-feature tables aligned to the id maps (numeric columns; may be None).
    sku_available
        Boolean mask over skus: may be recommended (status active).
    cutoff
        The moment the training data ends; "now" for the model.
    tables
        The contract tables the dataset was built from, possibly holding events at or after the
        cutoff (models that need more than the matrix, e.g. the audience of an agent, read them
        and must cut them at `cutoff` themselves); None when built by hand.
    window_stats
        The popularity window already aggregated (`WindowStats`), when `events` does not hold
        the window's lines (the Spark engine); None: the popularity reads `events`.
    """

    target: Target
    users: IdMap
    skus: IdMap
    interactions: sp.csr_matrix
    events: pd.DataFrame
    user_table: pd.DataFrame
    sku_table: pd.DataFrame
    cutoff: pd.Timestamp
    sku_available: np.ndarray
    user_features: pd.DataFrame | None = None
    sku_features: pd.DataFrame | None = None
    fingerprint: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    tables: Mapping[str, pd.DataFrame] | None = field(default=None, repr=False, compare=False)
    window_stats: WindowStats | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_users, n_skus = self.interactions.shape
        if n_users != len(self.users) or n_skus != len(self.skus):
            raise ValueError(
                f"interactions shape {self.interactions.shape} does not match id maps "
                f"({len(self.users)} users, {len(self.skus)} skus)"
            )
        if len(self.sku_available) != n_skus:
            raise ValueError(f"sku_available has {len(self.sku_available)} rows, want {n_skus}")

    @property
    def user_col(self) -> str:
        """The id column of this target (`agent_id` or `customer_id`)."""
        return user_column(self.target)

    @property
    def n_users(self) -> int:
        """Number of users in the id map."""
        return len(self.users)

    @property
    def n_skus(self) -> int:
        """Number of SKUs in the catalogue id map."""
        return len(self.skus)
