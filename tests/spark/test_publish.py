"""`recsys publish --engine spark`: executors write the same snapshot the local publish writes."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.cache.keys import CacheKeys
from recsys.cache.snapshot import load_snapshot, read_current, read_meta, read_picks
from recsys.cli import app
from recsys.columns import Columns
from recsys.models.popular import PopularRecommender
from training.publish import publish_snapshot
from training.publish_inputs import (
    build_fallbacks,
    build_history,
    build_sku_table,
    user_ids,
    user_regions,
)
from training.publish_profiles import build_agent_profiles, build_sku_stats, encode_records
from training.publish_writer import PublishError
from training.spark import publish_inputs as spark_inputs
from training.spark.publish import _bucketed, publish_with_spark

pytestmark = pytest.mark.spark
C = Columns
runner = CliRunner()
TOP_N, SIMILAR_K, N_BUCKETS = 20, 10, 8
META = {"model_name": "als", "model_version": "7", "run_id": "r1"}


@pytest.mark.parametrize("target", ["agent", "customer"])
def test_publish_spark_fallbacks_equal_the_local_lists(
    spark_tables: dict[str, Any], local_tables: dict[str, pd.DataFrame], target: str
) -> None:
    got = spark_inputs.fallbacks(spark_tables, target, k=TOP_N)
    want = build_fallbacks(local_tables, target, k=TOP_N)
    assert got.keys() == want.keys() and len(want) > 3
    for name, frame in want.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)


def _local_publish(client: Any, model: Any, tables: dict[str, pd.DataFrame]) -> Any:
    """The local engine's publish of `model` with the same settings."""
    skus = build_sku_table(tables)
    return publish_snapshot(
        client,
        "agent",
        model,
        user_ids(tables, "agent"),
        sku_table=skus,
        fallbacks=build_fallbacks(tables, "agent", k=TOP_N),
        meta=META,
        top_n=TOP_N,
        progress=False,
        history=build_history(tables, "agent", skus[C.SKU_ID].to_numpy()),
        regions=user_regions(tables, "agent"),
        similar_k=SIMILAR_K,
        n_buckets=N_BUCKETS,
        profiles=build_agent_profiles(tables),
        sku_stats=build_sku_stats(tables),
    )


def _spark_publish(spark: Any, url: str, model: Any, data: Path, **extra: Any) -> Any:
    kwargs: dict[str, Any] = {
        "meta": META,
        "top_n": TOP_N,
        "similar_k": SIMILAR_K,
        "n_buckets": N_BUCKETS,
        "batch_size": 40,  # several batches per partition
        "n_partitions": 3,
    }
    kwargs.update(extra)
    return publish_with_spark(spark, url, "agent", model, str(data), **kwargs)


def _hashes(client: Any, keys: list[str]) -> dict[str, dict[bytes, bytes]]:
    return {
        key.rsplit(":", 2)[-2] + ":" + key.rsplit(":", 1)[-1]: client.hgetall(key) for key in keys
    }


def test_publish_spark_writes_the_local_snapshot_and_the_models_top_k(
    spark: Any,
    redis_client: Any,
    redis_url: str,
    spark_trained: Any,
    sim_tiny_dir: Path,
    local_tables: dict[str, pd.DataFrame],
) -> None:
    model = spark_trained.model
    local = _local_publish(redis_client, model, local_tables)
    report = _spark_publish(spark, redis_url, model, sim_tiny_dir)
    assert read_current(redis_client, "agent") == report.snapshot
    assert report.replaced == local.snapshot
    fields = ("n_users", "n_users_without_picks", "n_picks", "n_similar", "bytes_picks")
    for field in (*fields, "n_profiles", "n_sku_stats"):
        assert getattr(report, field) == getattr(local, field), field
    assert report.n_profiles == len(local_tables["agents"]) and report.n_sku_stats > 0
    assert report.n_users == len(local_tables["agents"]) and report.n_similar > 0

    # Byte for byte: picks with their reasons, similar SKUs, fallbacks and the SKU table.
    keys = CacheKeys("agent")
    for kind in ("picks", "similar"):
        key_of = keys.picks if kind == "picks" else keys.similar
        n = (
            N_BUCKETS
            if kind == "picks"
            else read_meta(redis_client, "agent", local.snapshot)["n_similar_buckets"]
        )
        for bucket in range(n):
            want = redis_client.hgetall(key_of(local.snapshot, bucket))
            assert redis_client.hgetall(key_of(report.snapshot, bucket)) == want, (kind, bucket)
    assert redis_client.hgetall(keys.fallbacks(report.snapshot)) == redis_client.hgetall(
        keys.fallbacks(local.snapshot)
    )
    assert redis_client.get(keys.skus(report.snapshot)) == redis_client.get(
        keys.skus(local.snapshot)
    )
    extras = [keys.sku_stats] + [lambda s, b=b: keys.profiles(s, b) for b in range(N_BUCKETS)]
    for key_of in extras:
        assert redis_client.hgetall(key_of(report.snapshot)) == redis_client.hgetall(
            key_of(local.snapshot)
        )
    meta = read_meta(redis_client, "agent", report.snapshot)
    assert meta["engine"] == "spark" and meta["model_version"] == "7"
    assert meta["counts"] == read_meta(redis_client, "agent", local.snapshot)["counts"]
    assert redis_client.ttl(keys.picks(report.snapshot, 0)) == -1  # permanent once live

    # What a reader gets back is the model's own top-k.
    snap = load_snapshot(redis_client, "agent")
    agents = np.sort(local_tables["agents"]["agent_id"].to_numpy(dtype=object))
    reco = model.recommend(agents, k=TOP_N)
    for agent, want in reco.groupby("agent_id", sort=False):
        picks = read_picks(redis_client, snap, agent)
        assert picks is not None
        assert snap.skus.sku_ids[picks.sku_index].tolist() == want[C.SKU_ID].tolist(), agent
        np.testing.assert_allclose(picks.score, want[C.SCORE].to_numpy(), rtol=2**-10)


def _last_partition_user(spark: Any, model: Any, n_parts: int) -> str:
    """An agent the scoring job handles in its last partition (so others write before it)."""
    from pyspark.sql import functions as F

    frame = spark.createDataFrame(pd.DataFrame({"user_id": model.users_.external_ids.astype(str)}))
    spread = _bucketed(frame, "user_id", N_BUCKETS, n_parts)
    rows = spread.where(F.spark_partition_id() == n_parts - 1).limit(1).collect()
    return str(rows[0]["user_id"])


def test_publish_spark_failure_mid_publish_leaves_the_live_snapshot(
    spark: Any,
    redis_client: Any,
    redis_url: str,
    spark_trained: Any,
    sim_tiny_dir: Path,
    local_tables: dict[str, pd.DataFrame],
) -> None:
    live = _local_publish(redis_client, spark_trained.model, local_tables).snapshot
    n_parts = 4
    broken = copy.deepcopy(spark_trained.model)
    victim = _last_partition_user(spark, broken, n_parts)
    broken.user_factors_[broken.users_.to_index([victim])[0]] = np.nan
    hsets = redis_client.info("commandstats")["cmdstat_hset"]["calls"]
    with pytest.raises(
        PublishError, match=r"non-finite user factors for 1 users.*is unchanged"
    ) as err:
        _spark_publish(spark, redis_url, broken, sim_tiny_dir, n_partitions=n_parts)
    # Other partitions had written (HSETs beyond the driver's one for the fallbacks)...
    assert redis_client.info("commandstats")["cmdstat_hset"]["calls"] > hsets + 1
    # ... and yet the live snapshot is the old one, and the failed one left nothing behind.
    failed = err.value.snapshot
    assert failed and failed != live
    assert read_current(redis_client, "agent") == live
    assert list(redis_client.scan_iter(match=f"*{failed}*")) == []
    keys = CacheKeys("agent")
    assert redis_client.zrange(keys.pending, 0, -1) == []
    assert not redis_client.exists(keys.lock)
    assert read_picks(redis_client, load_snapshot(redis_client, "agent"), victim) is not None


def test_publish_spark_refuses_a_model_without_factors(
    spark: Any, redis_client: Any, redis_url: str, sim_tiny_dir: Path
) -> None:
    popular = PopularRecommender()
    popular.target_ = "agent"
    with pytest.raises(ValueError, match="not a factor model.*--engine local"):
        _spark_publish(spark, redis_url, popular, sim_tiny_dir)
    assert redis_client.dbsize() == 0  # nothing written


def test_publish_cli_spark_publishes_a_registered_model(
    spark: Any, redis_client: Any, redis_url: str, spark_trained: Any
) -> None:
    result = runner.invoke(
        app,
        [
            "publish",
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--model",
            f"models:/item-to-agent/{spark_trained.model_version}",
            "--redis-url",
            redis_url,
            "--top-n",
            "5",
            "--similar-k",
            "0",
            "--no-profiles",
        ],
    )
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.output)
    assert "with Spark (local[2])" in text and "published agent snapshot" in text
    current = read_current(redis_client, "agent")
    assert current is not None and current in text
    meta = read_meta(redis_client, "agent", current)
    assert meta["engine"] == "spark" and meta["model_version"] == spark_trained.model_version
    assert meta["counts"]["similar"] == 0 and meta["top_n"] == 5
    assert "profiles" not in meta["counts"] and not redis_client.keys(f"*{current}*:profiles")


def test_profiles_and_sku_stats_equal_the_local_builders(
    spark_tables: dict[str, Any], local_tables: dict[str, pd.DataFrame]
) -> None:
    want = build_agent_profiles(local_tables).sort_index()
    got = spark_inputs.agent_profiles(spark_tables).sort_index()
    pd.testing.assert_frame_equal(got, want)
    # the data exercises the computed fields: price bands, three categories, returns
    assert want["price_band"].notna().sum() > 10 and want["top_categories"].map(len).max() == 3
    # and agents who sold nothing: no price band, no categories, units 0
    assert (want["price_band"].isna() & (want["units"] == 0)).sum() >= 1
    assert list(encode_records(got)) == list(encode_records(want))  # the JSON published
    stats, want_stats = spark_inputs.sku_stats(spark_tables), build_sku_stats(local_tables)
    pd.testing.assert_frame_equal(stats, want_stats)
    assert want_stats["returned"].sum() > 0
    with pytest.raises(ValueError, match="n_categories must be >= 1"):
        spark_inputs.agent_profiles(spark_tables, n_categories=0)
