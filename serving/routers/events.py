"""`POST /v1/events` (scope `events` or `admin`): shares, purchases, returns and clicks in.

Each event is checked on its own with the data contract's rules; the good ones of a batch go to
the events stream in one script call (an event id already stored within `event_dedupe_ttl_s`
is not stored again), the bad ones come back with their index and reason. Answered 200 once
the kept events are in Redis: a client that got no answer re-sends the batch, which is safe.
`recsys sink` drains the stream into Parquet (docs/events.md).

The route has a body cap of its own (`events_max_body_bytes`: a batch is far above the 64 KiB
every other route accepts), which `serving.main` gives the service middleware for `PATH`. This
module also sets the sink-lag gauges of /metrics.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from recsys.events.check import check_events, to_records
from recsys.events.lag import lag_seconds
from recsys.events.stream import XADD_EVENTS, script_call, seen_key
from serving.auth import KeyRecord
from serving.errors import ApiError, request_id_of
from serving.event_schemas import EventsIn, EventsOut
from serving.live import REDIS_ERRORS
from serving.routers.picks import ERRORS
from serving.security import api_key_header
from serving.services import Services

log = logging.getLogger("recsys.serving")
PATH = "/v1/events"
ApiKey = Annotated[str | None, Security(api_key_header)]
EVENT_ERRORS = {
    **ERRORS,
    403: ERRORS[403] | {"description": "The key has neither the events nor the admin scope"},
    413: ERRORS[413] | {"description": "Request body above events_max_body_bytes"},
    422: ERRORS[422] | {"description": "Not JSON, not {events: [...]}, or over 1,000 events"},
    503: ERRORS[503] | {"description": "Redis unavailable: nothing stored, re-send the batch"},
}


def build_router(svc: Services) -> APIRouter:
    """The events route bound to one app's services."""
    router = APIRouter(prefix="/v1", tags=["events"])
    settings, live, metrics = svc.settings, svc.live, svc.metrics
    seen_key(settings.event_stream, "-")  # refuse a stream no marker can share a slot with

    async def store(client: Redis, records: list[tuple[str, dict[str, Any]]]) -> list[int]:
        script = client.register_script(XADD_EVENTS)  # EVALSHA, loading the script once
        keys, args = script_call(
            settings.event_stream,
            records,
            maxlen=settings.event_stream_maxlen,
            ttl_s=settings.event_dedupe_ttl_s,
        )
        return [int(flag) for flag in await script(keys=keys, args=args)]

    async def writer(request: Request, api_key: ApiKey = None) -> KeyRecord:
        # A dependency, so the key is checked before the batch is validated.
        record = await svc.guard.scoped(api_key, "events", "write events")
        request.scope["state"]["key_id"] = record.key_id
        return record

    @router.post(
        "/events",
        response_model=EventsOut,
        responses=EVENT_ERRORS,
        summary="Post a batch of shares, purchases, returns and clicks",
        dependencies=[Depends(writer)],
    )
    async def post_events(request: Request, body: EventsIn) -> Any:
        """Check each event like the data loader does; store the good ones, list the bad ones
        with their 0-based index and reason. Re-sending an event id stores it once."""
        checked = check_events(body.events)
        # Stream order follows batch order.
        indexed = sorted(
            (int(index), kind, row)
            for kind, typed in checked.typed.items()
            for index, row in zip(typed.positions, to_records(typed), strict=True)
        )
        stored: list[int] = []
        if indexed:
            client = live.bulk
            if client is None:
                raise ApiError(503, "Redis is not connected", headers={"Retry-After": "1"})
            try:
                stored = await store(client, [(kind, row) for _, kind, row in indexed])
            except REDIS_ERRORS as exc:
                live.mark_down("xadd_events")
                raise ApiError(
                    503,
                    f"Redis is unavailable ({type(exc).__name__}): no event of this batch was "
                    "stored; re-send it (event ids make that safe)",
                    headers={"Retry-After": "1"},
                ) from exc
        n_new = sum(stored)
        metrics.events.labels("stored").inc(n_new)
        metrics.events.labels("duplicate").inc(len(stored) - n_new)
        metrics.events.labels("rejected").inc(len(checked.rejected))
        return {
            "accepted": len(indexed),
            "duplicates": len(stored) - n_new,
            "rejected": [
                {"index": r.index, "event_id": r.event_id, "reason": r.reason}
                for r in checked.rejected
            ],
            "request_id": request_id_of(request.scope),
        }

    return router


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _stream_lag(client: Redis, stream: str, group: str) -> tuple[int | None, float]:
    """(entries, seconds) the sink group is behind on `stream`, in O(1) calls; entries is None
    when Redis does not report it (6.2) and cannot be read off the stream."""
    info = await client.xinfo_stream(stream)
    last_generated = info.get("last-generated-id")
    found = [g for g in await client.xinfo_groups(stream) if _text(g.get("name")) == group]
    if not found:  # the sink never ran: the whole stream waits
        first = info.get("first-entry")
        return int(info.get("length", 0)), lag_seconds(last_generated, first and first[0])
    state = found[0]
    pending = int(state.get("pending", 0))
    oldest = None
    if pending:
        oldest = (await client.xpending(stream, group)).get("min")
    if _text(state.get("last-delivered-id")) != _text(last_generated) and not oldest:
        page = await client.xrange(
            stream, f"({_text(state.get('last-delivered-id'))}", "+", count=1
        )
        oldest = page[0][0] if page else None
    reported = state.get("lag")
    entries = None if reported is None else int(reported) + pending
    return entries, lag_seconds(last_generated, oldest)


async def watch_sink_lag(svc: Services, stop: asyncio.Event) -> None:
    """Set the sink-lag gauges of /metrics every `sink_lag_interval_s` until `stop` is set."""
    s = svc.settings
    while not stop.is_set():
        await asyncio.sleep(s.sink_lag_interval_s)
        client = svc.live.bulk
        if client is None or not svc.live.redis_usable():
            continue
        for stream in (s.event_stream, s.exposure_stream):
            try:
                entries, seconds = await _stream_lag(client, stream, s.sink_group)
            except ResponseError:
                continue  # the stream does not exist yet
            except REDIS_ERRORS as exc:
                log.debug("sink lag of %s not read: %r", stream, exc)
                break
            svc.metrics.sink_lag_seconds.labels(stream).set(seconds)
            if entries is not None:
                svc.metrics.sink_lag.labels(stream).set(entries)
