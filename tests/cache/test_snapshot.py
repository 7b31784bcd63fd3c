"""Reading helpers: SKU table, serve-time filters with refill, suspensions, missing snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.cache.codec import decode_arrays, encode_picks
from recsys.cache.snapshot import (
    SnapshotMissingError,
    decode_sku_table,
    encode_sku_table,
    load_snapshot,
    read_current,
    read_meta,
    read_suspended,
    suspend_sku,
    take_allowed,
    unsuspend_sku,
)
from recsys.columns import Columns

C = Columns


def _skus() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.SKU_ID: ["s0", "s1", "s2", "s3", "s4"],
            C.TITLE: ["nuts", "cream", "chips", "serum", "tea"],
            C.CATEGORY: ["snacks", "beauty", "snacks", "beauty", "drinks"],
            C.SERIES: [None, "glow", None, None, None],
            C.BRAND: ["A", "B", "A", "C", "D"],
            C.PRICE: [10.0, 50.5, 20.0, 100.0, 5.0],
            C.STATUS: ["active", "active", "active", "discontinued", "active"],
            C.REGIONS: [[], ["north"], ["south", "east"], [], ["north", "south"]],
        }
    )


def test_sku_table_round_trips_through_arrow() -> None:
    table = decode_sku_table(encode_sku_table(_skus()))
    assert len(table) == 5
    assert table.sku_ids.tolist() == ["s0", "s1", "s2", "s3", "s4"]
    assert table.frame[C.PRICE].tolist() == [10.0, 50.5, 20.0, 100.0, 5.0]
    regions = [list(r) for r in table.frame[C.REGIONS]]
    assert regions == [[], ["north"], ["south", "east"], [], ["north", "south"]]
    assert table.index_of(["s2", "nope", "s0"]).tolist() == [2, -1, 0]


def test_encode_sku_table_names_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['regions'\]"):
        encode_sku_table(_skus().drop(columns=[C.REGIONS]))


def test_sku_table_allowed_applies_every_filter() -> None:
    table = decode_sku_table(encode_sku_table(_skus()))
    # s3 is discontinued; an empty regions list means sold everywhere
    assert table.allowed().tolist() == [True, True, True, False, True]
    assert table.allowed(region="north").tolist() == [True, True, False, False, True]
    assert table.allowed(region="west").tolist() == [True, False, False, False, False]
    assert table.allowed(category="snacks").tolist() == [True, False, True, False, False]
    allowed = table.allowed(region="south", exclude=["s0", "zz"], suspended=["s4"])
    assert allowed.tolist() == [False, False, True, False, False]


def test_take_allowed_refills_from_later_lists_without_duplicates() -> None:
    personal = decode_arrays(encode_picks([3, 5, 7, 1], [4.0, 3.0, 2.0, 1.0], n_skus=10))
    fallback = decode_arrays(encode_picks([5, 9, 1, 2], [4.0, 3.0, 2.0, 1.0], n_skus=10))
    allowed = np.ones(10, dtype=bool)
    allowed[[7, 3]] = False
    # personal: 5, 1 (3 and 7 filtered); then fallback: 9, 2 (5 and 1 already taken)
    assert take_allowed([personal, fallback], allowed, k=4) == [(0, 1), (0, 3), (1, 1), (1, 3)]
    assert take_allowed([personal, fallback], allowed, k=2) == [(0, 1), (0, 3)]
    assert take_allowed([], allowed, k=3) == []


def test_suspensions_are_global_and_reversible(redis_client) -> None:  # type: ignore[no-untyped-def]
    assert read_suspended(redis_client) == {}
    suspend_sku(redis_client, "s1", {"reason": "complaints", "by": "ops"})
    suspend_sku(redis_client, "s2", {"reason": "recall"})
    assert read_suspended(redis_client) == {
        "s1": {"reason": "complaints", "by": "ops"},
        "s2": {"reason": "recall"},
    }
    assert unsuspend_sku(redis_client, "s1") is True
    assert unsuspend_sku(redis_client, "s1") is False
    assert list(read_suspended(redis_client)) == ["s2"]


def test_reading_nothing_published(redis_client) -> None:  # type: ignore[no-untyped-def]
    assert read_current(redis_client, "agent") is None
    with pytest.raises(SnapshotMissingError, match="no agent snapshot is published"):
        load_snapshot(redis_client, "agent")
    with pytest.raises(SnapshotMissingError, match="no meta for customer snapshot"):
        read_meta(redis_client, "customer", "20261128T010203Z-v3-1a2b")


def test_sku_table_masks_for_unknown_request_values_are_not_cached() -> None:
    table = decode_sku_table(encode_sku_table(_skus()))
    assert table.allowed(category="toys").tolist() == [False] * 5
    assert table.available_in("mars").tolist() == [True, False, False, True, False]
    table.available_in("north")
    table.in_category("snacks")
    assert (list(table._region_masks), list(table._category_masks)) == (["north"], ["snacks"])
