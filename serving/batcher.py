"""Coalesce the request path's HGETs: misses in flight together go to Redis in one pipeline.

A lone HGET costs ~4x the CPU per command of one in a pipeline of 16 (the round trip, not
the command, is the cost: docs/benchmarks-serving.md). Requests that miss the in-process cache
in the same event-loop turn queue their (key, field); the batch is sent at the next turn, so an
idle service adds no wait and a busy one sends fewer, larger round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis


class HgetBatcher:
    """`await hget(key, field)` with pipelining across concurrent callers."""

    def __init__(self, client_of: Callable[[], Redis | None], max_batch: int = 64) -> None:
        self._client_of = client_of
        self.max_batch = max_batch
        self._pending: list[tuple[str, str, asyncio.Future[bytes | None]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def hget(self, key: str, field: str) -> bytes | None:
        """The value of `field` in hash `key` (None when absent); raises the Redis error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        self._pending.append((key, field, future))
        if len(self._pending) >= self.max_batch:
            self._send()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._send)
        return await future

    def _send(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, str, asyncio.Future[bytes | None]]]) -> None:
        try:
            client = self._client_of()
            if client is None:
                raise ConnectionError("Redis is not connected")
            if len(batch) == 1:
                key, field, _ = batch[0]
                values = [await client.hget(key, field)]
            else:
                pipe = client.pipeline(transaction=False)
                for key, field, _ in batch:
                    pipe.hget(key, field)
                values = await pipe.execute()
        except Exception as exc:  # every waiter gets the error
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (shutdown): so are the waiters
            for _, _, future in batch:
                future.cancel()
            raise
        for (_, _, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value)
