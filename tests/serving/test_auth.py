from __future__ import annotations

import pytest

from serving.auth import (
    KEYS_HASH,
    KeyCache,
    TokenBucket,
    add_key,
    hash_key,
    list_keys,
    revoke_key,
)


def test_add_key_stores_only_the_hash(redis_client) -> None:
    key, record = add_key(redis_client, ["platform"], name="storefront")
    stored = redis_client.hgetall(KEYS_HASH)
    assert list(stored) == [hash_key(key).encode()]
    assert key.encode() not in b"".join(stored.values())
    assert record.scopes == ("platform",)
    assert [r.name for r in list_keys(redis_client)] == ["storefront"]


def test_scopes_decide_what_a_key_may_read(redis_client) -> None:
    _, platform = add_key(redis_client, ["platform"])
    _, agent = add_key(redis_client, ["agent:A1"])
    _, admin = add_key(redis_client, ["admin"])
    assert platform.may_read_agent("A1") and platform.may_read_agent("A2")
    assert agent.may_read_agent("A1") and not agent.may_read_agent("A2")
    assert admin.allows("events") and not platform.allows("events")


def test_add_key_rejects_bad_scopes(redis_client) -> None:
    with pytest.raises(ValueError, match="invalid scope 'root'"):
        add_key(redis_client, ["root"])
    with pytest.raises(ValueError, match="at least one scope"):
        add_key(redis_client, [])


def test_revoke_by_key_and_by_id(redis_client) -> None:
    key1, _ = add_key(redis_client, ["platform"])
    key2, rec2 = add_key(redis_client, ["events"])
    assert revoke_key(redis_client, key1) == 1
    assert revoke_key(redis_client, rec2.key_id) == 1
    assert redis_client.hlen(KEYS_HASH) == 0
    assert revoke_key(redis_client, key2) == 0


def test_key_cache_lookup_and_staleness(redis_client) -> None:
    key, _ = add_key(redis_client, ["platform"])
    cache = KeyCache(ttl_s=5.0)
    assert cache.stale()
    cache.replace(redis_client.hgetall(KEYS_HASH))
    assert not cache.stale()
    assert cache.lookup(key) is not None
    assert cache.lookup("rk_nope") is None


def test_token_bucket_limits_and_refills() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0)
    assert bucket.take("k", now=0.0) == 0.0
    assert bucket.take("k", now=0.0) == 0.0
    wait = bucket.take("k", now=0.0)
    assert wait == pytest.approx(0.5)
    assert bucket.take("k", now=0.5) == 0.0  # one token refilled after 0.5 s
    assert bucket.take("other", now=0.0) == 0.0  # buckets are per key
