"""Explorer logins: a server-side session in Redis, named by a random id in an HttpOnly cookie.

The admin key itself never leaves the login request: the session record keeps only the key's
SHA-256 (what `auth:v1:keys` is indexed by), so every page re-checks that the key still exists
and still holds the `admin` scope (a revoked key ends its sessions at once). Redis stores the
session under the SHA-256 of its id, so a copy of Redis does not hold usable cookies. Each
session has its own CSRF token, which every form posts back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from serving.auth import KEYS_HASH, KeyRecord, hash_key
from serving.errors import ApiError
from serving.live import LiveState

SESSION_COOKIE = "recsys_explorer"
LOGIN_COOKIE = "recsys_explorer_login"  # double-submit token of the login form
SESSION_PREFIX = "explorer:v1:session:"
MAX_COOKIE = 128


@dataclass(frozen=True)
class Session:
    """A logged-in explorer user: the key's id (for audit records) and the CSRF token."""

    key_id: str
    key_hash: str
    csrf: str

    def csrf_ok(self, token: str | None) -> bool:
        """True when a posted form carries this session's CSRF token."""
        return same_token(self.csrf, token)


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a secret token with what a form posted (any text)."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def session_key(sid: str) -> str:
    """Redis key of a session id (its SHA-256: Redis never holds the cookie value)."""
    return SESSION_PREFIX + hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    """Creates, checks and ends explorer sessions in Redis."""

    def __init__(self, live: LiveState, ttl_s: int, auth_enabled: bool) -> None:
        self.live = live
        self.ttl_s = int(ttl_s)
        self.auth_enabled = auth_enabled

    @property
    def _client(self) -> Redis:
        if self.live.bulk is None:
            raise ApiError(503, "explorer: Redis is not connected", headers={"Retry-After": "1"})
        return self.live.bulk

    async def create(self, key: str, record: KeyRecord) -> tuple[str, Session]:
        """A new session for an admin key; returns the cookie value and the session."""
        sid = secrets.token_urlsafe(32)
        session = Session(
            key_id=record.key_id,
            key_hash=hash_key(key) if self.auth_enabled else "",
            csrf=secrets.token_urlsafe(32),
        )
        value = orjson.dumps(
            {
                "key_id": session.key_id,
                "key_hash": session.key_hash,
                "csrf": session.csrf,
                "created_at": time.time(),
            }
        )
        await self._client.set(session_key(sid), value, ex=self.ttl_s)
        return sid, session

    async def load(self, sid: str | None) -> Session | None:
        """The session of a cookie value, if it exists and its key is still an admin key."""
        if not sid or len(sid) > MAX_COOKIE:
            return None
        name = session_key(sid)
        raw = await self._client.get(name)
        if raw is None:
            return None
        data = orjson.loads(raw)
        session = Session(str(data["key_id"]), str(data["key_hash"]), str(data["csrf"]))
        if not self.auth_enabled:
            return session
        stored = await self._client.hget(KEYS_HASH, session.key_hash)
        if stored is None or not KeyRecord.from_json(session.key_hash, stored).allows("admin"):
            await self._client.delete(name)  # the key was revoked or lost its admin scope
            return None
        return session

    async def end(self, sid: str | None) -> None:
        """Forget a session (logout): its cookie is worthless from now on."""
        if sid and len(sid) <= MAX_COOKIE:
            await self._client.delete(session_key(sid))
