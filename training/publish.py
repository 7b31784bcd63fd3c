"""Publish a model's picks into Redis as a new snapshot, then flip `current` to it atomically.

Order of work (issue 4, 1; docs/cache-contract.md):

1. take the target's publish lock; register the snapshot as pending;
2. write the SKU table and fallback lists, then score users batch by batch and write their
   encoded picks (one pipeline round trip per batch), then similar SKUs and the meta record;
   every key carries a safety TTL until the end, so a killed publisher leaves nothing for long;
3. verify every count in Redis against what was written;
4. drop the safety TTLs and flip the pointers in one Lua script (previous = old current,
   current = new), telling subscribers; give snapshots older than previous a TTL.

A failure before the flip deletes the partial snapshot and raises `PublishError` naming the
stage; `current` is untouched. Readers never see a mix: they read `current` once, then only keys
of that immutable snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd

from recsys.cache.codec import VERSION as CODEC_VERSION
from recsys.cache.codec import encode_batch
from recsys.cache.keys import (
    CacheKeys,
    buckets_of,
    check_n_buckets,
    check_target,
    n_buckets_for,
)
from recsys.cache.snapshot import encode_sku_table
from recsys.columns import Columns
from recsys.reasons import reason_table
from training.publish_inputs import History
from training.publish_profiles import encode_records
from training.publish_reasons import PickReasons, encode_fallbacks
from training.publish_source import ModelSource, PicksSource, UserPicks, batches
from training.publish_writer import (
    PublishError,
    SnapshotWriter,
    expire_snapshots,
    flip_pointer,
    fresh_snapshot_id,
    snapshot_key_names,
    swap_pointers,
    target_lock,
)

__all__ = [
    "PicksSource",
    "PublishError",
    "PublishReport",
    "RollbackResult",
    "UserPicks",
    "publish_snapshot",
    "rollback",
]

C = Columns
DAY_S = 86_400
DEFAULT_TTL_OLD = 7 * DAY_S
DEFAULT_PENDING_TTL = DAY_S
CONTRACT_VERSION = 1


@dataclass
class PublishReport:
    """What a publish wrote and how long each part took."""

    target: str
    snapshot: str
    replaced: str | None
    n_users: int
    n_users_without_picks: int
    n_picks: int
    n_dropped_picks: int
    n_skus: int
    n_fallback_lists: int
    n_similar: int
    n_buckets: int
    bytes_picks: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    expiring: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_profiles: int = 0
    n_sku_stats: int = 0

    @property
    def users_per_s(self) -> float:
        """Users published per second, end to end."""
        return self.n_users / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class RollbackResult:
    """Which snapshot is live after a rollback, and which one it replaced."""

    target: str
    current: str
    replaced: str | None


@dataclass
class Tally:
    """What a publish wrote: users, empty lists, picks, dropped picks, bytes, stage timings."""

    written: int = 0
    empty: int = 0
    picks: int = 0
    dropped: int = 0
    bytes: int = 0
    timings: dict[str, float] = field(
        default_factory=lambda: {
            "prepare_s": 0.0,
            "score_s": 0.0,
            "encode_s": 0.0,
            "write_s": 0.0,
            "similar_s": 0.0,
            "verify_flip_s": 0.0,
        }
    )


def _write_batch(
    writer: SnapshotWriter,
    kind: str,
    members: np.ndarray,
    picks: UserPicks,
    reasons: PickReasons | None,
    n_skus: int,
    tally: Tally,
    located: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Encode one batch of lists (with reasons) and write the non-empty ones."""
    t0 = time.perf_counter()
    counts = picks.counts
    rsn = prm = None
    if picks.reasons is not None:  # the model's own reasons (e.g. the ranked model's)
        rsn, prm = picks.reasons, picks.params
    elif reasons is not None:
        pos = np.repeat(np.arange(len(members)), counts)
        rsn, prm = reasons.compute(members, pos, picks.sku_index, picks.popular, located)
    values = encode_batch(picks.offsets, picks.sku_index, picks.score, rsn, prm, n_skus=n_skus)
    has = counts > 0
    t1 = time.perf_counter()
    if has.all():
        writer.write_members(kind, [str(u).encode() for u in members], values)
    else:
        keep = has.tolist()
        writer.write_members(
            kind,
            [str(u).encode() for u in members[has]],
            [v for v, h in zip(values, keep, strict=True) if h],
        )
    tally.timings["encode_s"] += t1 - t0
    tally.timings["write_s"] += time.perf_counter() - t1
    if kind == "picks":
        tally.written += int(has.sum())
        tally.empty += int((~has).sum())
        tally.picks += len(picks.sku_index)
        tally.dropped += picks.n_dropped
        tally.bytes += sum(map(len, values))


def publish_snapshot(
    client: Any,
    target: str,
    model: Any,
    user_ids: Iterable[str],
    *,
    sku_table: pd.DataFrame,
    fallbacks: Mapping[str, pd.DataFrame],
    meta: Mapping[str, Any],
    top_n: int = 100,
    batch_size: int = 10_000,
    ttl_old: int = DEFAULT_TTL_OLD,
    progress: bool = True,
    history: History | None = None,
    regions: pd.Series | None = None,
    similar_k: int = 20,
    exclude_seen: bool = False,
    n_buckets: int | None = None,
    pending_ttl: int = DEFAULT_PENDING_TTL,
    channel: str = "current",
    profiles: pd.DataFrame | None = None,
    sku_stats: pd.DataFrame | None = None,
) -> PublishReport:
    """Score `user_ids` with `model`, write a new snapshot of `target`, verify it, flip to it.

    Parameters
    ----------
    client
        A `redis.Redis` client.
    target
        "agent" or "customer".
    model
        A fitted recommender (`recommend(ids, k, exclude_seen)` → reco table), or any picks
        source with `picks_for(users, k) -> UserPicks` (SKU-table rows).
    user_ids
        Every agent (customer) to publish picks for.
    sku_table
        The catalogue rows (sku_id, title, category, series, brand, price, status, regions);
        picks refer to its row numbers. Picks of SKUs not in it are dropped (and counted).
    fallbacks
        Fallback lists by field (`global` required; `region:<r>`, `tier:<t>`), each with
        sku_id, score and optionally n_buyers.
    meta
        Extra meta fields: model_name, model_version, run_id, model_uri, config_digest, ...
    top_n, batch_size
        Picks per user; users scored per batch (memory is bounded by batch_size × top_n).
    ttl_old
        Seconds that snapshots older than the previous one stay in Redis after the flip.
    channel
        The pointer to flip: "current" (what every caller gets by default) or a named A/B
        channel (e.g. "challenger") that experiment variants read; snapshots live on any
        channel are never expired.
    progress
        Show a progress bar on stderr.
    history, regions
        Purchase counts (rebuy reasons with their number) and each user's region (a second
        reason `popular_in_region`); either may be None.
    similar_k
        Similar SKUs kept per SKU when the model knows SKU similarity (0 = skip).
    exclude_seen
        Passed to `recommend` (off: rebuying matters).
    n_buckets
        Hash buckets for the picks (power of two; None = about 1024 users per bucket).
    pending_ttl
        Safety TTL (seconds) of the keys while the snapshot is being written.
    profiles, sku_stats
        Optional records for people who check the picks (`training.publish_profiles`): one
        row per agent (index = agent id) and per SKU (index = SKU id), stored as JSON beside
        the picks. Both or neither; the service does not need them to answer.

    Raises
    ------
    PublishError
        If anything fails before the flip; the message names the stage and the live snapshot.
    ValueError
        If an argument is invalid (checked before anything is written).
    """
    check_target(target)
    if (profiles is None) != (sku_stats is None):
        raise ValueError("pass both profiles and sku_stats, or neither")
    for name, value in (("top_n", top_n), ("batch_size", batch_size), ("ttl_old", ttl_old)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if sku_table[C.SKU_ID].duplicated().any():
        raise ValueError("sku_table has duplicate sku_id values")
    started = time.perf_counter()
    ids = pd.unique(np.asarray(list(user_ids), dtype=object))
    n_buckets = check_n_buckets(n_buckets or n_buckets_for(len(ids)))
    # Users in bucket order: a batch then fills a few bucket hashes with one big HSET each,
    # instead of one small HSET per bucket (the command count is what costs in redis-py).
    ids = ids[np.argsort(buckets_of([str(u).encode() for u in ids], n_buckets), kind="stable")]
    keys = CacheKeys(target)
    sku_pos = pd.Index(sku_table[C.SKU_ID].to_numpy(dtype=object))
    fb_names, fb_values = encode_fallbacks(fallbacks, sku_pos)
    source: PicksSource = (
        model
        if hasattr(model, "picks_for")
        else ModelSource(model, target, sku_pos, exclude_seen=exclude_seen)
    )
    reasons = PickReasons(
        target, history=history, regions=regions, fallbacks=fallbacks, sku_pos=sku_pos
    )
    hist_rows, region_codes = reasons.locate(ids)
    snapshot = fresh_snapshot_id(client, keys, meta.get("model_version"))
    writer = SnapshotWriter(
        client,
        keys,
        snapshot,
        n_buckets=n_buckets,
        n_similar_buckets=n_buckets_for(len(sku_pos)) if similar_k > 0 else 0,
        pending_ttl=pending_ttl,
    )
    writer.with_extras = profiles is not None
    extras: dict[str, int] = {}
    tally = Tally()
    live = client.get(keys.pointer(channel))
    with target_lock(client, keys, f"publish {snapshot}"):
        try:
            writer.stage = "writing the SKU table and fallback lists"
            writer.begin()
            writer.write_static(encode_sku_table(sku_table), fb_names, fb_values)
            n_batches = -(-len(ids) // batch_size)
            tally.timings["prepare_s"] = time.perf_counter() - started
            with _progress(progress, f"publishing {target} picks", len(ids)) as advance:
                for i, batch in batches(ids, batch_size):
                    where = f"batch {i + 1}/{n_batches} ({len(batch)} users from {batch[0]!r})"
                    writer.stage = f"scoring {where}"
                    t0 = time.perf_counter()
                    picks = source.picks_for(batch, top_n)
                    tally.timings["score_s"] += time.perf_counter() - t0
                    writer.stage = f"encoding and writing {where}"
                    sl = slice(i * batch_size, i * batch_size + len(batch))
                    located = (hist_rows[sl], region_codes[sl])
                    _write_batch(
                        writer, "picks", batch, picks, reasons, len(sku_pos), tally, located
                    )
                    advance(len(batch))
            n_similar = 0
            if similar_k > 0 and hasattr(source, "similar_for"):
                writer.stage = "writing similar SKUs"
                t1 = time.perf_counter()
                n_similar = _write_similar(writer, source, sku_pos, similar_k, batch_size)
                tally.timings["similar_s"] = time.perf_counter() - t1
            if profiles is not None and sku_stats is not None:
                writer.stage = "writing agent profiles and SKU stats"
                extras = write_extras(writer, profiles, sku_stats, sku_pos)
            writer.stage = "writing the meta record"
            record = meta_record(
                meta, snapshot, target, top_n, writer, tally, fb_names, n_similar, len(sku_pos)
            )
            record["counts"].update(extras)
            writer.write_meta(orjson.dumps(record, default=str))
            t1 = time.perf_counter()
            writer.stage = "verifying counts"
            writer.verify(tally.written, len(fb_names), n_similar)
            if extras:
                writer.verify_extras(extras["profiles"], extras["sku_stats"])
            writer.stage = "making the snapshot permanent"
            writer.persist()
            writer.stage = "flipping the live pointer"
            replaced, older = flip_pointer(client, keys, snapshot, channel)
            tally.timings["verify_flip_s"] = time.perf_counter() - t1
        except BaseException as exc:
            if not isinstance(exc, Exception):
                writer.discard()
                raise
            reason = f"{type(exc).__name__}: {exc}"
            raise publish_failed(reason, writer, target, snapshot, live, pending_ttl) from exc
    expiring, warnings = retire_older(client, keys, older, ttl_old)
    return PublishReport(
        target=target,
        snapshot=snapshot,
        replaced=replaced,
        n_users=tally.written,
        n_users_without_picks=tally.empty,
        n_picks=tally.picks,
        n_dropped_picks=tally.dropped,
        n_skus=len(sku_pos),
        n_fallback_lists=len(fb_names),
        n_similar=n_similar,
        n_buckets=writer.n_buckets,
        bytes_picks=tally.bytes,
        seconds=time.perf_counter() - started,
        timings=tally.timings,
        expiring=expiring,
        warnings=warnings,
        n_profiles=extras.get("profiles", 0),
        n_sku_stats=extras.get("sku_stats", 0),
    )


def publish_failed(
    reason: str, writer: Any, target: str, snapshot: str, live: bytes | None, pending_ttl: int
) -> PublishError:
    """Discard a failed publish's partial keys; the error says why (`reason`), at which stage,
    and that the live snapshot is unchanged (both engines)."""
    cleaned = writer.discard()
    tail = "were deleted" if cleaned else f"expire within {pending_ttl}s"
    return PublishError(
        f"publish of {target} snapshot {snapshot} failed while {writer.stage}: "
        f"{reason}. The live snapshot "
        f"({live.decode() if live else 'none'}) is unchanged; its partial keys {tail}.",
        stage=writer.stage,
        snapshot=snapshot,
    )


def retire_older(
    client: Any, keys: CacheKeys, older: list[str], ttl_old: int
) -> tuple[list[str], list[str]]:
    """Put a TTL on the snapshots a flip replaced; (expiring, warnings). After the flip this is
    only garbage collection, so a failure is a warning, not an error."""
    try:
        return expire_snapshots(client, keys, older, ttl_old), []
    except Exception as exc:  # noqa: BLE001 - the flip is done; old keys are only garbage
        return [], [f"could not set a TTL on older snapshots {older}: {exc}"]


def meta_record(
    meta: Mapping[str, Any],
    snapshot: str,
    target: str,
    top_n: int,
    writer: SnapshotWriter,
    tally: Tally,
    fallbacks: list[str],
    n_similar: int,
    n_skus: int,
) -> dict[str, Any]:
    """The snapshot's meta record: caller's fields plus layout, counts and the reason table."""
    return {
        "model_name": None,
        "model_version": None,
        "run_id": None,
        "config_digest": None,
        **dict(meta),
        "snapshot": snapshot,
        "target": target,
        "contract_version": CONTRACT_VERSION,
        "codec_version": CODEC_VERSION,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "top_n": int(top_n),
        "n_buckets": writer.n_buckets,
        "n_similar_buckets": writer.n_similar_buckets if n_similar else 0,
        "bucket_hash": "crc32",
        "counts": {
            "users": tally.written,
            "users_without_picks": tally.empty,
            "picks": tally.picks,
            "dropped_picks": tally.dropped,
            "skus": n_skus,
            "fallback_lists": len(fallbacks),
            "similar": n_similar,
        },
        "fallbacks": fallbacks,
        "reasons": reason_table(),
    }


def write_extras(
    writer: SnapshotWriter, profiles: pd.DataFrame, sku_stats: pd.DataFrame, sku_pos: pd.Index
) -> dict[str, int]:
    """Write agent profiles and the return figures of the snapshot's SKUs; return the counts.

    Raises
    ------
    ValueError
        If either frame has a duplicated id.
    """
    if profiles.index.duplicated().any():
        raise ValueError("profiles must have one row per id (duplicate index)")
    n_profiles = 0
    for members, values in encode_records(profiles):
        writer.write_members("profiles", members, values)
        n_profiles += len(members)
    return {"profiles": n_profiles, "sku_stats": write_sku_stats(writer, sku_stats, sku_pos)}


def write_sku_stats(writer: SnapshotWriter, sku_stats: pd.DataFrame, sku_pos: pd.Index) -> int:
    """Write the return figures of the SKUs the picks can point at; return how many.

    Raises
    ------
    ValueError
        If `sku_stats` has a duplicated SKU id.
    """
    if sku_stats.index.duplicated().any():
        raise ValueError("sku_stats must have one row per id (duplicate index)")
    known = sku_stats[sku_stats.index.isin(sku_pos)]
    for members, values in encode_records(known):
        writer.write_sku_stats(members, values)
    return len(known)


def _write_similar(
    writer: SnapshotWriter, source: Any, sku_pos: pd.Index, k: int, batch_size: int
) -> int:
    """Write each SKU's similar SKUs (when the source knows similarity); return how many."""
    skus = sku_pos.to_numpy(dtype=object)
    tally = Tally()
    for _, chunk in batches(skus, max(1, batch_size // 10)):
        similar = source.similar_for(chunk, k)
        if similar is None:
            return 0
        _write_batch(writer, "similar", chunk, similar, None, len(sku_pos), tally)
        tally.written += int((similar.counts > 0).sum())
    return tally.written


def rollback(client: Any, target: str) -> RollbackResult:
    """Make the previous snapshot of `target` live again (the current one becomes previous).

    Raises
    ------
    PublishError
        If there is no previous snapshot, its keys are gone, or a publish is running.
    """
    keys = CacheKeys(check_target(target))
    with target_lock(client, keys, "rollback"):
        cur, prev = (v.decode() if v else None for v in client.mget(keys.current, keys.previous))
        if prev is None:
            raise PublishError(
                f"no previous {target} snapshot to roll back to (current: {cur or 'none'})",
                stage="reading the pointers",
            )
        names = snapshot_key_names(client, keys, prev)
        if names is None:
            raise PublishError(
                f"previous {target} snapshot {prev} is gone from Redis; cannot roll back",
                stage="reading the previous snapshot",
                snapshot=prev,
            )
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.persist(name)  # a live snapshot never expires, whatever was done by hand
        pipe.execute()
        swap_pointers(client, keys, cur, prev)
    return RollbackResult(target=target, current=prev, replaced=cur)


@contextmanager
def _progress(enabled: bool, description: str, total: int) -> Iterator[Any]:
    """A rich progress bar on stderr (or a no-op) yielding an `advance(n)` function."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import Progress

    from recsys.console import err_console, progress_columns

    with Progress(*progress_columns(), console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
