"""Ops routes: liveness, readiness, Prometheus metrics, and the benchmark's constant route."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from serving.live import REDIS_ERRORS
from serving.schemas import HealthOut, ReadyOut
from serving.services import Services

JSON = "application/json"


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
        response_model=ReadyOut,
        responses={503: {"model": ReadyOut, "description": "Redis unreachable or no snapshot"}},
    )
    async def readyz() -> Response:
        """Ready when Redis answers PING and an agent snapshot is live."""
        redis_ok = False
        if live.redis is not None:
            try:
                redis_ok = bool(await live.redis.ping())
            except REDIS_ERRORS:
                live.mark_down("ping")
        snapshots = {f"{t}:{c}": s.id for (t, c), s in sorted(live.snapshots.items())}
        ready = redis_ok and live.snapshot("agent") is not None
        out = ReadyOut(
            status="ready" if ready else "not ready", redis=redis_ok, snapshots=snapshots
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
