"""API keys: made once, kept only as a SHA-256 hash in Redis, each with scopes.

Scopes: `platform` (any agent's or customer's picks), `agent:<id>` (that agent's picks only),
`events` (write events), `admin` (suspensions, experiments, everything). The service keeps an
in-process copy of the hashes so key checks keep working while Redis is down.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

KEYS_HASH = "auth:v1:keys"
SCOPE_RE = re.compile(r"^(platform|events|admin|agent:[A-Za-z0-9_.:-]{1,64})$")
KEY_PREFIX = "rk_"


def hash_key(key: str) -> str:
    """SHA-256 hex digest of an API key (what is stored)."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_scope(scope: str) -> str:
    """Return `scope` if valid, else raise ValueError naming it."""
    if not SCOPE_RE.match(scope):
        raise ValueError(
            f"invalid scope {scope!r}: use platform, events, admin or agent:<agent_id>"
        )
    return scope


@dataclass(frozen=True)
class KeyRecord:
    """What is known about a key: its id (hash prefix), scopes, label and creation time."""

    key_id: str
    scopes: tuple[str, ...]
    name: str = ""
    created_at: float = 0.0

    def allows(self, scope: str) -> bool:
        """True if this key may act with `scope` (admin may do anything)."""
        return "admin" in self.scopes or scope in self.scopes

    def may_read_agent(self, agent_id: str) -> bool:
        """True if this key may read `agent_id`'s picks."""
        return self.allows("platform") or f"agent:{agent_id}" in self.scopes

    @classmethod
    def from_json(cls, key_hash: str, raw: bytes | str) -> KeyRecord:
        """Decode a stored record."""
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            key_id=key_hash[:12],
            scopes=tuple(data.get("scopes", ())),
            name=str(data.get("name", "")),
            created_at=float(data.get("created_at", 0.0)),
        )


def add_key(client: Any, scopes: list[str], name: str = "") -> tuple[str, KeyRecord]:
    """Create a key with `scopes`; returns the plaintext key (shown once) and its record."""
    if not scopes:
        raise ValueError("a key needs at least one scope")
    scopes = [check_scope(s) for s in scopes]
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_hash = hash_key(key)
    record = {"scopes": scopes, "name": name, "created_at": time.time()}
    client.hset(KEYS_HASH, key_hash, orjson.dumps(record))
    return key, KeyRecord.from_json(key_hash, orjson.dumps(record))


def revoke_key(client: Any, key_or_id: str) -> int:
    """Revoke a key given the key itself or its id (hash prefix); returns how many went."""
    if key_or_id.startswith(KEY_PREFIX):
        return int(client.hdel(KEYS_HASH, hash_key(key_or_id)))
    if len(key_or_id) < 8:
        raise ValueError(f"key id must be at least 8 characters, got {key_or_id!r}")
    matches = [h.decode() for h in client.hkeys(KEYS_HASH) if h.decode().startswith(key_or_id)]
    if len(matches) > 1:
        raise ValueError(f"key id {key_or_id!r} is ambiguous ({len(matches)} keys): give more")
    return int(client.hdel(KEYS_HASH, *matches)) if matches else 0


def list_keys(client: Any) -> list[KeyRecord]:
    """Every stored key's record (never the key itself)."""
    return sorted(
        (KeyRecord.from_json(h.decode(), v) for h, v in client.hgetall(KEYS_HASH).items()),
        key=lambda r: r.created_at,
    )


@dataclass
class KeyCache:
    """In-process copy of the key hashes, refreshed from Redis at most every `ttl_s` seconds."""

    ttl_s: float = 5.0
    records: dict[str, KeyRecord] = field(default_factory=dict)
    loaded_at: float = float("-inf")

    def stale(self, now: float | None = None) -> bool:
        """True when the copy is older than `ttl_s`."""
        return (now if now is not None else time.monotonic()) - self.loaded_at > self.ttl_s

    def replace(self, raw: dict[bytes, bytes]) -> None:
        """Replace the copy with a fresh HGETALL result."""
        self.records = {h.decode(): KeyRecord.from_json(h.decode(), v) for h, v in raw.items()}
        self.loaded_at = time.monotonic()

    def lookup(self, key: str) -> KeyRecord | None:
        """The record of `key`, or None if unknown."""
        return self.records.get(hash_key(key))


@dataclass
class TokenBucket:
    """Per-key rate limit: `rate` requests/s with bursts up to `burst` (in-process, per worker)."""

    rate: float
    burst: float
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key_id: str, now: float | None = None) -> float:
        """Consume one token; returns 0 if allowed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(key_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self.buckets[key_id] = (tokens - 1.0, now)
            return 0.0
        self.buckets[key_id] = (tokens, now)
        return (1.0 - tokens) / self.rate
