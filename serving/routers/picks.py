"""Picks routes: thin — check the key and inputs, ask the repository, return its bytes.

The hot routes take the raw request: inputs are checked by `serving.params` (documented to
OpenAPI through `openapi_extra`) and answers are bytes built by the repository, so no pydantic
validation runs per request; the response models still document the answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from serving.errors import request_id_of
from serving.params import FILTERS, REGION, check_id, k_param, parse_picks_query, path_id
from serving.schemas import AgentPicksOut, CustomerPicksOut, ErrorOut, SimilarOut
from serving.security import API_KEY_HEADER, SCHEME_NAME
from serving.services import Services

JSON = "application/json"
SECURITY = [{SCHEME_NAME: []}]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorOut, "description": d}
    for s, d in (
        (401, "Missing or invalid API key"),
        (403, "The key may not read this"),
        (413, "Request too large"),
        (422, "Invalid input (the message names the field)"),
        (429, "Rate limit of the key exceeded (see Retry-After)"),
        (503, "No snapshot is live yet"),
    )
}


def _header(request: Request) -> str | None:
    return request.headers.get(API_KEY_HEADER)


def build_router(svc: Services) -> APIRouter:
    """The picks routes bound to one app's services (closures: no per-request DI lookups)."""
    router = APIRouter(prefix="/v1", tags=["picks"])
    repo, guard, default_k = svc.repo, svc.guard, svc.settings.default_k

    def extra(user: str, doc: str, params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"parameters": [path_id(user, doc), *params], "security": SECURITY}

    @router.get(
        "/agents/{agent_id}/picks",
        response_model=AgentPicksOut,
        responses=ERRORS,
        summary="Ranked SKU picks for an agent's storefront feed",
        openapi_extra=extra("agent_id", "The agent", [k_param(default_k), *FILTERS]),
    )
    async def agent_picks(request: Request) -> Response:
        """Her personal picks, filtered and refilled; a new agent gets her region/tier fallback."""
        scope = request.scope
        agent_id = check_id("agent_id", scope["path_params"]["agent_id"])
        query = parse_picks_query(scope["query_string"], default_k)
        record = await guard.agent_reader(_header(request), agent_id)
        scope["state"]["key_id"] = record.key_id
        body = await repo.picks("agent", agent_id, query, request_id=request_id_of(scope))
        return Response(body, media_type=JSON)

    @router.get(
        "/customers/{customer_id}/picks",
        response_model=CustomerPicksOut,
        responses=ERRORS,
        summary="Ranked SKU picks for a customer",
        openapi_extra=extra("customer_id", "The customer", [k_param(default_k), *FILTERS]),
    )
    async def customer_picks(request: Request) -> Response:
        """A customer's picks (platform keys only), with the same filters and fallbacks."""
        scope = request.scope
        customer_id = check_id("customer_id", scope["path_params"]["customer_id"])
        query = parse_picks_query(scope["query_string"], default_k)
        record = await guard.scoped(_header(request), "platform", "read customers' picks")
        scope["state"]["key_id"] = record.key_id
        body = await repo.picks("customer", customer_id, query, request_id=request_id_of(scope))
        return Response(body, media_type=JSON)

    @router.get(
        "/skus/{sku_id}/similar",
        response_model=SimilarOut,
        responses=ERRORS,
        summary="SKUs similar to one SKU",
        openapi_extra=extra("sku_id", "The SKU", [k_param(10), REGION]),
    )
    async def similar_skus(request: Request) -> Response:
        """Similar SKUs from the live agent snapshot; else popular SKUs of the same category."""
        scope = request.scope
        sku_id = check_id("sku_id", scope["path_params"]["sku_id"])
        query = parse_picks_query(scope["query_string"], 10, filters=False)
        record = await guard.any_reader(_header(request), "read similar SKUs")
        scope["state"]["key_id"] = record.key_id
        body = await repo.similar(
            sku_id, query.k, region=query.region, request_id=request_id_of(scope)
        )
        return Response(body, media_type=JSON)

    return router
