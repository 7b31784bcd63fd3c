"""Redis stopped mid-test: answers degrade to in-memory fallbacks, keys still check, recovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from recsys.cache.server import RedisServer, free_port, start_redis_server
from serving.auth import add_key
from tests.serving.conftest import make_settings, serve, sku_ids, wait_for
from tests.serving.world import publish


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone (it gets stopped and started again)."""
    server = start_redis_server(port=free_port(), workdir=tmp_path)
    yield server
    server.stop()


def test_outage_degrades_to_memory_then_recovers(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    direct = redis.Redis.from_url(private_redis.url)
    publish(direct)
    key, _ = add_key(direct, ["platform"])
    settings = make_settings(
        private_redis.url, redis_timeout_s=0.05, redis_connect_timeout_s=0.05, key_cache_ttl_s=0.1
    )
    with serve(settings) as c:
        c.headers["X-API-Key"] = key
        assert c.get("/v1/agents/a00/picks", params={"k": 3}).json()["source"] == "personal"
        direct.save()  # the restarted server loads this dump (same port, same directory)
        private_redis.stop()

        outage: list[Any] = [c.get("/v1/agents/a05/picks", params={"k": 3, "region": "south"})]
        assert outage[0].status_code == 200
        assert outage[0].json()["source"] == "fallback:degraded"
        assert sku_ids(outage[0]) == ["s12", "s13", "s14"]  # the in-memory south list
        # Lists already in memory are still personal; key checks run on the in-process copy.
        outage.append(c.get("/v1/agents/a00/picks", params={"k": 3}))
        assert outage[1].json()["source"] == "personal"
        assert c.get("/v1/agents/a00/picks", headers={"X-API-Key": "rk_unknown"}).status_code == 401
        assert c.get("/readyz").status_code == 503
        metrics = c.get("/metrics").text
        assert 'recsys_fallbacks_total{kind="degraded"} 1.0' in metrics
        assert "recsys_redis_errors_total" in metrics

        restarted = start_redis_server(port=private_redis.port, workdir=tmp_path)
        try:
            recovered = wait_for(
                lambda: (
                    (r := c.get("/v1/agents/a05/picks", params={"k": 3})).json()["source"]
                    == "personal"
                    and r
                ),
                timeout_s=5,
            )
            assert sku_ids(recovered) == ["s05", "s06", "s07"]
            assert c.get("/readyz").status_code == 200
            # Exposures of the outage were kept in memory and written once Redis was back.
            written = wait_for(
                lambda: (
                    {f[b"request_id"].decode() for _, f in direct.xrange(settings.exposure_stream)}
                    >= {r.json()["request_id"] for r in outage}
                )
            )
            assert written
        finally:
            restarted.stop()
