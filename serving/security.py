"""Key checks on the request path: `X-API-Key` → key record → scope → per-key rate limit.

Checks run against the in-process copy of the key hashes (`serving.auth.KeyCache`), so they
keep working while Redis is down; a key made after the last refresh is looked up once.
"""

from __future__ import annotations

import math

from fastapi.security import APIKeyHeader

from serving.auth import KeyRecord, TokenBucket
from serving.errors import ApiError
from serving.live import LiveState
from serving.metrics import Metrics
from serving.settings import Settings

API_KEY_HEADER = "X-API-Key"
SCHEME_NAME = "ApiKey"
MAX_KEY_LENGTH = 128
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name=SCHEME_NAME,
    auto_error=False,
    description="API key made with `recsys keys add --scope platform|agent:<id>|events|admin`",
)
# When auth is switched off (local development only), every caller acts as this record.
OPEN_ACCESS = KeyRecord(key_id="open", scopes=("admin",), name="auth disabled")


class Guard:
    """Authenticates keys, enforces scopes and rate-limits per key."""

    def __init__(self, settings: Settings, live: LiveState, metrics: Metrics) -> None:
        self.enabled = settings.auth_enabled
        self.live = live
        self.metrics = metrics
        self.limiter = TokenBucket(rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst)

    def _fail(self, status: int, reason: str, message: str, **kw: object) -> ApiError:
        self.metrics.auth_failures.labels(reason).inc()
        return ApiError(status, message, **kw)  # type: ignore[arg-type]

    async def check(self, key: str | None) -> KeyRecord:
        """The caller's key record; raise 401 (missing or invalid) or 429 (rate limited)."""
        if not self.enabled:
            return OPEN_ACCESS
        if not key:
            raise self._fail(
                401, "missing", f"{API_KEY_HEADER} header is required", field=API_KEY_HEADER
            )
        record = await self.live.lookup_key(key) if len(key) <= MAX_KEY_LENGTH else None
        if record is None:
            raise self._fail(
                401, "invalid", f"{API_KEY_HEADER} is not a valid key", field=API_KEY_HEADER
            )
        wait = self.limiter.take(record.key_id)
        if wait > 0:
            raise self._fail(
                429,
                "rate_limited",
                f"rate limit of key {record.key_id} exceeded; retry in {wait:.2f}s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return record

    def forbid(self, record: KeyRecord, what: str) -> ApiError:
        """A 403 naming what the key may not do."""
        return self._fail(
            403, "forbidden", f"key {record.key_id} (scopes {list(record.scopes)}) may not {what}"
        )

    async def agent_reader(self, key: str | None, agent_id: str) -> KeyRecord:
        """A key that may read `agent_id`'s picks (platform, admin, or agent:<agent_id>)."""
        record = await self.check(key)
        if not record.may_read_agent(agent_id):
            raise self.forbid(record, f"read agent {agent_id}'s picks")
        return record

    async def scoped(self, key: str | None, scope: str, what: str) -> KeyRecord:
        """A key holding `scope` (admin holds every scope)."""
        record = await self.check(key)
        if not record.allows(scope):
            raise self.forbid(record, what)
        return record

    async def any_reader(self, key: str | None, what: str) -> KeyRecord:
        """A key that may read picks of someone: platform, admin or any agent key."""
        record = await self.check(key)
        if not (record.allows("platform") or any(s.startswith("agent:") for s in record.scopes)):
            raise self.forbid(record, what)
        return record
