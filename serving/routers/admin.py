"""Admin routes (scope `admin`): SKU suspensions and A/B experiments, live without redeploy."""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Security
from pydantic import ValidationError

from recsys.ab import Experiment
from recsys.cache.keys import SUSPENDED
from recsys.quality.store import LIFT_SCRIPT, lift_call
from serving.errors import ApiError, field_name
from serving.experiments import EXPERIMENTS_HASH
from serving.live import REDIS_ERRORS
from serving.routers.picks import ERRORS
from serving.schemas import (
    ID_PATTERN,
    ExperimentIn,
    ExperimentOut,
    ExperimentsOut,
    LiftedOut,
    SuspensionIn,
    SuspensionOut,
    SuspensionsOut,
)
from serving.security import api_key_header
from serving.services import Services

ApiKey = Annotated[str | None, Security(api_key_header)]
SkuId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
ExperimentName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", max_length=64)]
ADMIN_ERRORS = {**ERRORS, 404: ERRORS[403] | {"description": "Not found"}}
ADMIN_ERRORS[409] = ERRORS[403] | {"description": "Conflicts with the current configuration"}


def _unavailable(exc: BaseException) -> ApiError:
    return ApiError(
        503, f"Redis is unavailable: {type(exc).__name__}", headers={"Retry-After": "1"}
    )


def _suspension_out(sku_id: str, rec: Any) -> dict[str, Any]:
    """A stored suspension record in the documented shape (also ones written by other tools)."""
    rec = rec if isinstance(rec, dict) else {"reason": str(rec)}
    numbers = rec.get("numbers")
    at = rec.get("suspended_at", rec.get("at"))
    return {
        "sku_id": sku_id,
        "reason": str(rec.get("reason", "")),
        "numbers": {
            str(k): float(v)
            for k, v in (numbers.items() if isinstance(numbers, dict) else ())
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        },
        "suspended_at": at if isinstance(at, (int, float, str)) else None,
        "by": None if rec.get("by") is None else str(rec.get("by")),
    }


def build_router(svc: Services) -> APIRouter:
    """The admin routes bound to one app's services."""
    router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ADMIN_ERRORS)
    live, guard = svc.live, svc.guard

    async def admin(request: Request, key: str | None, what: str) -> str:
        record = await guard.scoped(key, "admin", what)
        request.scope["state"]["key_id"] = record.key_id
        return record.key_id

    def client() -> Any:
        if live.redis is None:
            raise ApiError(503, "Redis is not connected", headers={"Retry-After": "1"})
        return live.redis

    # ---- suspensions ------------------------------------------------------------------------
    @router.put("/skus/{sku_id}/suspension", response_model=SuspensionOut)
    async def suspend(
        request: Request, sku_id: SkuId, body: SuspensionIn, api_key: ApiKey = None
    ) -> dict[str, Any]:
        """Stop serving a SKU everywhere at once (every worker within a refresh interval)."""
        by = await admin(request, api_key, "suspend SKUs")
        record = {**body.model_dump(), "suspended_at": time.time(), "by": by}
        try:
            await client().hset(SUSPENDED, sku_id, orjson.dumps(record))
        except REDIS_ERRORS as exc:
            raise _unavailable(exc) from exc
        live.set_suspended({**live.suspended_records, sku_id: record})
        return {"sku_id": sku_id, **record}

    @router.delete("/skus/{sku_id}/suspension", response_model=LiftedOut)
    async def lift(request: Request, sku_id: SkuId, api_key: ApiKey = None) -> dict[str, Any]:
        """Serve a suspended SKU again; `lifted` is false when it was not suspended."""
        key_id = await admin(request, api_key, "lift suspensions")
        # the lift is remembered, so the next quality check does not suspend it again on the
        # purchases that caused this suspension
        keys, args = lift_call(sku_id, by=f"admin-api:{key_id}", always_record=False)
        try:
            lifted = bool(await client().register_script(LIFT_SCRIPT)(keys=keys, args=args))
        except REDIS_ERRORS as exc:
            raise _unavailable(exc) from exc
        live.set_suspended({k: v for k, v in live.suspended_records.items() if k != sku_id})
        return {"sku_id": sku_id, "lifted": lifted}

    @router.get("/suspensions", response_model=SuspensionsOut)
    async def suspensions(request: Request, api_key: ApiKey = None) -> dict[str, Any]:
        """Every suspended SKU with its reason record."""
        await admin(request, api_key, "list suspensions")
        try:
            raw = await client().hgetall(SUSPENDED)
        except REDIS_ERRORS as exc:
            raise _unavailable(exc) from exc
        out = []
        for sku, value in sorted(raw.items()):
            try:
                rec = orjson.loads(value)
            except orjson.JSONDecodeError:
                rec = {"reason": value.decode(errors="replace")}
            out.append(_suspension_out(sku.decode(), rec))
        return {"suspensions": out}

    # ---- experiments ------------------------------------------------------------------------
    def describe(exp: Experiment, source: str) -> dict[str, Any]:
        active = live.experiments.active.get(exp.target)
        return {
            **exp.model_dump(),
            "source": source,
            "active": active is not None and active.name == exp.name,
        }

    @router.get("/experiments", response_model=ExperimentsOut)
    async def list_experiments(request: Request, api_key: ApiKey = None) -> dict[str, Any]:
        """Every experiment (file and Redis; Redis overrides a file one of the same name)."""
        await admin(request, api_key, "read experiments")
        return {"experiments": [describe(e, s) for e, s in live.experiments.effective().values()]}

    @router.get("/experiments/{name}", response_model=ExperimentOut)
    async def get_experiment(
        request: Request, name: ExperimentName, api_key: ApiKey = None
    ) -> dict[str, Any]:
        """One experiment."""
        await admin(request, api_key, "read experiments")
        found = live.experiments.effective().get(name)
        if found is None:
            raise ApiError(404, f"name: no experiment {name!r}", field="name")
        return describe(*found)

    @router.put("/experiments/{name}", response_model=ExperimentOut)
    async def put_experiment(
        request: Request, name: ExperimentName, body: ExperimentIn, api_key: ApiKey = None
    ) -> dict[str, Any]:
        """Create or replace an experiment in Redis; every worker runs it within a second."""
        await admin(request, api_key, "change experiments")
        bad = [v.name for v in body.variants if not math.isfinite(v.weight)]
        if bad:
            raise ApiError(422, f"variants: weight of {bad} must be finite", field="variants")
        try:
            exp = Experiment(name=name, **body.model_dump())
        except ValidationError as exc:
            err = exc.errors()[0]
            field = field_name(err.get("loc", ())) or "body"
            raise ApiError(422, f"{field}: {err.get('msg')}", field=field) from exc
        other = live.experiments.conflict(exp)
        if other is not None:
            raise ApiError(
                409,
                f"experiment {other!r} already runs on target {exp.target!r}: "
                "disable it first (enabled: false)",
                field="enabled",
            )
        try:
            await client().hset(EXPERIMENTS_HASH, name, exp.model_dump_json())
        except REDIS_ERRORS as exc:
            raise _unavailable(exc) from exc
        live.experiments.set_redis({**live.experiments.from_redis, name: exp})
        await live.refresh_once()  # read the new variants' channel pointers now
        return describe(exp, "redis")

    @router.delete("/experiments/{name}")
    async def delete_experiment(
        request: Request, name: ExperimentName, api_key: ApiKey = None
    ) -> dict[str, Any]:
        """Remove an experiment from Redis (a file experiment of that name applies again)."""
        await admin(request, api_key, "change experiments")
        if name not in live.experiments.from_redis:
            where = "defined in the experiments file" if name in live.experiments.from_file else ""
            raise ApiError(
                404, f"name: no experiment {name!r} in Redis {where}".strip(), field="name"
            )
        try:
            await client().hdel(EXPERIMENTS_HASH, name)
        except REDIS_ERRORS as exc:
            raise _unavailable(exc) from exc
        live.experiments.set_redis(
            {k: v for k, v in live.experiments.from_redis.items() if k != name}
        )
        return {"name": name, "deleted": True}

    return router
