"""Every Redis key name of the picks cache, built in one place (see docs/cache-contract.md).

Two kinds of keys, laid out for a Redis Cluster as much as for one server:

- control keys of a target (`current`, `previous`, channel pointers, `snapshots`, `pending`,
  `channels`, `lock`) share the hash tag `{<target>}`: one slot, so the pointer flip, rollback
  and lock scripts are single-slot Lua scripts and stay atomic on a cluster;
- snapshot keys (`<prefix>:<target>:<snapshot>:...`) carry no hash tag, so Redis hashes each
  whole name and a snapshot's buckets, meta, SKU table and fallbacks spread over every slot
  (and node). They are immutable once live and only ever touched by single-key commands.

Users' picks are stored in `n_buckets` hashes per snapshot (`picks:<bucket>`, field = user id),
with `bucket = crc32(utf-8 user id) mod n_buckets` (`n_buckets` a power of two, kept in the
snapshot meta). Buckets keep the key count small, so expiring or deleting a snapshot of millions
of users takes a few thousand commands rather than millions.
"""

from __future__ import annotations

import re
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from recsys.data.dataset import TARGETS

PREFIX = "reco:v1"
SUSPENDED = f"{PREFIX}:suspended"
SNAPSHOT_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9A-Za-z.]+-[0-9a-f]{4}$")
_UNSAFE = re.compile(r"[^0-9A-Za-z.]")
MAX_BUCKETS = 1 << 16


def check_target(target: str) -> str:
    """Return `target` unchanged when it is "agent" or "customer", else raise ValueError."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    return target


CHANNEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_channel(channel: str) -> str:
    """Return `channel` unchanged when it is a safe channel name, else raise ValueError."""
    if not isinstance(channel, str) or not CHANNEL_PATTERN.match(channel):
        raise ValueError(f"channel must match {CHANNEL_PATTERN.pattern}, got {channel!r}")
    return channel


def check_snapshot_id(snapshot: str) -> str:
    """Return `snapshot` unchanged when it is a well-formed snapshot id, else raise ValueError."""
    if not isinstance(snapshot, str) or not SNAPSHOT_ID_PATTERN.match(snapshot):
        raise ValueError(f"snapshot must look like 20261128T010203Z-v3-1a2b, got {snapshot!r}")
    return snapshot


def new_snapshot_id(model_version: str | int | None = None, now: datetime | None = None) -> str:
    """A new snapshot id: UTC time, model version and 4 random hex digits (sortable by time)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    version = _UNSAFE.sub("", str(model_version)) if model_version not in (None, "") else ""
    tag = f"v{version}" if version else "local"
    return f"{now:%Y%m%dT%H%M%SZ}-{tag}-{secrets.token_hex(2)}"


def n_buckets_for(n_users: int, users_per_bucket: int = 1024) -> int:
    """The bucket count for `n_users`: a power of two near n_users / users_per_bucket."""
    if n_users < 0:
        raise ValueError(f"n_users must be >= 0, got {n_users}")
    if users_per_bucket < 1:
        raise ValueError(f"users_per_bucket must be >= 1, got {users_per_bucket}")
    wanted = max(1, -(-n_users // users_per_bucket))
    return min(MAX_BUCKETS, 1 << (wanted - 1).bit_length())


def check_n_buckets(n_buckets: int) -> int:
    """Return `n_buckets` when it is a power of two in 1..65536, else raise ValueError."""
    if not isinstance(n_buckets, (int, np.integer)) or not 1 <= n_buckets <= MAX_BUCKETS:
        raise ValueError(f"n_buckets must be a power of two in 1..{MAX_BUCKETS}, got {n_buckets!r}")
    if n_buckets & (n_buckets - 1):
        raise ValueError(f"n_buckets must be a power of two, got {n_buckets}")
    return int(n_buckets)


def bucket_of(member_id: str, n_buckets: int) -> int:
    """The bucket of one user (or SKU) id: crc32 of its UTF-8 bytes, masked to `n_buckets`."""
    return zlib.crc32(member_id.encode()) & (n_buckets - 1)


def buckets_of(member_ids: Iterable[bytes], n_buckets: int) -> np.ndarray:
    """Buckets (int64) of many UTF-8 encoded ids; same rule as `bucket_of`."""
    crc = np.fromiter(map(zlib.crc32, member_ids), dtype=np.int64)
    return crc & (n_buckets - 1)


def fallback_field(kind: str, value: object = None) -> str:
    """Field of a fallback list in the snapshot's fallback hash: global, region:<r>, tier:<t>."""
    if kind == "global":
        if value is not None:
            raise ValueError(f"the global fallback takes no value, got {value!r}")
        return "global"
    if kind not in ("region", "tier"):
        raise ValueError(f"fallback kind must be global, region or tier, got {kind!r}")
    if value is None or str(value) == "":
        raise ValueError(f"a {kind} fallback needs a value, got {value!r}")
    return f"{kind}:{value}"


@dataclass(frozen=True)
class CacheKeys:
    """Key names for one target ("agent" or "customer") under `prefix`."""

    target: str
    prefix: str = PREFIX

    def __post_init__(self) -> None:
        check_target(self.target)
        if "{" in self.prefix or "}" in self.prefix:
            # a brace would make a hash tag of the prefix: every key of every target, snapshot
            # and bucket in one cluster slot
            raise ValueError(f"prefix must not contain braces, got {self.prefix!r}")

    # ---- control keys (hash tag {target}: one slot, so the flip is one script) ------------
    @property
    def _control(self) -> str:
        return f"{self.prefix}:{{{self.target}}}"

    @property
    def current(self) -> str:
        """String: id of the live snapshot."""
        return f"{self._control}:current"

    @property
    def previous(self) -> str:
        """String: id of the snapshot before it (what rollback goes back to)."""
        return f"{self._control}:previous"

    @property
    def snapshots(self) -> str:
        """Sorted set: published snapshot ids still in Redis, scored by publish time (ms)."""
        return f"{self._control}:snapshots"

    @property
    def pending(self) -> str:
        """Sorted set: snapshots being written, scored by start time (ms)."""
        return f"{self._control}:pending"

    @property
    def lock(self) -> str:
        """String with a TTL: the token of the publish running for this target."""
        return f"{self._control}:lock"

    @property
    def channel(self) -> str:
        """Pub/sub channel told `flip <id>` / `rollback <id>` when `current` changes."""
        return f"{self._control}:events"

    def pointer(self, channel: str = "current") -> str:
        """String: id of the snapshot live on `channel` ("current", or a named A/B channel)."""
        if channel == "current":
            return self.current
        return f"{self._control}:channel:{check_channel(channel)}"

    def previous_of(self, channel: str = "current") -> str:
        """String: the snapshot `channel` served before its last flip (for rollback)."""
        if channel == "current":
            return self.previous
        return f"{self.pointer(channel)}:previous"

    @property
    def channels(self) -> str:
        """Set: names of the A/B channels of this target (their snapshots never expire)."""
        return f"{self._control}:channels"

    # ---- snapshot keys (immutable once live) ----------------------------------------------
    def _snap(self, snapshot: str) -> str:
        return f"{self.prefix}:{self.target}:{check_snapshot_id(snapshot)}"

    def meta(self, snapshot: str) -> str:
        """String: JSON meta record of a snapshot."""
        return f"{self._snap(snapshot)}:meta"

    def skus(self, snapshot: str) -> str:
        """String: the snapshot's SKU table (Arrow IPC stream); pick SKU indices point into it."""
        return f"{self._snap(snapshot)}:skus"

    def fallbacks(self, snapshot: str) -> str:
        """Hash: fallback field (`global`, `region:<r>`, `tier:<t>`) → encoded picks."""
        return f"{self._snap(snapshot)}:fallbacks"

    def picks(self, snapshot: str, bucket: int) -> str:
        """Hash: user id → encoded picks, for the users of one bucket."""
        return f"{self._snap(snapshot)}:picks:{int(bucket)}"

    def similar(self, snapshot: str, bucket: int) -> str:
        """Hash: SKU id → encoded similar SKUs, for the SKUs of one bucket."""
        return f"{self._snap(snapshot)}:similar:{int(bucket)}"

    def profiles(self, snapshot: str, bucket: int) -> str:
        """Hash: agent id → JSON profile, beside the picks of the same bucket (optional)."""
        return f"{self.picks(snapshot, bucket)}:profiles"

    def sku_stats(self, snapshot: str) -> str:
        """Hash: SKU id → JSON return figures, beside the SKU table (optional)."""
        return f"{self.skus(snapshot)}:stats"

    def snapshot_keys(self, snapshot: str, n_buckets: int, n_similar_buckets: int) -> list[str]:
        """Every key a snapshot may have, meta last (so meta is the last thing to go)."""
        keys = [self.picks(snapshot, b) for b in range(n_buckets)]
        keys += [self.similar(snapshot, b) for b in range(n_similar_buckets)]
        return [*keys, self.skus(snapshot), self.fallbacks(snapshot), self.meta(snapshot)]
