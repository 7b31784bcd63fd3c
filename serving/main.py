"""The app factory: `create_app(settings)` wires the services, routes, errors and lifespan.

Run with `recsys serve`, or `uvicorn --factory serving.main:create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from fastapi import FastAPI

from serving.accesslog import AccessLog
from serving.errors import install_error_handlers
from serving.explorer import build_router as build_explorer
from serving.explorer import mount_static as mount_explorer_static
from serving.live import REDIS_ERRORS
from serving.middleware import ServingMiddleware
from serving.routers import admin, events, health, picks
from serving.services import Services
from serving.settings import Settings, get_settings

log = logging.getLogger("recsys.serving")
SHUTDOWN_WAIT_S = 2.0
DESCRIPTION = """
Ranked SKU picks for agents' storefront feeds and for customers, served from snapshots that
offline jobs publish into Redis. Every call needs an `X-API-Key`. Answers say where they come
from (`source`: `personal` or `fallback:<kind>`), which snapshot and model made them, and the
caller's A/B `variant`.
"""


def _setup_logging() -> None:
    """Service logs on stdout, unless the host configured the logger already."""
    logger = logging.getLogger("recsys.serving")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


async def _final_flush(svc: Services) -> None:
    """Write the exposures still buffered (bounded in time: shutdown must finish)."""
    if not len(svc.exposures) or svc.live.bulk is None:
        return
    try:
        await asyncio.wait_for(svc.exposures.flush(svc.live.bulk), timeout=SHUTDOWN_WAIT_S)
    except (TimeoutError, *REDIS_ERRORS) as exc:
        log.error("%d exposures lost at shutdown: %r", len(svc.exposures), exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-run app; Redis is opened (and the background tasks started) by its lifespan."""
    settings = settings or get_settings()
    _setup_logging()
    svc = Services.build(settings)
    access_log = AccessLog(settings.access_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await svc.live.open()
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(svc.live.run(stop), name="recsys-refresh"),
            asyncio.create_task(svc.exposures.run(svc.live, stop), name="recsys-exposures"),
            asyncio.create_task(access_log.run(stop), name="recsys-access-log"),
            asyncio.create_task(events.watch_sink_lag(svc, stop), name="recsys-sink-lag"),
        ]
        try:
            yield
        finally:
            # The loops also check `stop`: a cancellation swallowed inside the Redis client
            # (a timeout racing the cancel) must not hang the shutdown.
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)
            await _final_flush(svc)
            await svc.live.close()
            access_log.flush()

    app = FastAPI(
        title="recsys picks service",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = svc
    install_error_handlers(app)
    app.include_router(picks.build_router(svc))
    app.include_router(admin.build_router(svc))
    app.include_router(events.build_router(svc))
    app.include_router(health.build_router(svc))
    app.include_router(build_explorer(svc))
    mount_explorer_static(app)
    if settings.bench_endpoints:
        app.include_router(health.build_bench_router(svc))
    app.add_middleware(
        ServingMiddleware,
        metrics=svc.metrics,
        max_body_bytes=settings.max_body_bytes,
        body_caps={events.PATH: settings.events_max_body_bytes},  # a batch of events
        access_log=access_log,
    )
    return app
