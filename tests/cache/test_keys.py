"""Key names, snapshot ids and buckets: the parts of the contract a reader recomputes."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from recsys.cache.keys import (
    SUSPENDED,
    CacheKeys,
    bucket_of,
    buckets_of,
    check_n_buckets,
    check_snapshot_id,
    fallback_field,
    n_buckets_for,
    new_snapshot_id,
)

SNAP = "20261128T010203Z-v3-1a2b"


def test_cache_keys_layout_for_agents() -> None:
    keys = CacheKeys("agent")
    assert keys.current == "reco:v1:{agent}:current"
    assert keys.previous == "reco:v1:{agent}:previous"
    assert keys.snapshots == "reco:v1:{agent}:snapshots"
    assert keys.meta(SNAP) == f"reco:v1:agent:{SNAP}:meta"
    assert keys.skus(SNAP) == f"reco:v1:agent:{SNAP}:skus"
    assert keys.fallbacks(SNAP) == f"reco:v1:agent:{SNAP}:fallbacks"
    assert keys.picks(SNAP, 7) == f"reco:v1:agent:{SNAP}:picks:7"
    assert keys.similar(SNAP, 0) == f"reco:v1:agent:{SNAP}:similar:0"
    assert SUSPENDED == "reco:v1:suspended"
    assert CacheKeys("customer").current == "reco:v1:{customer}:current"


def test_control_keys_share_one_cluster_slot() -> None:
    # The flip script touches these keys together: on a Redis Cluster they must share a slot.
    for target in ("agent", "customer"):
        keys = CacheKeys(target)
        control = [keys.current, keys.previous, keys.snapshots, keys.pending, keys.lock]
        assert len({key_slot(k.encode()) for k in control}) == 1
    # ... while a snapshot's buckets spread over slots.
    buckets = {key_slot(CacheKeys("agent").picks(SNAP, b).encode()) for b in range(64)}
    assert len(buckets) > 32


def test_snapshot_keys_lists_every_key_meta_last() -> None:
    names = CacheKeys("agent").snapshot_keys(SNAP, n_buckets=4, n_similar_buckets=2)
    assert len(names) == 4 + 2 + 3
    assert names[-1].endswith(":meta")


def test_cache_keys_rejects_bad_target_and_snapshot() -> None:
    with pytest.raises(ValueError, match="target must be one of"):
        CacheKeys("shop")
    with pytest.raises(ValueError, match="snapshot must look like"):
        CacheKeys("agent").meta("latest")
    with pytest.raises(ValueError, match="snapshot must look like"):
        check_snapshot_id("20261128T010203Z-v3-1a2b:meta")


def test_new_snapshot_id_is_well_formed_and_sorts_by_time() -> None:
    t0 = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)
    first = new_snapshot_id(3, now=t0)
    assert first.startswith("20261128T010203Z-v3-")
    assert check_snapshot_id(first) == first
    later = [new_snapshot_id("7", now=t0 + timedelta(seconds=s)) for s in (1, 60, 86_400)]
    assert sorted([*later, first]) == [first, *later]
    assert new_snapshot_id(None, now=t0).startswith("20261128T010203Z-local-")
    assert check_snapshot_id(new_snapshot_id("1.2:{x}", now=t0)).startswith(
        "20261128T010203Z-v1.2x-"
    )


@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=50), st.integers(0, 10))
def test_buckets_of_matches_bucket_of_and_crc32(ids: list[str], power: int) -> None:
    n = 1 << power
    expected = [zlib.crc32(i.encode()) % n for i in ids]
    assert [bucket_of(i, n) for i in ids] == expected
    np.testing.assert_array_equal(buckets_of([i.encode() for i in ids], n), expected)


def test_n_buckets_for_is_a_power_of_two_near_1024_users_each() -> None:
    assert [n_buckets_for(n) for n in (0, 1, 1024, 1025, 1_000_000)] == [1, 1, 1, 2, 1024]
    assert n_buckets_for(10**9) == 65536
    assert check_n_buckets(8) == 8
    with pytest.raises(ValueError, match="power of two"):
        check_n_buckets(6)
    with pytest.raises(ValueError, match="n_users must be >= 0"):
        n_buckets_for(-1)


def test_fallback_field_names() -> None:
    assert fallback_field("global") == "global"
    assert fallback_field("region", "north") == "region:north"
    assert fallback_field("tier", 3) == "tier:3"
    with pytest.raises(ValueError, match="kind must be global, region or tier"):
        fallback_field("city", "x")
    with pytest.raises(ValueError, match="needs a value"):
        fallback_field("region")
