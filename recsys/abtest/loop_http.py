"""The closed loop's HTTP client of the picks service: picks, events and the admin API.

Everything the simulated agents and their customers do reaches the service the way a storefront
would: `GET /v1/agents/{id}/picks` with a platform key, `POST /v1/events` in batches of up to
1,000 with an events key, `PUT /v1/admin/experiments/{name}` with an admin key. A rate-limited
call waits as `Retry-After` says; a batch whose answer was lost, or that met a 503, is sent
again (event ids make that safe); any other refusal stops the loop with the service's message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from recsys.ab import Experiment
from recsys.exceptions import RecsysError

MAX_BATCH = 1000
RETRY_FOR_S = 30.0


class ServiceError(RecsysError):
    """The service refused a call, or stayed unreachable (the message says which and why)."""


@dataclass(frozen=True)
class Served:
    """One picks answer: the SKUs in served order and what served them."""

    request_id: str
    sku_ids: list[str]
    variant: str | None
    snapshot: str
    model_version: str | None
    source: str


@dataclass
class Posted:
    """What became of posted events: accepted (new or duplicate) and refused, with reasons."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def add(self, answer: dict[str, Any]) -> None:
        """Count one batch's answer."""
        self.accepted += int(answer["accepted"])
        self.duplicates += int(answer["duplicates"])
        self.rejected += answer["rejected"]


def _message(response: httpx.Response) -> str:
    """The service's error message (its JSON error shape), else the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if key in body:
                return str(body[key])
    return str(body)[:200]


def batches(records: list[dict[str, Any]], size: int = MAX_BATCH) -> Iterator[list[dict[str, Any]]]:
    """`records` in consecutive batches of at most `size`."""
    for lo in range(0, len(records), size):
        yield records[lo : lo + size]


class ServiceClient:
    """Keys and a keep-alive connection to one service."""

    def __init__(
        self,
        url: str,
        *,
        platform_key: str,
        events_key: str,
        admin_key: str,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.keys = {"platform": platform_key, "events": events_key, "admin": admin_key}
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def close(self) -> None:
        """Close the connection."""
        self.http.close()

    def _call(self, method: str, path: str, key: str, **kwargs: Any) -> dict[str, Any]:
        """One call with retries on 429 (after Retry-After), 503 and lost answers.

        Raises
        ------
        ServiceError
            On any other non-2xx answer, or when retries run out.
        """
        headers = {"X-API-Key": self.keys[key], **kwargs.pop("headers", {})}
        deadline = time.monotonic() + RETRY_FOR_S
        last = ""
        while True:
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                response, last = None, f"{type(exc).__name__}: {exc}"
            if response is not None:
                if response.is_success:
                    return dict(response.json())
                last = f"{response.status_code} {_message(response)}"
                if response.status_code not in (429, 503):
                    raise ServiceError(f"{method} {self.url}{path} answered {last}")
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{method} {self.url}{path} failed for {RETRY_FOR_S:.0f} s; last: {last}"
                )
            wait = 0.2
            if response is not None and response.headers.get("Retry-After"):
                wait = float(response.headers["Retry-After"])
            time.sleep(min(wait, 2.0))

    def picks(self, agent_id: str, k: int) -> Served:
        """The agent's storefront feed as the service answers it."""
        body = self._call("GET", f"/v1/agents/{agent_id}/picks", "platform", params={"k": k})
        return Served(
            request_id=str(body["request_id"]),
            sku_ids=[p["sku_id"] for p in body["picks"]],
            variant=body.get("variant"),
            snapshot=str(body["snapshot"]),
            model_version=body.get("model_version"),
            source=str(body.get("source", "")),
        )

    def post_events(self, records: list[dict[str, Any]]) -> Posted:
        """Post `records` in batches of up to 1,000; the service keeps each good event and
        lists each refused one with its index and reason."""
        out = Posted()
        for batch in batches(records):
            payload = orjson.dumps({"events": batch}, option=orjson.OPT_SERIALIZE_NUMPY)
            answer = self._call(
                "POST",
                "/v1/events",
                "events",
                content=payload,
                headers={"Content-Type": "application/json"},
            )
            out.add(answer)
        return out

    def put_experiment(self, experiment: Experiment) -> dict[str, Any]:
        """Create or replace the experiment through the admin API; returns it as the service
        runs it."""
        body = experiment.model_dump(mode="json", exclude={"name"})
        return self._call("PUT", f"/v1/admin/experiments/{experiment.name}", "admin", json=body)

    def disable_experiment(self, experiment: Experiment) -> dict[str, Any]:
        """Switch the experiment off (kept in Redis, so its report can still read it)."""
        return self.put_experiment(experiment.model_copy(update={"enabled": False}))

    def wait_for_snapshots(self, expected: dict[str, str], timeout_s: float = 20.0) -> None:
        """Wait until `/readyz` shows each `target:channel` live with the snapshot named in
        `expected` (no picks are requested: a request would log an exposure).

        Raises
        ------
        ServiceError
            If the service still shows other snapshots after `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        live: dict[str, str] = {}
        while True:
            try:
                response = self.http.get("/readyz")
                live = dict(response.json().get("snapshots", {}))
            except (httpx.TransportError, ValueError):
                live = {}
            if all(live.get(name) == snapshot for name, snapshot in expected.items()):
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.url}/readyz shows snapshots {live or 'none'} after {timeout_s:.0f} s, "
                    f"expected {expected}: is the experiment running, and each arm's channel "
                    "published into the service's Redis?"
                )
            time.sleep(0.1)
