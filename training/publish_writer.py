"""The Redis side of a publish: writing one snapshot's keys, verifying them, flipping pointers.

Every snapshot key is written with a safety TTL (`pending_ttl`) until the snapshot is verified,
so a publisher killed half way leaves nothing behind for long. Pointer changes are Lua scripts
over the target's control keys only (one hash tag), so they stay atomic on a Redis Cluster.
Snapshot keys are spread over the cluster's slots and only ever used by single-key commands in
non-transactional pipelines, which a cluster client splits per node (docs/cache-contract.md).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from recsys.cache.keys import CacheKeys, buckets_of, new_snapshot_id
from recsys.exceptions import RecsysError

LOCK_TTL = 600

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: pointer, its previous, snapshots, pending, channels set, main current, main previous;
# ARGV: new id, publish time (ms), pub/sub channel, A/B channel name ("current" for the main one).
# Snapshots referenced by any pointer (main or A/B channel, current or previous) are kept; the
# others are returned so the caller can give them a TTL. All keys share the {target} hash tag.
_FLIP = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if old then redis.call('SET', KEYS[2], old) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[4] ~= 'current' then redis.call('SADD', KEYS[5], ARGV[4]) end
redis.call('PUBLISH', ARGV[3], 'flip ' .. ARGV[1])
local keep = {}
keep[ARGV[1]] = true
if old then keep[old] = true end
for _, k in ipairs({KEYS[6], KEYS[7]}) do
  local v = redis.call('GET', k)
  if v then keep[v] = true end
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local base = string.sub(KEYS[6], 1, string.len(KEYS[6]) - string.len('current'))
  for _, k in ipairs({base .. 'channel:' .. name, base .. 'channel:' .. name .. ':previous'}) do
    local v = redis.call('GET', k)
    if v then keep[v] = true end
  end
end
local older = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if not keep[id] then table.insert(older, id) end
end
return {old or '', older}
"""
# KEYS: current, previous; ARGV: expected current, expected previous, channel.
_SWAP = """
local cur = redis.call('GET', KEYS[1])
local prev = redis.call('GET', KEYS[2])
if (cur or '') ~= ARGV[1] or (prev or '') ~= ARGV[2] or not prev then
  return redis.error_reply('pointers changed during the rollback; try again')
end
redis.call('SET', KEYS[1], prev)
if cur then redis.call('SET', KEYS[2], cur) else redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[3], 'rollback ' .. prev)
return 1
"""


class PublishError(RecsysError):
    """A publish or rollback failed; the live snapshot is unchanged."""

    def __init__(self, message: str, *, stage: str = "", snapshot: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.snapshot = snapshot


@contextmanager
def target_lock(client: Any, keys: CacheKeys, what: str) -> Iterator[str]:
    """Hold the target's publish lock (SET NX with a TTL) while the block runs."""
    token = f"{what}:{secrets.token_hex(8)}"
    if not client.set(keys.lock, token, nx=True, ex=LOCK_TTL):
        holder = client.get(keys.lock)
        raise PublishError(
            f"another publish or rollback of target {keys.target!r} is running "
            f"(lock {keys.lock} held by {holder.decode() if holder else '?'}, "
            f"expires in {client.ttl(keys.lock)}s); wait for it to finish",
            stage="taking the lock",
        )
    try:
        yield token
    finally:
        try:
            client.register_script(_RELEASE_LOCK)(keys=[keys.lock], args=[token])
        except Exception:  # noqa: BLE001 - the lock expires by itself
            pass


def fresh_snapshot_id(client: Any, keys: CacheKeys, model_version: object) -> str:
    """A new snapshot id not used by any snapshot of the target still known to Redis."""
    while True:
        snapshot = new_snapshot_id(None if model_version is None else str(model_version))
        pipe = client.pipeline(transaction=False)
        pipe.zscore(keys.snapshots, snapshot)
        pipe.zscore(keys.pending, snapshot)
        pipe.exists(keys.meta(snapshot))
        published, pending, has_meta = pipe.execute()
        if published is None and pending is None and not has_meta:
            return snapshot


class SnapshotWriter:
    """Writes the keys of one snapshot and knows them all, to verify, keep or discard them."""

    def __init__(
        self,
        client: Any,
        keys: CacheKeys,
        snapshot: str,
        *,
        n_buckets: int,
        n_similar_buckets: int,
        pending_ttl: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.snapshot = snapshot
        self.n_buckets = n_buckets
        self.n_similar_buckets = n_similar_buckets
        self.pending_ttl = int(pending_ttl)
        self.stage = "starting"
        self.with_extras = False  # agent profiles and SKU return figures (publish_profiles)
        self._created: set[str] = set()

    def all_keys(self) -> list[str]:
        """Every key this snapshot may have."""
        names = self.keys.snapshot_keys(self.snapshot, self.n_buckets, self.n_similar_buckets)
        if self.with_extras:
            names = extra_key_names(self.keys, self.snapshot, self.n_buckets) + names
        return names

    def begin(self) -> None:
        """Register the snapshot as pending (for operators: `ZRANGE <pending> 0 -1`)."""
        self.client.zadd(self.keys.pending, {self.snapshot: int(time.time() * 1000)})

    def write_static(self, skus: bytes, names: Sequence[str], lists: Sequence[bytes]) -> None:
        """Write the SKU table and the fallback hash in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keys.skus(self.snapshot), skus, ex=self.pending_ttl)
        fb = self.keys.fallbacks(self.snapshot)
        pipe.hset(fb, mapping=dict(zip(names, lists, strict=True)))
        pipe.expire(fb, self.pending_ttl)
        pipe.execute()
        self._created.update([self.keys.skus(self.snapshot), fb])

    def write_members(self, kind: str, members: list[bytes], values: list[bytes]) -> None:
        """HSET each member's value into its bucket hash: one pipeline round trip in all.

        Raises
        ------
        RuntimeError
            If Redis reports fewer new fields than members sent (a duplicate or lost write).
        """
        if not members:
            return
        n = self.n_similar_buckets if kind == "similar" else self.n_buckets
        key_of = {
            "picks": self.keys.picks,
            "similar": self.keys.similar,
            "profiles": self.keys.profiles,
        }[kind]
        bucket = buckets_of(members, n)
        order = np.argsort(bucket, kind="stable")
        cuts = np.flatnonzero(np.diff(bucket[order])) + 1
        pipe = self.client.pipeline(transaction=False)
        for group in np.split(order, cuts):
            key = key_of(self.snapshot, int(bucket[group[0]]))
            args: list[bytes] = []
            for i in group.tolist():
                args += (members[i], values[i])
            pipe.execute_command("HSET", key, *args)
            if key not in self._created:
                pipe.expire(key, self.pending_ttl)
                self._created.add(key)
        pipe.expire(self.keys.lock, LOCK_TTL)  # still alive: keep the lock
        replies = pipe.execute()
        added = sum(r for r in replies if not isinstance(r, bool))
        if added != len(members):
            raise RuntimeError(f"Redis added {added} {kind} fields, {len(members)} were sent")

    def write_sku_stats(self, members: list[bytes], values: list[bytes]) -> None:
        """HSET SKU return figures into the snapshot's stats hash (one round trip)."""
        if not members:
            return
        key = self.keys.sku_stats(self.snapshot)
        args: list[bytes] = []
        for member, value in zip(members, values, strict=True):
            args += (member, value)
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("HSET", key, *args)
        if key not in self._created:
            pipe.expire(key, self.pending_ttl)
            self._created.add(key)
        pipe.execute()

    def verify_extras(self, n_profiles: int, n_sku_stats: int) -> None:
        """Check the profile and SKU-stat counts in Redis; raise RuntimeError if they differ."""
        pipe = self.client.pipeline(transaction=False)
        for b in range(self.n_buckets):
            pipe.hlen(self.keys.profiles(self.snapshot, b))
        pipe.hlen(self.keys.sku_stats(self.snapshot))
        replies = pipe.execute()
        found = (sum(replies[:-1]), replies[-1])
        if found != (n_profiles, n_sku_stats):
            raise RuntimeError(
                f"count check failed: {found[0]} profiles and {found[1]} SKU stats in Redis, "
                f"{n_profiles} and {n_sku_stats} written"
            )

    def write_meta(self, meta: bytes) -> None:
        """Write the meta record (last: a snapshot with meta is a complete one)."""
        self.client.set(self.keys.meta(self.snapshot), meta, ex=self.pending_ttl)
        self._created.add(self.keys.meta(self.snapshot))

    def verify(self, n_users: int, n_fallbacks: int, n_similar: int) -> None:
        """Check every count in Redis against what was written; raise RuntimeError if not."""
        snap = self.snapshot
        pipe = self.client.pipeline(transaction=False)
        for b in range(self.n_buckets):
            pipe.hlen(self.keys.picks(snap, b))
        for b in range(self.n_similar_buckets):
            pipe.hlen(self.keys.similar(snap, b))
        pipe.hlen(self.keys.fallbacks(snap))
        pipe.exists(self.keys.skus(snap))
        pipe.exists(self.keys.meta(snap))
        replies = pipe.execute()
        found_users = sum(replies[: self.n_buckets])
        found_similar = sum(replies[self.n_buckets : self.n_buckets + self.n_similar_buckets])
        found_fb, has_skus, has_meta = replies[-3:]
        problems = []
        if found_users != n_users:
            problems.append(f"{found_users} users' picks in Redis, {n_users} written")
        if found_similar != n_similar:
            problems.append(f"{found_similar} similar-SKU lists in Redis, {n_similar} written")
        if found_fb != n_fallbacks:
            problems.append(f"{found_fb} fallback lists in Redis, {n_fallbacks} written")
        if not has_skus:
            problems.append("the SKU table is missing")
        if not has_meta:
            problems.append("the meta record is missing")
        if problems:
            raise RuntimeError("count check failed: " + "; ".join(problems))

    def persist(self) -> None:
        """Drop the safety TTL of every key written (the snapshot is about to go live)."""
        pipe = self.client.pipeline(transaction=False)
        for key in sorted(self._created):
            pipe.persist(key)
        pipe.execute()

    def discard(self) -> bool:
        """Delete every key of this snapshot and its pending entry; False if Redis refused."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self.all_keys():
                pipe.unlink(key)
            pipe.zrem(self.keys.pending, self.snapshot)
            pipe.execute()
            return True
        except Exception:  # noqa: BLE001 - the keys still carry their safety TTL
            return False


def flip_pointer(
    client: Any, keys: CacheKeys, snapshot: str, channel: str = "current"
) -> tuple[str | None, list[str]]:
    """Make `snapshot` live on `channel`, the old one its previous, atomically.

    Returns the replaced id and the ids no pointer refers to any more (to be expired).
    """
    old, older = client.register_script(_FLIP)(
        keys=[
            keys.pointer(channel),
            keys.previous_of(channel),
            keys.snapshots,
            keys.pending,
            keys.channels,
            keys.current,
            keys.previous,
        ],
        args=[snapshot, int(time.time() * 1000), keys.channel, channel],
    )
    return (old.decode() if old else None), [o.decode() for o in older]


def swap_pointers(client: Any, keys: CacheKeys, current: str | None, previous: str) -> None:
    """Swap `current` and `previous` atomically, if they still hold the values read before."""
    client.register_script(_SWAP)(
        keys=[keys.current, keys.previous], args=[current or "", previous, keys.channel]
    )


def snapshot_key_names(client: Any, keys: CacheKeys, snapshot: str) -> list[str] | None:
    """Every key of a published snapshot (from its meta), or None when its meta is gone."""
    from recsys.cache.snapshot import SnapshotMissingError, read_meta

    try:
        meta = read_meta(client, keys.target, snapshot)
    except SnapshotMissingError:
        return None
    n_buckets = int(meta["n_buckets"])
    names = keys.snapshot_keys(snapshot, n_buckets, int(meta.get("n_similar_buckets", 0)))
    counts = meta.get("counts") or {}
    if "profiles" in counts or "sku_stats" in counts:
        names = extra_key_names(keys, snapshot, n_buckets) + names
    return names


def extra_key_names(keys: CacheKeys, snapshot: str, n_buckets: int) -> list[str]:
    """The profile hashes (one per picks bucket) and the SKU stats hash of a snapshot."""
    names = [keys.profiles(snapshot, b) for b in range(n_buckets)]
    return [*names, keys.sku_stats(snapshot)]


def expire_snapshots(client: Any, keys: CacheKeys, snapshots: list[str], ttl: int) -> list[str]:
    """Give every key of `snapshots` a TTL (unless it has one); forget snapshots already gone."""
    expiring = []
    for snap in snapshots:
        names = snapshot_key_names(client, keys, snap)
        if names is None:
            client.zrem(keys.snapshots, snap)
            continue
        expire_unless_set(client, names, ttl)
        expiring.append(snap)
    return expiring


def expire_unless_set(client: Any, names: Sequence[str], ttl: int) -> int:
    """EXPIRE each key that exists and has no TTL yet (so a later publish never extends one).

    Two pipelined round trips of single-key commands (`TTL`, then `EXPIRE`), so the keys may
    live on any cluster nodes; `EXPIRE ... NX` would do it in one but needs Redis 7. Returns
    how many keys got a TTL. The snapshots expired here are no pointer's, and pointers only
    move to newer snapshots or swap current and previous, so nothing persists them meanwhile.
    """
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.ttl(name)
    bare = [n for n, t in zip(names, pipe.execute(), strict=True) if t == -1]
    if bare:
        pipe = client.pipeline(transaction=False)
        for name in bare:
            pipe.expire(name, ttl)
        pipe.execute()
    return len(bare)
