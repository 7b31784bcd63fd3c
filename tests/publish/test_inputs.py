"""Publish inputs built from the tiny world's tables, with numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.columns import Columns
from tests.publish.conftest import World
from tests.publish.helpers import NOW, sku_ids
from training.publish_inputs import (
    N_BUYERS,
    History,
    build_fallbacks,
    build_history,
    build_sku_table,
    user_ids,
    user_regions,
)

C = Columns


def test_build_fallbacks_global_ranks_by_distinct_buyers(world: World) -> None:
    # s01-s03 have 4 buyers (8 kept units each), s00 and s04 have 3, the others 2.
    glob = build_fallbacks(world.tables, "agent", k=7)["global"]
    assert glob[C.SKU_ID].tolist() == ["s01", "s02", "s03", "s00", "s04", "s05", "s06"]
    assert glob[N_BUYERS].tolist() == [4, 4, 4, 3, 3, 2, 2]
    assert glob[C.SCORE].tolist() == [4.0, 4.0, 4.0, 3.0, 3.0, 2.0, 2.0]


def test_build_fallbacks_keeps_only_active_skus_sold_in_the_region(world: World) -> None:
    lists = build_fallbacks(world.tables, "agent", k=100)
    assert sorted(lists) == ["global", "region:north", "region:south", "tier:1", "tier:2", "tier:3"]
    for frame in lists.values():
        assert not {"s17", "s18"} & set(frame[C.SKU_ID])  # suspended, discontinued
    # odd SKUs are sold only in the north
    south = lists["region:south"][C.SKU_ID]
    assert all(int(s[1:]) % 2 == 0 for s in south)
    # agent a01 (south) sold s01 (odd, north only) and s02: only s02 counts in the south
    assert "s02" in set(south) and "s01" not in set(south)
    assert any(int(s[1:]) % 2 for s in lists["region:north"][C.SKU_ID])


def test_build_fallbacks_pads_the_global_list_when_the_window_is_empty(world: World) -> None:
    later = NOW + pd.Timedelta(days=60)
    lists = build_fallbacks(world.tables, "agent", k=5, now=later)
    assert list(lists) == ["global"]
    assert lists["global"][C.SKU_ID].tolist() == ["s01", "s02", "s03", "s00", "s04"]
    assert lists["global"][N_BUYERS].tolist() == [0] * 5


def test_build_fallbacks_rejects_bad_arguments(world: World) -> None:
    with pytest.raises(ValueError, match="k and window_days must be >= 1"):
        build_fallbacks(world.tables, "agent", k=0)
    with pytest.raises(ValueError, match="target must be one of"):
        build_fallbacks(world.tables, "shop")


def test_build_history_counts_customers_per_agent_and_orders_per_customer(
    world: World,
) -> None:
    skus = np.array(sku_ids(), dtype=object)
    agents = build_history(world.tables, "agent", skus)
    rows = agents.rows_of(np.array(["a00", "a00", "a00", "a20", "zz"], dtype=object))
    # a00: c00 bought s00 (two orders), c01 bought s01; a20: c40 bought s00
    assert agents.lookup(rows, np.array([0, 1, 2, 0, 0])).tolist() == [1, 1, 0, 1, 0]
    customers = build_history(world.tables, "customer", skus)
    rows = customers.rows_of(np.array(["c00", "c01", "c01"], dtype=object))
    assert customers.lookup(rows, np.array([0, 1, 0])).tolist() == [2, 1, 0]
    assert agents.exact and customers.exact


def test_history_from_model_is_a_flag_on_the_sku_table(world: World) -> None:
    table_order = np.array(sku_ids()[::-1], dtype=object)
    history = History.from_model(world.model, table_order)
    assert not history.exact
    rows = history.rows_of(np.array(["a03", "a03"], dtype=object))
    # a03's customers bought s03 and s04; in reversed order those are rows 16 and 15
    assert history.lookup(rows, np.array([16, 15])).tolist() == [1, 1]
    assert history.counts.sum() == world.model.seen_.sum()


def test_sku_table_users_and_regions(world: World) -> None:
    table = build_sku_table(world.tables)
    assert table[C.SKU_ID].tolist() == sku_ids()
    assert list(table.columns) == [
        C.SKU_ID, C.TITLE, C.CATEGORY, C.SERIES, C.BRAND, C.PRICE, C.STATUS, C.REGIONS,
    ]  # fmt: skip
    assert user_ids(world.tables, "agent").tolist()[:3] == ["a00", "a01", "a02"]
    assert len(user_ids(world.tables, "customer")) == 48
    assert user_regions(world.tables, "agent")["a01"] == "south"
    assert user_regions(world.tables, "customer")["c02"] == "south"
