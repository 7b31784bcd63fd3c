"""Serving fixtures: settings on the test Redis, API keys, a published tiny world, a client."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette: "install httpx2" (the client still works)
    from fastapi.testclient import TestClient

from serving.auth import add_key
from serving.main import create_app
from serving.settings import Settings
from tests.serving.world import publish


def make_settings(redis_url: str, **overrides: Any) -> Settings:
    """Test settings: fast refresh and flush, generous timeouts (a loaded CI box), no log."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "refresh_interval_s": 0.05,
        "exposure_flush_interval_s": 0.05,
        "redis_connect_timeout_s": 0.5,
        "redis_timeout_s": 0.5,
        "redis_down_backoff_s": 0.2,
        "rate_limit_per_s": 10_000.0,
        "rate_limit_burst": 10_000.0,
        "access_log": False,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def serve(settings: Settings) -> Iterator[TestClient]:
    """A client on a fresh app with its lifespan (Redis pool, refresher, exposure writer)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def wait_for(check: Callable[[], Any], timeout_s: float = 3.0, every_s: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value {value!r})")
        time.sleep(every_s)


@pytest.fixture()
def settings(redis_url: str, redis_client: Any) -> Settings:
    """Settings on the (flushed) test Redis."""
    return make_settings(redis_url)


@pytest.fixture()
def keys(redis_client: Any) -> dict[str, str]:
    """Plaintext keys by role: platform, admin, events, and agent a00's own app."""
    return {
        "platform": add_key(redis_client, ["platform"], name="platform")[0],
        "admin": add_key(redis_client, ["admin"], name="ops")[0],
        "events": add_key(redis_client, ["events"], name="events")[0],
        "a00": add_key(redis_client, ["agent:a00"], name="a00 app")[0],
    }


@pytest.fixture()
def published(redis_client: Any) -> str:
    """The tiny world published for agents (a00 has 3 customers rebuying s01); its snapshot."""
    return publish(redis_client, history={("a00", "s01"): 3}).snapshot


@pytest.fixture()
def client(settings: Settings, published: str, keys: dict[str, str]) -> Iterator[TestClient]:
    """A client on an app serving the published world, sending the platform key."""
    with serve(settings) as c:
        c.headers["X-API-Key"] = keys["platform"]
        yield c


def sku_ids(response: Any) -> list[str]:
    """SKU ids of a picks (or similar) answer, in order."""
    body = response.json()
    return [p["sku_id"] for p in body.get("picks", body.get("similar", []))]
