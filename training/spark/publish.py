"""`recsys publish --engine spark`: executors score and write a snapshot, the driver flips it.

The same snapshot as training/publish.py (keys, encoding, reasons, meta), written another way:

1. the driver takes the target's lock, registers the snapshot as pending and writes the SKU table
   and fallback lists (small);
2. users are spread over partitions by their picks bucket; the SKU-side model (item factors,
   popularity, availability: megabytes) is broadcast; each partition joins its users' factors,
   scores them block by block (`mapInPandas`), computes reasons with the local `PickReasons`,
   encodes with `recsys.cache.codec` and HSETs its buckets over one pipelined connection.
   Only a tally per partition comes back: the picks never pass through the driver;
3. similar SKUs the same way, partitioned by SKU;
4. the driver writes the meta record, checks every count in Redis against the tallies, drops the
   safety TTLs and flips the pointer with the local publish's Lua script.

Any failure before the flip (a partition, the count check) deletes the partial snapshot; the live
one is untouched. Writes are idempotent (HSET of the same field and value), so a task Spark
retries rewrites its buckets without double counting: the tallies of successful tasks only,
and the count check, decide.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import scipy.sparse as sp

from recsys.cache.codec import encode_batch
from recsys.cache.keys import CacheKeys, buckets_of, check_n_buckets, check_target, n_buckets_for
from recsys.cache.snapshot import encode_sku_table
from recsys.columns import Columns, Tables
from recsys.data.dataset import user_column

# The meta record, the tally it reads and the failure and clean-up steps come from the local
# publish itself, so both engines write the same record and fail and retire alike.
from training.publish import (
    DEFAULT_PENDING_TTL,
    DEFAULT_TTL_OLD,
    PublishReport,
    Tally,
    meta_record,
    publish_failed,
    retire_older,
    write_sku_stats,
)
from training.publish_inputs import History
from training.publish_profiles import encode_records
from training.publish_reasons import PickReasons, encode_fallbacks
from training.publish_source import ModelSource
from training.publish_writer import (
    LOCK_TTL,
    SnapshotWriter,
    flip_pointer,
    fresh_snapshot_id,
    target_lock,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

C = Columns
TALLY_SCHEMA = "written long, empty long, picks long, dropped long, bytes long"
TALLY_FIELDS = ("written", "empty", "picks", "dropped", "bytes")


@dataclass(frozen=True)
class PartitionJob:
    """What every partition needs to score and write (pickled once per task, small)."""

    redis_url: str
    target: str
    snapshot: str
    n_buckets: int
    pending_ttl: int
    top_n: int
    batch_size: int
    model: Any  # pyspark Broadcast of the item-side SparkALSRecommender
    sku_ids: Any  # Broadcast of the SKU table's ids, in row order
    fallbacks: Any  # Broadcast of the fallback lists


def write_buckets(
    client: Any,
    keys: CacheKeys,
    key_of: Callable[[int], str],
    n_buckets: int,
    members: list[bytes],
    values: list[bytes],
    pending_ttl: int,
) -> None:
    """HSET members into their bucket hashes with a safety TTL: one pipelined round trip.

    Unlike `SnapshotWriter.write_members` it does not insist that every field is new, so a task
    that Spark retries can write its buckets again; the driver's count check decides.
    """
    if not members:
        return
    bucket = buckets_of(members, n_buckets)
    order = np.argsort(bucket, kind="stable")
    cuts = np.flatnonzero(np.diff(bucket[order])) + 1
    pipe = client.pipeline(transaction=False)
    for group in np.split(order, cuts):
        key = key_of(int(bucket[group[0]]))
        args: list[bytes] = []
        for i in group.tolist():
            args += (members[i], values[i])
        pipe.execute_command("HSET", key, *args)
        pipe.expire(key, pending_ttl)
    pipe.expire(keys.lock, LOCK_TTL)  # the publish is alive: keep the driver's lock
    pipe.execute()


def _tally_frame(tally: Mapping[str, int]) -> pd.DataFrame:
    """One tally row (the only thing a partition returns)."""
    return pd.DataFrame({name: [int(tally.get(name, 0))] for name in TALLY_FIELDS})


def _user_factors(frame: pd.DataFrame, rank: int) -> np.ndarray:
    """The factor bytes of a batch as an (n, rank) float32 array; users without factors get 0."""
    out = np.zeros((len(frame), rank), dtype=np.float32)
    for i, raw in enumerate(frame["factors"].tolist()):
        if raw is not None:
            out[i] = np.frombuffer(raw, dtype=np.float32)
    return out


def _history(frame: pd.DataFrame, users: np.ndarray, n_skus: int) -> History:
    """The batch's purchase history (rows follow `users`, columns the SKU-table rows)."""
    skus = frame["hist_skus"].tolist()
    counts = frame["hist_counts"].tolist()
    lengths = np.fromiter((0 if s is None else len(s) for s in skus), dtype=np.int64)
    cols = np.concatenate(
        [np.asarray(s, dtype=np.int64) for s in skus if s is not None and len(s)]
        or [np.zeros(0, dtype=np.int64)]
    )
    vals = np.concatenate(
        [np.asarray(c, dtype=np.float32) for c in counts if c is not None and len(c)]
        or [np.zeros(0, dtype=np.float32)]
    )
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    matrix = sp.csr_matrix((vals, cols, indptr), shape=(len(users), n_skus))
    return History(pd.Index(users), matrix, exact=True)


def picks_partition(
    job: PartitionJob,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The `mapInPandas` function that scores, encodes and writes one partition's users."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from training.publish_cli import connect_redis

        model = job.model.value
        sku_ids = job.sku_ids.value
        sku_pos = pd.Index(sku_ids)
        fallbacks = job.fallbacks.value
        keys = CacheKeys(job.target)
        client = connect_redis(job.redis_url)
        rank = model.item_factors_.shape[1]
        tally = dict.fromkeys(TALLY_FIELDS, 0)
        try:
            for frame in batches:
                for start in range(0, len(frame), job.batch_size):
                    part = frame.iloc[start : start + job.batch_size]
                    users = part["user_id"].to_numpy(dtype=object)
                    slim = model.for_users(
                        users, _user_factors(part, rank), part["warm"].to_numpy(dtype=bool)
                    )
                    picks = ModelSource(slim, job.target, sku_pos).picks_for(users, job.top_n)
                    rsn, prm = picks.reasons, picks.params
                    if rsn is None:
                        reasons = PickReasons(
                            job.target,
                            history=_history(part, users, len(sku_pos)),
                            regions=pd.Series(part["region"].to_numpy(dtype=object), index=users),
                            fallbacks=fallbacks,
                            sku_pos=sku_pos,
                        )
                        pos = np.repeat(np.arange(len(users)), picks.counts)
                        rsn, prm = reasons.compute(users, pos, picks.sku_index, picks.popular)
                    values = encode_batch(
                        picks.offsets, picks.sku_index, picks.score, rsn, prm, n_skus=len(sku_pos)
                    )
                    has = picks.counts > 0
                    members = [str(u).encode() for u in users[has]]
                    kept = [v for v, h in zip(values, has.tolist(), strict=True) if h]
                    write_buckets(
                        client,
                        keys,
                        lambda b: keys.picks(job.snapshot, b),
                        job.n_buckets,
                        members,
                        kept,
                        job.pending_ttl,
                    )
                    tally["written"] += int(has.sum())
                    tally["empty"] += int((~has).sum())
                    tally["picks"] += len(picks.sku_index)
                    tally["dropped"] += picks.n_dropped
                    tally["bytes"] += sum(map(len, values))
        finally:
            client.close()
        yield _tally_frame(tally)

    return run


def similar_partition(
    job: PartitionJob, k: int, n_buckets: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The `mapInPandas` function that writes one partition's similar-SKU lists."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from training.publish_cli import connect_redis

        model = job.model.value
        sku_pos = pd.Index(job.sku_ids.value)
        source = ModelSource(model, job.target, sku_pos)
        keys = CacheKeys(job.target)
        client = connect_redis(job.redis_url)
        tally = dict.fromkeys(TALLY_FIELDS, 0)
        chunk = max(1, job.batch_size // 10)
        try:
            for frame in batches:
                skus = frame[C.SKU_ID].to_numpy(dtype=object)
                for start in range(0, len(skus), chunk):
                    part = skus[start : start + chunk]
                    similar = source.similar_for(part, k)
                    if similar is None:
                        continue
                    values = encode_batch(
                        similar.offsets, similar.sku_index, similar.score, n_skus=len(sku_pos)
                    )
                    has = similar.counts > 0
                    write_buckets(
                        client,
                        keys,
                        lambda b: keys.similar(job.snapshot, b),
                        n_buckets,
                        [str(s).encode() for s in part[has]],
                        [v for v, h in zip(values, has.tolist(), strict=True) if h],
                        job.pending_ttl,
                    )
                    tally["written"] += int(has.sum())
        finally:
            client.close()
        yield _tally_frame(tally)

    return run


def profiles_partition(
    job: PartitionJob,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The `mapInPandas` function that builds and writes one partition's agent profiles, from
    rows of `publish_inputs.agent_profile_rows`."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from training.publish_cli import connect_redis
        from training.spark.publish_inputs import profiles_from_rows

        keys = CacheKeys(job.target)
        client = connect_redis(job.redis_url)
        tally = dict.fromkeys(TALLY_FIELDS, 0)
        try:
            for frame in batches:
                profiles = profiles_from_rows(frame)
                for members, values in encode_records(profiles, chunk=job.batch_size):
                    write_buckets(
                        client,
                        keys,
                        lambda b: keys.profiles(job.snapshot, b),
                        job.n_buckets,
                        members,
                        values,
                        job.pending_ttl,
                    )
                    tally["written"] += len(members)
                    tally["bytes"] += sum(map(len, values))
        finally:
            client.close()
        yield _tally_frame(tally)

    return run


def _sum_tallies(frame: DataFrame) -> dict[str, int]:
    """Run the job and add up its partitions' tallies."""
    rows = frame.collect()
    return {name: int(sum(row[name] for row in rows)) for name in TALLY_FIELDS}


def _persist_all(client: Any, writer: SnapshotWriter) -> None:
    """Drop the safety TTL of every key the snapshot may have (the executors made most of them)."""
    pipe = client.pipeline(transaction=False)
    for name in writer.all_keys():
        pipe.persist(name)
    pipe.execute()


def _bucketed(frame: DataFrame, column: str, n_buckets: int, n_partitions: int) -> DataFrame:
    """`frame` spread over partitions by the picks bucket of `column`, sorted by bucket inside."""
    from pyspark.sql import functions as F

    bucket = F.crc32(F.col(column).cast("binary")).bitwiseAND(F.lit(n_buckets - 1))
    out = frame.withColumn("_bucket", bucket).repartition(n_partitions, "_bucket")
    return out.sortWithinPartitions("_bucket", column).drop("_bucket")


def publish_with_spark(
    spark: SparkSession,
    redis_url: str,
    target: str,
    model: Any,
    data: str,
    *,
    meta: Mapping[str, Any],
    top_n: int = 100,
    batch_size: int = 10_000,
    similar_k: int = 20,
    ttl_old: int = DEFAULT_TTL_OLD,
    channel: str = "current",
    n_buckets: int | None = None,
    n_partitions: int | None = None,
    pending_ttl: int = DEFAULT_PENDING_TTL,
    on_stage: Callable[[str], None] | None = None,
    profiles: bool = True,
) -> PublishReport:
    """Publish `model`'s picks of every agent (customer) of `data` as a new snapshot, via Spark.

    Parameters
    ----------
    spark
        The session (training.spark.session.spark_session).
    redis_url
        Where to publish; every executor connects to it (`redis://` or `redis+cluster://`).
    target
        "agent" or "customer".
    model
        A fitted factor model: SparkALSRecommender, or an `implicit` ALS/BPR recommender.
    data
        The data location (folder or URI) whose users are published.
    meta, top_n, batch_size, similar_k, ttl_old, channel, n_buckets, pending_ttl
        As in `training.publish.publish_snapshot`.
    n_partitions
        Partitions of the scoring job (None: about one per `batch_size` users, at least the
        session's parallelism).
    on_stage
        Called with a description of each stage as it starts (e.g. to show progress).
    profiles
        Write the picks explorer's agent profiles and SKU return figures (agent snapshots):
        the profiles are built and written on the executors, partitioned by bucket as the
        picks are; the SKU figures (one row per SKU) are collected and written by the driver.

    Raises
    ------
    PublishError
        If anything fails before the flip; the live snapshot is unchanged.
    ValueError
        If an argument is invalid or the model has no factors (checked before anything is written).
    """
    from recsys.models.spark_als import SparkALSRecommender
    from training.publish_cli import connect_redis
    from training.spark import publish_inputs as inputs
    from training.spark.io import read_tables
    from training.spark.session import error_line

    check_target(target)
    for name, value in (("top_n", top_n), ("batch_size", batch_size), ("ttl_old", ttl_old)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    try:
        scorer = SparkALSRecommender.from_factor_model(model)
    except TypeError as exc:
        raise ValueError(f"{exc}; publish it with --engine local") from None
    if scorer.target_ != target:
        raise ValueError(f"the model was trained for target {scorer.target_!r}, not {target!r}")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    tell = on_stage or (lambda stage: None)
    tell("reading the tables and building the fallback lists")
    client = connect_redis(redis_url)
    tables = read_tables(spark, data)
    skus = inputs.sku_table(tables)
    sku_ids = skus[C.SKU_ID].to_numpy(dtype=object)
    if pd.Index(sku_ids).has_duplicates:
        raise ValueError("the skus table has duplicate sku_id values")
    fallbacks = inputs.fallbacks(tables, target, k=top_n)
    fb_names, fb_values = encode_fallbacks(fallbacks, pd.Index(sku_ids))
    factors = spark.createDataFrame(scorer.user_factor_frame())
    users = inputs.user_rows(tables, target, inputs.sku_rows(spark, skus), factors)
    user_table = tables[Tables.AGENTS if target == "agent" else Tables.CUSTOMERS]
    n_users = user_table.select(user_column(target)).distinct().count()
    n_buckets = check_n_buckets(n_buckets or n_buckets_for(n_users))
    n_similar_buckets = n_buckets_for(len(sku_ids)) if similar_k > 0 else 0
    parallelism = spark.sparkContext.defaultParallelism
    n_parts = n_partitions or max(parallelism, min(n_buckets, -(-n_users // batch_size)))
    profile_rows = sku_stats = lines = None
    if target == "agent" and profiles:
        tell("aggregating SKU return figures")
        # read by the SKU figures now and by the profiles' three aggregates later
        lines = inputs.returned_lines(tables).persist()
        sku_stats = inputs.sku_stats(tables, lines)
        profile_rows = inputs.agent_profile_rows(tables, lines=lines)
    timings["prepare_s"] = time.perf_counter() - started

    keys = CacheKeys(target)
    snapshot = fresh_snapshot_id(client, keys, meta.get("model_version"))
    writer = SnapshotWriter(
        client,
        keys,
        snapshot,
        n_buckets=n_buckets,
        n_similar_buckets=n_similar_buckets,
        pending_ttl=pending_ttl,
    )
    context = spark.sparkContext
    job = PartitionJob(
        redis_url=redis_url,
        target=target,
        snapshot=snapshot,
        n_buckets=n_buckets,
        pending_ttl=pending_ttl,
        top_n=int(top_n),
        batch_size=int(batch_size),
        model=context.broadcast(scorer.item_side()),
        sku_ids=context.broadcast(sku_ids),
        fallbacks=context.broadcast(dict(fallbacks)),
    )
    writer.with_extras = profile_rows is not None
    live = client.get(keys.pointer(channel))
    tally = Tally()
    n_similar = 0
    extras: dict[str, int] = {}
    with target_lock(client, keys, f"publish {snapshot} (spark)"):
        try:
            writer.stage = "writing the SKU table and fallback lists"
            tell(writer.stage)
            writer.begin()
            writer.write_static(encode_sku_table(skus), fb_names, fb_values)
            writer.stage = f"scoring and writing {n_users} users' picks on {n_parts} partitions"
            tell(writer.stage)
            t0 = time.perf_counter()
            scored = _bucketed(users, "user_id", n_buckets, n_parts)
            picks = _sum_tallies(scored.mapInPandas(picks_partition(job), TALLY_SCHEMA))
            tally.written, tally.empty = picks["written"], picks["empty"]
            tally.picks, tally.dropped, tally.bytes = (
                picks["picks"],
                picks["dropped"],
                picks["bytes"],
            )
            timings["picks_s"] = time.perf_counter() - t0
            if similar_k > 0:
                writer.stage = "writing similar SKUs"
                tell(writer.stage)
                t1 = time.perf_counter()
                sku_frame = spark.createDataFrame(pd.DataFrame({C.SKU_ID: sku_ids.astype(str)}))
                sku_parts = max(parallelism, min(n_similar_buckets, -(-len(sku_ids) // batch_size)))
                spread = _bucketed(sku_frame, C.SKU_ID, n_similar_buckets, sku_parts)
                fn = similar_partition(job, similar_k, n_similar_buckets)
                n_similar = _sum_tallies(spread.mapInPandas(fn, TALLY_SCHEMA))["written"]
                timings["similar_s"] = time.perf_counter() - t1
            if profile_rows is not None and sku_stats is not None:
                writer.stage = f"writing agent profiles on {n_parts} partitions and SKU stats"
                tell(writer.stage)
                t3 = time.perf_counter()
                spread = _bucketed(profile_rows, C.AGENT_ID, n_buckets, n_parts)
                written = _sum_tallies(spread.mapInPandas(profiles_partition(job), TALLY_SCHEMA))
                extras = {
                    "profiles": written["written"],
                    "sku_stats": write_sku_stats(writer, sku_stats, pd.Index(sku_ids)),
                }
                timings["profiles_s"] = time.perf_counter() - t3
            writer.stage = "writing the meta record"
            record = meta_record(
                {**dict(meta), "engine": "spark"},
                snapshot,
                target,
                top_n,
                writer,
                tally,
                fb_names,
                n_similar,
                len(sku_ids),
            )
            record["counts"].update(extras)
            writer.write_meta(orjson.dumps(record, default=str))
            t2 = time.perf_counter()
            writer.stage = "verifying counts"
            tell(writer.stage)
            writer.verify(tally.written, len(fb_names), n_similar)
            if extras:
                writer.verify_extras(extras["profiles"], extras["sku_stats"])
            writer.stage = "making the snapshot permanent"
            _persist_all(client, writer)
            writer.stage = "flipping the live pointer"
            replaced, older = flip_pointer(client, keys, snapshot, channel)
            timings["verify_flip_s"] = time.perf_counter() - t2
        except BaseException as exc:
            if not isinstance(exc, Exception):
                writer.discard()
                raise
            reason = error_line(exc)
            raise publish_failed(reason, writer, target, snapshot, live, pending_ttl) from exc
        finally:
            for shared in (job.model, job.sku_ids, job.fallbacks):
                shared.unpersist()
            if lines is not None:
                lines.unpersist()
    expiring, warnings = retire_older(client, keys, older, ttl_old)
    return PublishReport(
        target=target,
        snapshot=snapshot,
        replaced=replaced,
        n_users=tally.written,
        n_users_without_picks=tally.empty,
        n_picks=tally.picks,
        n_dropped_picks=tally.dropped,
        n_skus=len(sku_ids),
        n_fallback_lists=len(fb_names),
        n_similar=n_similar,
        n_profiles=extras.get("profiles", 0),
        n_sku_stats=extras.get("sku_stats", 0),
        n_buckets=n_buckets,
        bytes_picks=tally.bytes,
        seconds=time.perf_counter() - started,
        timings=timings,
        expiring=expiring,
        warnings=warnings,
    )


def publish_command(
    redis_url: str,
    target: str,
    resolved: Any,
    data: str,
    *,
    master: str,
    spark_conf: list[str] | None,
    top_n: int,
    batch_size: int,
    similar_k: int,
    ttl_old: int,
    channel: str,
    profiles: bool = True,
) -> PublishReport:
    """`recsys publish --engine spark`: start the session and publish a resolved model."""
    from recsys.console import console, err_console
    from training.publish_cli import snapshot_meta
    from training.spark.session import parse_conf, spark_errors, spark_session

    conf = parse_conf(spark_conf)
    console.print(
        f"publishing {target} picks of {resolved.uri} ({resolved.fit} fit) from {data} "
        f"with Spark ({master})"
    )
    meta = snapshot_meta(resolved, data)
    with err_console.status("starting Spark") as status, spark_errors("the publish"):
        spark = spark_session(master, conf)
        return publish_with_spark(
            spark,
            redis_url,
            target,
            resolved.model,
            str(data),
            meta=meta,
            top_n=top_n,
            batch_size=batch_size,
            similar_k=similar_k,
            ttl_old=ttl_old,
            channel=channel,
            on_stage=lambda stage: status.update(f"{stage} (Spark)"),
            profiles=profiles,
        )
