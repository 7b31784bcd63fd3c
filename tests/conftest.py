"""Shared fixtures: a real Redis server (REDIS_URL, or one started for the session)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from recsys.cache.server import RedisServer, start_redis_server

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A private redis-server for the test session; None when REDIS_URL points at one."""
    if os.environ.get("REDIS_URL"):
        yield None
        return
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    """URL of the real Redis the tests talk to."""
    return os.environ.get("REDIS_URL") or redis_server.url  # type: ignore[union-attr]


@pytest.fixture()
def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    """A client on a clean database (flushed before each test)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
