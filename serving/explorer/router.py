"""Routes of the picks explorer under `/explorer`: server-rendered pages behind an admin login.

Every page needs a session (`serving.explorer.sessions`); without one it redirects to the
login form. Pages are Jinja templates with autoescaping on, served with a strict Content
Security Policy (scripts and styles only from `/explorer/static`), so a SKU title holding
markup shows as text. Forms that change something carry the session's CSRF token.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from recsys.cache.keys import SUSPENDED
from recsys.columns import Columns
from recsys.quality.store import LIFT_SCRIPT, lift_call
from serving.answer import MAX_K
from serving.errors import ApiError, request_id_of
from serving.explorer.reader import TARGET, ExplorerReader, SnapshotInfo
from serving.explorer.reports import find_reports, report_file
from serving.explorer.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionStore,
    same_token,
)
from serving.explorer.views import Feed, mark_overlap, mlflow_run_url, profile_view, when_text
from serving.live import REDIS_ERRORS
from serving.params import check_id, check_int
from serving.routers.admin import _suspension_out as suspension_view
from serving.served import ServedSnapshot
from serving.services import Services

C = Columns
PREFIX = "/explorer"
HERE = Path(__file__).parent
STATIC_URL = f"{PREFIX}/static"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Reports are whole HTML documents (their own inline scripts and styles): they run in a
# sandbox, an opaque origin that cannot use the explorer's session.
REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts allow-popups",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 20
LOGIN_TOKEN_TTL_S = 900

Handler = Callable[[Request, Session], Awaitable[Response]]


def make_templates() -> Environment:
    """The Jinja environment of the explorer (autoescape on for every template)."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined
    )
    env.globals.update(prefix=PREFIX, static=STATIC_URL)
    return env


def mount_static(app: FastAPI) -> None:
    """Serve the explorer's CSS and JS from `/explorer/static` (no CDN: works offline)."""
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="explorer-static")


def safe_next(value: str | None) -> str:
    """A post-login destination inside the explorer (anything else goes to its front page)."""
    if (
        value
        and value.startswith(f"{PREFIX}/")
        and "//" not in value
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return f"{PREFIX}/"


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form post (the last value of a repeated field wins)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise ApiError(415, f"expected a form post ({FORM_TYPE}), got {kind or 'no body'}")
    body = (await request.body()).decode("utf-8", "replace")
    try:
        return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError as exc:
        raise ApiError(400, f"form: {exc}") from None


def build_router(svc: Services) -> APIRouter:
    """The explorer's routes bound to one app's services."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    settings, live = svc.settings, svc.live
    env = make_templates()
    reader = ExplorerReader(svc)
    sessions = SessionStore(live, settings.explorer_session_ttl_s, settings.auth_enabled)

    def page(name: str, http_status: int = 200, /, **context: Any) -> HTMLResponse:
        context.setdefault("session", None)
        context.setdefault("nav", "")
        html = env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=http_status, headers=PAGE_HEADERS)

    def error_page(status: int, message: str, session: Session | None) -> HTMLResponse:
        return page("error.html", status, message=message, status=status, session=session)

    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})

    def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The handler behind a login; its errors become an HTML page naming what went wrong."""

        async def endpoint(request: Request) -> Response:
            session = None
            try:
                session = await sessions.load(request.cookies.get(SESSION_COOKIE))
                if session is None:
                    target = request.url.path
                    if request.url.query:
                        target += f"?{request.url.query}"
                    return redirect(f"{PREFIX}/login?next={quote(target, safe='')}")
                request.scope["state"]["key_id"] = session.key_id
                return await handler(request, session)
            except ApiError as exc:
                return error_page(exc.status, exc.message, session)
            except REDIS_ERRORS as exc:
                return error_page(503, f"Redis is unavailable: {type(exc).__name__}", session)

        endpoint.__name__ = handler.__name__
        return endpoint

    def query_k(request: Request) -> int:
        raw = request.query_params.get("k") or str(settings.default_k)
        return check_int("k", raw, 1, MAX_K)

    # ---- login -------------------------------------------------------------------------------
    def login_page(
        request: Request, status: int = 200, message: str = "", next_url: str | None = None
    ) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        response = page(
            "login.html",
            status,
            message=message,
            token=token,
            next=safe_next(next_url or request.query_params.get("next")),
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=LOGIN_TOKEN_TTL_S,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        """The login form (straight to the destination when already logged in)."""
        try:
            if await sessions.load(request.cookies.get(SESSION_COOKIE)) is not None:
                return redirect(safe_next(request.query_params.get("next")))
        except REDIS_ERRORS as exc:
            return error_page(503, f"Redis is unavailable: {type(exc).__name__}", None)
        return login_page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        """Check the admin key, start a session, set its cookie and go on."""
        try:
            form = await read_form(request)
            token = request.cookies.get(LOGIN_COOKIE, "")
            next_url = form.get("next")
            if not token or not same_token(token, form.get("token")):
                return login_page(
                    request, 400, "The login form expired: please try again.", next_url
                )
            key = form.get("api_key", "").strip()
            try:
                record = await svc.guard.scoped(key or None, "admin", "use the picks explorer")
            except ApiError as exc:
                message = "That is not a valid API key." if exc.status == 401 else exc.message
                return login_page(request, exc.status, message, next_url)
            sid, _ = await sessions.create(key, record)
        except ApiError as exc:
            return error_page(exc.status, exc.message, None)
        except REDIS_ERRORS as exc:
            return error_page(503, f"Redis is unavailable: {type(exc).__name__}", None)
        response = redirect(safe_next(next_url))
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=settings.explorer_session_ttl_s,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    async def logout(request: Request, session: Session) -> Response:
        """End the session (server side too: the cookie is worthless afterwards)."""
        form = await read_form(request)
        if not session.csrf_ok(form.get("csrf")):
            return error_page(403, "CSRF token missing or wrong: reload the page", session)
        await sessions.end(request.cookies.get(SESSION_COOKIE))
        response = redirect(f"{PREFIX}/login")
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    # ---- overview ----------------------------------------------------------------------------
    def describe(info: SnapshotInfo) -> dict[str, Any]:
        meta = info.meta
        return {
            "info": info,
            "mlflow_url": mlflow_run_url(settings.mlflow_ui_url, meta.get("run_id")),
            "counts": meta.get("counts") or {},
        }

    async def overview(request: Request, session: Session) -> Response:
        """The live snapshots' meta, the active experiments, the newest A/B reports."""
        targets = []
        for target in ("agent", "customer"):
            snapshots = [describe(i) for i in await reader.snapshots(target)]
            live_one = next((s for s in snapshots if "current" in s["info"].pointers), None)
            targets.append({"target": target, "live": live_one, "snapshots": snapshots})
        return page(
            "overview.html",
            session=session,
            nav="overview",
            targets=targets,
            experiments=[
                (exp, source, live.experiments.active.get(exp.target) == exp)
                for exp, source in live.experiments.effective().values()
            ],
            reports=find_reports(settings.reports_dir, limit=5),
            reports_dir=settings.reports_dir,
            n_suspended=len(live.suspended_records),
        )

    # ---- agents ------------------------------------------------------------------------------
    async def search(request: Request, session: Session) -> Response:
        """Go to the page of the agent id typed in the search box."""
        agent_id = check_id("agent_id", (request.query_params.get("agent_id") or "").strip())
        return redirect(f"{PREFIX}/agents/{quote(agent_id, safe='')}")

    def live_agent_snapshot() -> ServedSnapshot:
        served = live.snapshot(TARGET)
        if served is None:
            raise ApiError(503, "no agent snapshot is live yet: publish one (`recsys publish`)")
        return served

    def hints(profile: dict[str, Any] | None) -> tuple[str | None, str | None]:
        if not profile:
            return None, None
        tier = profile.get("tier")
        region = profile.get("region")
        return (None if region is None else str(region)), (None if tier is None else str(tier))

    async def agent(request: Request, session: Session) -> Response:
        """Her profile and her picks as she is served them, with her A/B variant."""
        agent_id = check_id("agent_id", request.path_params["agent_id"])
        k = query_k(request)
        profile = profile_view(await reader.profile(live_agent_snapshot(), agent_id))
        region, tier = hints(profile)
        feed = await reader.as_served(agent_id, k, region, tier, request_id_of(request.scope))
        assigned = live.experiments.assign(TARGET, agent_id)
        return page(
            "agent.html",
            session=session,
            nav="agents",
            agent_id=agent_id,
            k=k,
            profile=profile,
            region=region,
            tier=tier,
            feed=feed,
            experiment=assigned[0] if assigned else None,
            variant=assigned[1] if assigned else None,
        )

    async def default_sides(agent_id: str) -> tuple[str, str]:
        """Two variants of the running experiment, else the live snapshot and the previous."""
        exp = live.experiments.active.get(TARGET)
        if exp is not None and len(exp.variants) > 1:
            return f"channel:{exp.variants[0].channel}", f"channel:{exp.variants[1].channel}"
        previous = await reader.client.get(live_agent_snapshot().snapshot.keys.previous)
        right = f"snapshot:{previous.decode()}" if previous else "channel:current"
        return "channel:current", right

    async def compare(request: Request, session: Session) -> Response:
        """Her picks from two channels or snapshots side by side, the overlap highlighted."""
        agent_id = check_id("agent_id", request.path_params["agent_id"])
        k = query_k(request)
        left_default, right_default = await default_sides(agent_id)
        chosen = (
            request.query_params.get("left") or left_default,
            request.query_params.get("right") or right_default,
        )
        profile = await reader.profile(live_agent_snapshot(), agent_id)
        region, tier = hints(profile)
        exp = live.experiments.active.get(TARGET)
        variants = {v.channel: v.name for v in exp.variants} if exp is not None else {}
        feeds: list[Feed] = []
        for source in chosen:
            served, label = await reader.resolve(TARGET, source)
            name = source.partition(":")[2]
            if source.startswith("channel:") and name in variants:
                label += f" (variant {variants[name]})"
            feeds.append(await reader.feed_from(served, agent_id, k, region, tier, label))
        overlap = mark_overlap(feeds[0], feeds[1])
        return page(
            "compare.html",
            session=session,
            nav="agents",
            agent_id=agent_id,
            k=k,
            feeds=feeds,
            chosen=chosen,
            overlap=overlap,
            channels=await reader.channels(TARGET),
            snapshots=await reader.snapshots(TARGET),
            variants=variants,
        )

    # ---- suspensions -------------------------------------------------------------------------
    async def suspensions(request: Request, session: Session) -> Response:
        """Every suspended SKU with its reason and numbers, and a button to lift it."""
        raw = await reader.client.hgetall(SUSPENDED)
        rows = []
        served = live.snapshot(TARGET)
        for sku, value in sorted(raw.items()):
            try:
                record = orjson.loads(value)
            except orjson.JSONDecodeError:
                record = {"reason": value.decode(errors="replace")}
            view = suspension_view(sku.decode(), record)
            view["title"] = _title(served, view["sku_id"])
            view["when"] = when_text(view["suspended_at"])
            rows.append(view)
        lifted = request.query_params.get("lifted")
        return page(
            "suspensions.html",
            session=session,
            nav="suspensions",
            rows=rows,
            lifted=lifted if lifted and len(lifted) <= 64 else None,
        )

    async def lift(request: Request, session: Session) -> Response:
        """Serve a suspended SKU again; the lift is remembered as by `recsys suspensions lift`."""
        form = await read_form(request)
        if not session.csrf_ok(form.get("csrf")):
            return error_page(403, "CSRF token missing or wrong: reload the page", session)
        sku_id = check_id("sku_id", request.path_params["sku_id"])
        # the same script as `recsys suspensions lift`: both hashes share a slot, so the field
        # goes and the lift is recorded atomically, on one server or a Redis Cluster
        keys, args = lift_call(sku_id, by=f"explorer:{session.key_id}", always_record=False)
        if not await reader.client.register_script(LIFT_SCRIPT)(keys=keys, args=args):
            return error_page(404, f"SKU {sku_id} is not suspended", session)
        live.set_suspended({k: v for k, v in live.suspended_records.items() if k != sku_id})
        return redirect(f"{PREFIX}/suspensions?lifted={quote(sku_id, safe='')}")

    # ---- A/B reports -------------------------------------------------------------------------
    async def reports(request: Request, session: Session) -> Response:
        """Links to the A/B reports found in the reports directory, newest first."""
        return page(
            "reports.html",
            session=session,
            nav="reports",
            reports=find_reports(settings.reports_dir),
            reports_dir=settings.reports_dir,
        )

    async def report(request: Request, session: Session) -> Response:
        """One report file (or a file beside it), sandboxed."""
        path = report_file(settings.reports_dir, request.path_params["path"])
        if path is None:
            return error_page(404, "no such report in the reports directory", session)
        return FileResponse(path, headers=REPORT_HEADERS)

    routes: list[tuple[str, Handler, str]] = [
        ("", overview, "GET"),
        ("/", overview, "GET"),
        ("/logout", logout, "POST"),
        ("/agents", search, "GET"),
        ("/agents/{agent_id}", agent, "GET"),
        ("/agents/{agent_id}/compare", compare, "GET"),
        ("/suspensions", suspensions, "GET"),
        ("/suspensions/{sku_id}/lift", lift, "POST"),
        ("/reports", reports, "GET"),
        ("/reports/{path:path}", report, "GET"),
    ]
    for path, handler, method in routes:
        router.add_api_route(path, guarded(handler), methods=[method])
    return router


def _title(served: ServedSnapshot | None, sku_id: str) -> str:
    """The SKU's title in a snapshot's SKU table ("" when unknown to it)."""
    row = served.row_of.get(sku_id) if served is not None else None
    if row is None or served is None:
        return ""
    title = served.snapshot.skus.frame[C.TITLE].iat[row]
    return "" if title is None else str(title)
