"""Ops routes: liveness, readiness, Prometheus metrics, and the benchmark's constant route."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import Field

from recsys.cache.connect import is_cluster_url, parse_redis_url
from serving.live import REDIS_ERRORS, LiveState
from serving.schemas import HealthOut, ReadyOut
from serving.services import Services

JSON = "application/json"


class ReadyzOut(ReadyOut):
    """Readiness, with the Redis Cluster masters that did not answer."""

    redis_nodes_down: list[str] = Field(
        default_factory=list,
        description="host:port of every Redis Cluster master that did not answer PING (all "
        "seed nodes when none could be reached); always empty for one Redis server",
    )


async def ping_redis(live: LiveState, url: str) -> tuple[bool, list[str]]:
    """(every node answered, nodes that did not): one PING to a server, or to each cluster master.

    A cluster client's default PING reaches one node only, so one master of several could be
    down unseen; each master is pinged on its own, all at once. Requests are kept off Redis
    (`mark_down`) only when nothing answers: with one master down the others still serve.
    """
    client: Any = live.redis
    if client is None:
        return False, []
    if not is_cluster_url(url):
        try:
            return bool(await client.ping()), []
        except REDIS_ERRORS as exc:
            live.mark_down("ping", exc)
            return False, []
    try:
        await client.initialize()  # no-op once the slots are known
        masters = client.get_primaries()
        answers = await asyncio.gather(
            *(client.ping(target_nodes=node) for node in masters), return_exceptions=True
        )
    except REDIS_ERRORS as exc:
        live.mark_down("ping", exc)
        return False, [f"{host}:{port}" for host, port in parse_redis_url(url).seeds]
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, REDIS_ERRORS):
            raise answer  # a bug, not an outage
    down = sorted(n.name for n, ok in zip(masters, answers, strict=True) if ok is not True)
    if down and len(down) == len(masters):
        live.mark_down("ping")
    elif down:
        live.metrics.redis_errors.labels("ping").inc()
    return bool(masters) and not down, down


def build_router(svc: Services) -> APIRouter:
    """/healthz, /readyz and /metrics (no API key: keep them on the internal network)."""
    router = APIRouter(tags=["ops"])
    live = svc.live

    @router.get("/healthz", response_model=HealthOut)
    async def healthz() -> Response:
        """The process is alive."""
        return Response(b'{"status":"ok"}', media_type=JSON)

    @router.get(
        "/readyz",
        response_model=ReadyzOut,
        responses={
            503: {
                "model": ReadyzOut,
                "description": "Redis (or a Redis Cluster master) unreachable, or no snapshot",
            }
        },
    )
    async def readyz() -> Response:
        """Ready when Redis (every master of a cluster) answers PING and an agent snapshot is
        live."""
        redis_ok, down = await ping_redis(live, svc.settings.redis_url)
        snapshots = {f"{t}:{c}": s.id for (t, c), s in sorted(live.snapshots.items())}
        ready = redis_ok and live.snapshot("agent") is not None
        out = ReadyzOut(
            status="ready" if ready else "not ready",
            redis=redis_ok,
            snapshots=snapshots,
            redis_nodes_down=down,
        )
        return Response(out.model_dump_json(), status_code=200 if ready else 503, media_type=JSON)

    @router.get(
        "/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
    )
    async def metrics() -> Response:
        """Prometheus metrics of this worker."""
        return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def build_bench_router(svc: Services) -> APIRouter:
    """`GET /v1/_bench/constant/{agent_id}`: a constant body the size of a picks answer."""
    router = APIRouter(prefix="/v1/_bench", include_in_schema=False)
    n = svc.settings.bench_body_bytes
    body = b'{"pad":"' + b"x" * max(0, n - 10) + b'"}'

    @router.get("/constant/{agent_id}")
    async def constant() -> Response:
        """The same path template as the picks route, none of its work."""
        return Response(body, media_type=JSON)

    return router
