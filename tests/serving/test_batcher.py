"""Concurrent HGETs are coalesced into one pipeline per event-loop turn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from serving.batcher import HgetBatcher


def _counting(batcher: HgetBatcher) -> list[int]:
    sizes: list[int] = []
    run = batcher._run

    async def counted(batch: Any) -> None:
        sizes.append(len(batch))
        await run(batch)

    batcher._run = counted  # type: ignore[method-assign]
    return sizes


def test_concurrent_hgets_share_one_round_trip(redis_url: str, redis_client: Any) -> None:
    redis_client.hset("h", mapping={f"f{i}": f"v{i}" for i in range(50)})

    async def scenario() -> tuple[list[Any], list[Any], list[int]]:
        client = Redis.from_url(redis_url)
        batcher = HgetBatcher(lambda: client, max_batch=32)
        sizes = _counting(batcher)
        together = await asyncio.gather(*(batcher.hget("h", f"f{i}") for i in range(40)))
        alone = [await batcher.hget("h", "f7"), await batcher.hget("h", "missing")]
        await client.aclose()
        return together, alone, sizes

    together, alone, sizes = asyncio.run(scenario())
    assert together == [f"v{i}".encode() for i in range(40)]
    assert alone == [b"v7", None]
    assert sizes == [32, 8, 1, 1]  # capped at max_batch; a lone call is not delayed


def test_every_waiter_gets_the_error() -> None:
    async def scenario() -> list[Any]:
        batcher = HgetBatcher(lambda: None)
        return await asyncio.gather(
            *(batcher.hget("h", str(i)) for i in range(3)), return_exceptions=True
        )

    errors = asyncio.run(scenario())
    assert [type(e) for e in errors] == [ConnectionError] * 3
    with pytest.raises(ConnectionError, match="not connected"):
        raise errors[0]
