"""publish_snapshot and rollback against a real Redis: round trip, atomic flip, failures, TTLs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import redis

from recsys.cache.codec import decode_arrays
from recsys.cache.keys import CacheKeys, bucket_of
from recsys.cache.snapshot import load_snapshot, read_current, read_picks, read_similar
from recsys.columns import Columns
from recsys.reasons import reason_id
from tests.publish.conftest import World
from tests.publish.helpers import FailingRecommender, FixedRecommender, NanRecommender, tiny_dataset
from training.publish import PublishError, publish_snapshot, rollback
from training.publish_writer import LOCK_TTL, SnapshotWriter

C = Columns
KEYS = CacheKeys("agent")
Publish = Callable[..., Any]


def _snapshot_keys(client: redis.Redis, snapshot: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"reco:v1:agent:{snapshot}:*"))


def test_publish_round_trip_reads_back_the_models_picks(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    report = publish(redis_client)
    assert read_current(redis_client, "agent") == report.snapshot
    snap = load_snapshot(redis_client, "agent")
    assert snap.snapshot_id == report.snapshot
    reco = world.model.recommend(world.users, k=10)
    for user, expected in reco.groupby(C.AGENT_ID, sort=False):
        picks = read_picks(redis_client, snap, str(user))
        assert picks is not None
        assert snap.skus.sku_ids[picks.sku_index].tolist() == expected[C.SKU_ID].tolist()
        np.testing.assert_allclose(picks.score, expected[C.SCORE], rtol=2**-10)
    assert read_picks(redis_client, snap, "nobody") is None
    meta = snap.meta
    assert (meta["model_name"], meta["model_version"], meta["run_id"]) == ("fixed", "3", "r1")
    assert (meta["target"], meta["top_n"], meta["n_buckets"]) == ("agent", 10, 4)
    assert meta["counts"] == {
        "users": 24,
        "users_without_picks": 0,
        "picks": 240,
        "dropped_picks": 0,
        "skus": 20,
        "fallback_lists": 6,
        "similar": 20,  # every SKU has a list (of active SKUs only)
    }
    assert sorted(snap.fallbacks) == sorted(world.fallbacks)
    assert snap.skus.sku_ids.tolist() == world.sku_table[C.SKU_ID].tolist()


def test_publish_counts_match_what_redis_holds(redis_client: redis.Redis, publish: Publish) -> None:
    report = publish(redis_client)
    users = sum(redis_client.hlen(KEYS.picks(report.snapshot, b)) for b in range(4))
    assert (report.n_users, users, report.n_picks) == (24, 24, 240)
    # 8-byte header + 10 picks × 8 bytes + 5 bytes per second reason
    extras = 0
    for b in range(4):
        for blob in redis_client.hvals(KEYS.picks(report.snapshot, b)):
            extras += int((decode_arrays(blob).reasons[:, 1] > 0).sum())
    assert report.bytes_picks == 24 * (8 + 80) + 5 * extras
    assert redis_client.zrange(KEYS.snapshots, 0, -1) == [report.snapshot.encode()]
    assert not redis_client.exists(KEYS.pending) and not redis_client.exists(KEYS.lock)


def test_publish_flips_the_pointer_only_at_the_end(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    first = publish(redis_client)
    seen: list[tuple[str | None, list[int]]] = []

    class Spy(FixedRecommender):
        def recommend(self, ids, k=20, exclude_seen=False):  # type: ignore[no-untyped-def]
            new = [s for s in redis_client.zrange(KEYS.pending, 0, -1)]
            ttls = [redis_client.ttl(k) for k in _snapshot_keys(redis_client, new[0].decode())]
            seen.append((read_current(redis_client, "agent"), ttls))
            return super().recommend(ids, k=k, exclude_seen=exclude_seen)

    second = publish(redis_client, Spy(shift=5).fit(tiny_dataset(world.tables)))
    assert len(seen) == 5
    # while scoring, `current` is the old snapshot and the new keys carry their safety TTL
    assert all(cur == first.snapshot for cur, _ in seen)
    assert all(ttls and min(ttls) > 0 for _, ttls in seen)
    assert read_current(redis_client, "agent") == second.snapshot
    assert all(redis_client.ttl(k) == -1 for k in _snapshot_keys(redis_client, second.snapshot))


def test_publish_failure_in_scoring_leaves_the_live_snapshot(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    live = publish(redis_client).snapshot
    failing = FailingRecommender(fail_on=3).fit(tiny_dataset(world.tables))
    with pytest.raises(
        PublishError, match=r"while scoring batch 3/5 \(5 users from 'a\d\d'\)"
    ) as err:
        publish(redis_client, failing)
    assert f"live snapshot ({live}) is unchanged" in str(err.value)
    assert "scoring exploded on call 3" in str(err.value)
    assert read_current(redis_client, "agent") == live
    assert _snapshot_keys(redis_client, err.value.snapshot or "") == []
    assert not redis_client.exists(KEYS.pending) and not redis_client.exists(KEYS.lock)


def test_publish_redis_error_mid_write_leaves_the_live_snapshot(
    redis_client: redis.Redis, publish: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = publish(redis_client).snapshot
    real_execute = redis.client.Pipeline.execute
    calls = {"n": 0}

    def flaky(self, raise_on_error=True):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:  # after the id check, the static keys and two batches
            raise redis.ConnectionError("connection reset by peer")
        return real_execute(self, raise_on_error)

    monkeypatch.setattr(redis.client.Pipeline, "execute", flaky)
    with pytest.raises(PublishError, match=r"while encoding and writing batch 2/5.*reset") as err:
        publish(redis_client)
    monkeypatch.undo()
    assert read_current(redis_client, "agent") == live
    assert _snapshot_keys(redis_client, err.value.snapshot or "") == []


def test_publish_rejects_nan_scores_and_names_the_batch(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    model = NanRecommender().fit(tiny_dataset(world.tables))
    with pytest.raises(PublishError, match=r"batch 2/5.*scores must be finite, got nan"):
        publish(redis_client, model)
    assert read_current(redis_client, "agent") is None
    assert list(redis_client.scan_iter(match="reco:v1:agent:*")) == []


def test_publish_count_mismatch_is_caught_before_the_flip(
    redis_client: redis.Redis, publish: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = publish(redis_client).snapshot
    real = SnapshotWriter.write_meta

    def evicting(self: SnapshotWriter, meta: bytes) -> None:
        real(self, meta)
        self.client.hdel(self.keys.picks(self.snapshot, bucket_of("a05", 4)), "a05")

    monkeypatch.setattr(SnapshotWriter, "write_meta", evicting)
    with pytest.raises(PublishError, match="count check failed: 23 users' picks in Redis, 24"):
        publish(redis_client)
    assert read_current(redis_client, "agent") == live


def test_publish_refuses_while_another_publish_holds_the_lock(
    redis_client: redis.Redis, publish: Publish
) -> None:
    redis_client.set(KEYS.lock, "publish other", ex=LOCK_TTL)
    with pytest.raises(PublishError, match="another publish or rollback of target 'agent'"):
        publish(redis_client)
    assert redis_client.get(KEYS.lock) == b"publish other"


def test_publish_validates_arguments_before_writing(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    with pytest.raises(ValueError, match="top_n must be an integer >= 1, got 0"):
        publish(redis_client, top_n=0)
    no_global = {k: v for k, v in world.fallbacks.items() if k != "global"}
    with pytest.raises(ValueError, match="fallbacks must include a 'global' list"):
        publish(redis_client, fallbacks=no_global)
    assert redis_client.dbsize() == 0


def test_rollback_swaps_current_and_previous(redis_client: redis.Redis, publish: Publish) -> None:
    with pytest.raises(PublishError, match="no previous agent snapshot to roll back to"):
        rollback(redis_client, "agent")
    first = publish(redis_client).snapshot
    second = publish(redis_client).snapshot
    assert first != second
    result = rollback(redis_client, "agent")
    assert (result.current, result.replaced) == (first, second)
    assert read_current(redis_client, "agent") == first
    assert redis_client.get(KEYS.previous) == second.encode()
    assert rollback(redis_client, "agent").current == second


def test_older_snapshots_expire_and_previous_is_kept(
    redis_client: redis.Redis, publish: Publish
) -> None:
    a = publish(redis_client, ttl_old=1000).snapshot
    b = publish(redis_client, ttl_old=1000).snapshot
    assert all(redis_client.ttl(k) == -1 for k in _snapshot_keys(redis_client, a))
    c = publish(redis_client, ttl_old=1000)
    assert c.expiring == [a]
    assert all(0 < redis_client.ttl(k) <= 1000 for k in _snapshot_keys(redis_client, a))
    assert len(_snapshot_keys(redis_client, a)) == 4 + 1 + 3
    for snap in (b, c.snapshot):
        assert all(redis_client.ttl(k) == -1 for k in _snapshot_keys(redis_client, snap))
    # once an old snapshot is gone, the next publish forgets it
    for key in _snapshot_keys(redis_client, a):
        redis_client.delete(key)
    d = publish(redis_client, ttl_old=1000)
    assert d.expiring == [b]
    assert a.encode() not in redis_client.zrange(KEYS.snapshots, 0, -1)


def test_concurrent_readers_never_see_a_mixed_snapshot(
    redis_url: str, redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    rows = pd.Index(world.sku_table[C.SKU_ID])
    expected = {
        version: rows.get_indexer(m.recommend(["a05"], k=10)[C.SKU_ID]).tolist()
        for version, m in (("3", world.model), ("4", world.other))
    }
    assert expected["3"] != expected["4"]
    publish(redis_client)
    stop = threading.Event()
    reads: list[str] = []
    errors: list[str] = []

    def reader() -> None:
        client = redis.Redis.from_url(redis_url)
        while not stop.is_set():
            cur = client.get(KEYS.current).decode()  # read the pointer once ...
            raw_meta = client.get(KEYS.meta(cur))  # ... then only keys of that snapshot
            if raw_meta is None:
                errors.append(f"{cur}: meta missing")
                continue
            meta = orjson.loads(raw_meta)
            blob = client.hget(KEYS.picks(cur, bucket_of("a05", meta["n_buckets"])), "a05")
            if blob is None:
                errors.append(f"{cur}: picks missing")
                continue
            got = decode_arrays(blob).sku_index.tolist()
            if meta["snapshot"] != cur or got != expected[meta["model_version"]]:
                errors.append(f"{cur}: mixed read {meta['model_version']} {got}")
            reads.append(cur)
        client.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        published = [
            publish(redis_client, world.other, meta={"model_version": "4"}).snapshot,
            publish(redis_client, world.model, meta={"model_version": "3"}).snapshot,
            publish(redis_client, world.other, meta={"model_version": "4"}).snapshot,
        ]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert errors == []
    assert len(reads) > 20
    assert set(reads) & set(published)  # the reader saw new snapshots go live


def test_reasons_are_true_for_their_picks(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    publish(redis_client)
    snap = load_snapshot(redis_client, "agent")
    purchases = world.tables["purchases"]
    buyers = purchases.groupby([C.AGENT_ID, C.SKU_ID])[C.CUSTOMER_ID].nunique().to_dict()
    region_of = world.regions.to_dict()
    region_buyers = {
        (name.split(":")[1], sku): n
        for name, frame in world.fallbacks.items()
        if name.startswith("region:")
        for sku, n in zip(frame[C.SKU_ID], frame["n_buyers"], strict=True)
    }
    rebuy, pick, in_region = (
        reason_id(c) for c in ("customers_rebuy", "picked_for_you", "popular_in_region")
    )
    n_rebuy = 0
    for user in world.users:
        picks = read_picks(redis_client, snap, user)
        assert picks is not None
        for sku, rsn, prm in zip(
            snap.skus.sku_ids[picks.sku_index], picks.reasons, picks.params, strict=True
        ):
            n = buyers.get((user, sku), 0)
            assert (rsn[0], prm[0]) == ((rebuy, n) if n else (pick, 0))
            n_rebuy += bool(n)
            m = region_buyers.get((region_of[user], sku), 0)
            assert (rsn[1], prm[1], rsn[2]) == ((in_region, m, 0) if m else (0, 0, 0))
    assert n_rebuy > 5  # the check above did see rebuy picks


def test_fallback_lists_and_similar_skus_are_published(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    publish(redis_client)
    snap = load_snapshot(redis_client, "agent")
    glob = snap.fallbacks["global"]
    expected = world.fallbacks["global"]
    assert snap.skus.sku_ids[glob.sku_index].tolist() == expected[C.SKU_ID].tolist()
    assert glob.reasons[:, 0].tolist() == [reason_id("popular_overall")] * len(expected)
    assert glob.params[:, 0].tolist() == expected["n_buyers"].tolist()
    tier = snap.fallbacks["tier:2"]
    assert set(tier.reasons[:, 0].tolist()) == {reason_id("popular_with_tier")}
    assert set(tier.params[:, 0].tolist()) == {2}
    similar = read_similar(redis_client, snap, "s01")
    truth = world.model.similar_skus(["s01"], k=20)
    assert similar is not None
    assert snap.skus.sku_ids[similar.sku_index].tolist() == truth["similar_sku_id"].tolist()


def test_publish_drops_picks_of_skus_missing_from_the_table(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    table = world.sku_table[world.sku_table[C.SKU_ID] != "s06"].reset_index(drop=True)
    report = publish(redis_client, sku_table=table, similar_k=0)
    in_top10 = int((world.model.recommend(world.users, k=10)[C.SKU_ID] == "s06").sum())
    assert in_top10 > 0 and report.n_dropped_picks == in_top10
    assert report.n_picks == 240 - in_top10 and report.n_similar == 0


def test_publish_marks_users_the_model_cannot_score_as_popular(
    redis_client: redis.Redis, world: World
) -> None:
    users = np.array(["a01", "newcomer"], dtype=object)
    publish_snapshot(
        redis_client,
        "agent",
        world.model,
        users,
        sku_table=world.sku_table,
        fallbacks=world.fallbacks,
        meta={},
        top_n=5,
        progress=False,
        similar_k=0,
    )
    snap = load_snapshot(redis_client, "agent")
    known = read_picks(redis_client, snap, "a01")
    cold = read_picks(redis_client, snap, "newcomer")
    assert known is not None and cold is not None
    assert set(known.reasons[:, 0].tolist()) == {reason_id("picked_for_you")}
    assert set(cold.reasons[:, 0].tolist()) == {reason_id("popular_overall")}
    assert snap.snapshot_id.split("-")[1] == "local"


def test_publish_to_a_channel_leaves_current_and_is_never_expired(
    redis_client: redis.Redis, publish: Publish, world: World
) -> None:
    main = publish(redis_client, ttl_old=1000).snapshot
    challenger = publish(redis_client, model=world.other, ttl_old=1000, channel="challenger")
    assert redis_client.get(KEYS.current).decode() == main
    assert redis_client.get(KEYS.pointer("challenger")).decode() == challenger.snapshot
    assert redis_client.smembers(KEYS.channels) == {b"challenger"}
    # Two more main publishes would expire anything no pointer refers to, but not the channel's.
    publish(redis_client, ttl_old=1000)
    third = publish(redis_client, ttl_old=1000)
    assert third.expiring == [main]
    assert all(redis_client.ttl(k) == -1 for k in _snapshot_keys(redis_client, challenger.snapshot))
    with pytest.raises(ValueError, match="channel must match"):
        KEYS.pointer("bad channel!")
