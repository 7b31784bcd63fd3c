"""Agent profiles and SKU return figures: built from known tables, published, kept, expired."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest

from recsys.cache.keys import CacheKeys, bucket_of
from recsys.cache.snapshot import load_snapshot
from recsys.columns import Columns, Tables
from serving.explorer.reader import profile_location
from tests.explorer.world import explorer_tables, publish_world
from tests.publish.helpers import FixedRecommender, tiny_dataset
from training.publish import PublishError, publish_snapshot
from training.publish_inputs import build_fallbacks, build_sku_table, user_ids
from training.publish_profiles import (
    build_agent_profiles,
    build_sku_stats,
)
from training.publish_writer import expire_snapshots, snapshot_key_names

C = Columns
KEYS = CacheKeys("agent")


def test_agent_profiles_hold_her_region_tier_audience_prices_and_categories() -> None:
    tables = explorer_tables()
    agents = pd.concat(
        [
            tables[Tables.AGENTS],
            pd.DataFrame(
                {
                    C.AGENT_ID: ["a99"],
                    C.REGION: ["east"],
                    C.TIER: [5],
                    C.JOINED_AT: [pd.Timestamp("2026-10-01", tz="UTC")],
                }
            ),
        ],
        ignore_index=True,
    )
    profiles = build_agent_profiles({**tables, Tables.AGENTS: agents})
    # a00: c00 bought s00 (10.0) twice, c01 two units of s01 (11.0), one of them came back.
    assert profiles.loc["a00"].to_dict() == {
        "region": "north",
        "tier": 1,
        "audience_size": 2,
        "buyers": 2,
        "units": 4,
        "return_rate": 0.25,
        "price_band": {"low": 10.0, "median": 10.0, "high": 11.0},
        "top_categories": [{"category": "snacks", "share": 1.0}],
    }
    # a01: s01 (11.0, snacks) 2 units, s02 (12.0, beauty) 2 units: a tie sorted by name.
    a01 = profiles.loc["a01"]
    assert (a01["region"], a01["tier"], a01["return_rate"]) == ("south", 2, 0.0)
    assert a01["price_band"] == {"low": 11.0, "median": 11.0, "high": 12.0}
    assert a01["top_categories"] == [
        {"category": "beauty", "share": 0.5},
        {"category": "snacks", "share": 0.5},
    ]
    # An agent with no customer and no sale: nothing is made up.
    a99 = profiles.loc["a99"].to_dict()
    assert (a99["audience_size"], a99["buyers"], a99["units"]) == (0, 0, 0)
    assert pd.isna(a99["return_rate"]) and a99["price_band"] is None
    assert a99["top_categories"] == []
    assert len(profiles) == 25


def test_top_categories_keep_the_n_biggest_by_units() -> None:
    tables = explorer_tables()
    assert build_agent_profiles(tables, n_categories=1).loc["a01", "top_categories"] == [
        {"category": "beauty", "share": 0.5}
    ]
    with pytest.raises(ValueError, match="n_categories must be >= 1, got 0"):
        build_agent_profiles(tables, n_categories=0)


def test_sku_stats_count_units_returned_at_most_once_per_unit_bought() -> None:
    tables = explorer_tables()
    stats = build_sku_stats(tables)
    # s01: 2 units each through a00, a01 (two orders), a20 and a21; one came back.
    assert stats.loc["s01"].to_dict() == {"units": 8, "returned": 1, "return_rate": 0.125}
    assert stats.loc["s00"].to_dict() == {"units": 6, "returned": 0, "return_rate": 0.0}
    # A return bigger than the line it refers to counts the line's units only.
    returns = tables[Tables.RETURNS].assign(**{C.QTY: [5]})
    capped = build_sku_stats({**tables, Tables.RETURNS: returns})
    assert capped.loc["s01", "returned"] == 2 and capped.loc["s01", "return_rate"] == 0.25


def test_profiles_and_stats_round_trip_through_redis(redis_client: Any) -> None:
    world = publish_world(redis_client)
    meta = load_snapshot(redis_client, "agent").meta
    assert (meta["counts"]["profiles"], meta["counts"]["sku_stats"]) == (24, 20)
    snap = world.current
    stored = redis_client.hget(KEYS.profiles(snap, bucket_of("a00", 4)), "a00")
    assert orjson.loads(stored) == {
        "region": "north",
        "tier": 1,
        "audience_size": 2,
        "buyers": 2,
        "units": 4,
        "return_rate": 0.25,
        "price_band": {"low": 10.0, "median": 10.0, "high": 11.0},
        "top_categories": [{"category": "snacks", "share": 1.0}],
    }
    stats = redis_client.hget(KEYS.sku_stats(snap), "s01")
    assert orjson.loads(stats) == {"units": 8, "returned": 1, "return_rate": 0.125}
    # The explorer finds records where the publisher put them.
    snapshot = load_snapshot(redis_client, "agent")
    for agent in world.profiles.index:
        key = KEYS.profiles(snap, bucket_of(agent, 4))
        assert profile_location(snapshot, agent) == (key, agent)
    # The names the cache contract documents (section 11), built in one place.
    bucket = bucket_of("a00", 4)
    assert KEYS.profiles(snap, bucket) == f"reco:v1:agent:{snap}:picks:{bucket}:profiles"
    assert KEYS.sku_stats(snap) == f"reco:v1:agent:{snap}:skus:stats"


def test_profile_keys_live_and_expire_with_their_snapshot(redis_client: Any) -> None:
    world = publish_world(redis_client)
    names = snapshot_key_names(redis_client, KEYS, world.current)
    assert names is not None
    extras = [KEYS.profiles(world.current, b) for b in range(4)]
    extras.append(KEYS.sku_stats(world.current))
    assert names[:5] == extras and names[-1] == KEYS.meta(world.current)
    assert all(redis_client.ttl(k) == -1 for k in names)  # live: no TTL
    expire_snapshots(redis_client, KEYS, [world.current], 1000)
    assert all(0 < redis_client.ttl(k) <= 1000 for k in extras)


def test_a_failed_publish_deletes_its_profiles_too(redis_client: Any) -> None:
    tables = explorer_tables()
    profiles = build_agent_profiles(tables)
    twice = pd.concat([profiles, profiles.iloc[:1]])  # a repeated agent: refused mid-publish
    with pytest.raises(PublishError, match="writing agent profiles and SKU stats") as err:
        publish_snapshot(
            redis_client,
            "agent",
            FixedRecommender().fit(tiny_dataset(tables)),
            user_ids(tables, "agent"),
            sku_table=build_sku_table(tables),
            fallbacks=build_fallbacks(tables, "agent", k=10),
            meta={},
            top_n=5,
            progress=False,
            n_buckets=4,
            profiles=twice,
            sku_stats=build_sku_stats(tables),
        )
    assert list(redis_client.scan_iter(match=f"reco:v1:agent:{err.value.snapshot}:*")) == []


def test_profiles_and_stats_go_together(redis_client: Any) -> None:
    tables = explorer_tables()
    with pytest.raises(ValueError, match="pass both profiles and sku_stats, or neither"):
        publish_snapshot(
            redis_client,
            "agent",
            FixedRecommender().fit(tiny_dataset(tables)),
            user_ids(tables, "agent"),
            sku_table=build_sku_table(tables),
            fallbacks=build_fallbacks(tables, "agent", k=10),
            meta={},
            progress=False,
            profiles=build_agent_profiles(tables),
        )
    assert redis_client.dbsize() == 0
