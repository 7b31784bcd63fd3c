"""The tiny world, fitted models and a `publish` shortcut for the publish tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.columns import Columns
from tests.publish.helpers import FixedRecommender, tiny_dataset, tiny_tables
from training.publish import PublishReport, publish_snapshot
from training.publish_inputs import (
    History,
    build_fallbacks,
    build_history,
    build_sku_table,
    user_ids,
    user_regions,
)

C = Columns


@dataclass
class World:
    """Everything a publish of the tiny world needs."""

    tables: dict[str, pd.DataFrame]
    sku_table: pd.DataFrame
    fallbacks: dict[str, pd.DataFrame]
    history: History
    regions: pd.Series
    users: np.ndarray
    model: FixedRecommender
    other: FixedRecommender


@pytest.fixture(scope="session")
def world() -> World:
    """The tiny world with two fitted models whose picks differ (shift 0 and 5)."""
    tables = tiny_tables()
    dataset = tiny_dataset(tables)
    sku_table = build_sku_table(tables)
    return World(
        tables=tables,
        sku_table=sku_table,
        fallbacks=build_fallbacks(tables, "agent", k=10),
        history=build_history(tables, "agent", sku_table[C.SKU_ID].to_numpy()),
        regions=user_regions(tables, "agent"),
        users=user_ids(tables, "agent"),
        model=FixedRecommender(shift=0).fit(dataset),
        other=FixedRecommender(shift=5).fit(dataset),
    )


@pytest.fixture()
def publish(world: World) -> Callable[..., PublishReport]:
    """`publish(client, model=None, **overrides)` with the world's inputs and small batches."""

    def run(client: Any, model: Any = None, **overrides: Any) -> PublishReport:
        kwargs: dict[str, Any] = {
            "sku_table": world.sku_table,
            "fallbacks": world.fallbacks,
            "meta": {"model_name": "fixed", "model_version": "3", "run_id": "r1"},
            "top_n": 10,
            "batch_size": 5,
            "progress": False,
            "history": world.history,
            "regions": world.regions,
            "n_buckets": 4,
        }
        kwargs.update(overrides)
        return publish_snapshot(
            client, "agent", world.model if model is None else model, world.users, **kwargs
        )

    return run
