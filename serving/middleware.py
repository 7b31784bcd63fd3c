"""One pure-ASGI middleware for every request: request id, body cap, metrics, access log, 500s.

Pure ASGI (not Starlette's BaseHTTPMiddleware, which costs a task and a stream per request).
It gives each request an id (or keeps a safe incoming `X-Request-ID`), answers 413 before a
too-large body is read (`max_body_bytes`, or the cap `body_caps` gives the request's path, e.g.
a larger one for `POST /v1/events`), times the request by route template and status, writes one
JSON access log line, and turns any unhandled exception into a JSON 500 with the request id (the
traceback goes to the log, never to the client).
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.accesslog import AccessLog
from serving.errors import error_body
from serving.metrics import Metrics

log = logging.getLogger("recsys.serving")
_SAFE_ID = re.compile(rb"^[A-Za-z0-9_.:-]{1,64}$")


class ServingMiddleware:
    """See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        access_log: AccessLog,
        body_caps: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.body_caps = dict(body_caps or {})  # exact path → its own cap
        self.access_log = access_log
        self._boot = secrets.token_hex(4)
        self._count = itertools.count(1)

    def _request_id(self, incoming: bytes | None) -> str:
        if incoming is not None and _SAFE_ID.match(incoming):
            return incoming.decode()
        return f"{self._boot}-{next(self._count):x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        length: int | None = None
        incoming_id = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"x-request-id":
                incoming_id = value
        rid = self._request_id(incoming_id)
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())
        max_body = self.body_caps.get(scope["path"], self.max_body)
        status = 500
        started = False
        answered = False  # a 413 was sent while the app was still reading the body

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if answered:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        if length is not None and length > max_body:
            await self._send_error(send, 413, _too_large(max_body), rid, rid_header)
            status = 413
        else:
            seen = 0

            async def receive_capped() -> Message:
                # A streamed body over the cap: answer 413 now and tell the app the client left
                # (frameworks turn a body-read exception into their own 400).
                nonlocal seen, answered, status
                if answered:
                    return {"type": "http.disconnect"}
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > max_body and not started:
                        answered, status = True, 413
                        await self._send_error(send, 413, _too_large(max_body), rid, rid_header)
                        return {"type": "http.disconnect"}
                return message

            try:
                await self.app(scope, receive_capped if length is None else receive, send_wrapper)
            except Exception:  # noqa: BLE001 - no stack trace may reach a client
                log.exception("unhandled error in request %s %s", rid, scope.get("path"))
                if not started:
                    status = 500
                    await self._send_error(
                        send, 500, f"internal error; quote request id {rid}", rid, rid_header
                    )
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe(template, scope["method"], status, elapsed)
        if self.access_log.enabled:
            self.access_log.add(
                {
                    "ts": round(time.time(), 3),
                    "request_id": rid,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "ms": round(elapsed * 1000, 3),
                    "key_id": state.get("key_id"),
                }
            )

    @staticmethod
    async def _send_error(
        send: Send, status: int, message: str, rid: str, rid_header: tuple[bytes, bytes]
    ) -> None:
        body = error_body(status, message, rid, field="body" if status == 413 else None)
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            rid_header,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _too_large(max_body: int) -> str:
    return f"body: request body is larger than {max_body} bytes"
