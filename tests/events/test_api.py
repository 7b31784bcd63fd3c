"""POST /v1/events against the real Redis: per-index rejections, auth, limits, idempotency."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from serving.settings import Settings
from tests.events.conftest import click, purchase, ret, share
from tests.serving.conftest import make_settings, serve, wait_for

PATH = "/v1/events"


def _entries(redis_client: Any, stream: str) -> list[dict[str, Any]]:
    return [
        {"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}}
        for i, f in redis_client.xrange(stream)
    ]


def test_good_events_are_stored_in_batch_order_and_bad_ones_listed_by_index(
    settings: Settings, keys: dict[str, str], redis_client: Any
) -> None:
    items = [share(0), purchase(0, qty=0), purchase(1), {"kind": "view"}, ret(1), click(2)]
    with serve(settings) as client:
        answer = client.post(PATH, json={"events": items}, headers={"X-API-Key": keys["events"]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 4 and body["duplicates"] == 0
    assert body["rejected"] == [
        {"index": 1, "event_id": "pu-0", "reason": "qty must be >= 1, got 0"},
        {
            "index": 3,
            "event_id": None,
            "reason": "kind must be one of 'share', 'purchase', 'return', 'click', got 'view'",
        },
    ]
    entries = _entries(redis_client, settings.event_stream)
    assert [(e["kind"], e["event_id"]) for e in entries] == [
        ("share", "sh-0"),
        ("purchase", "pu-1"),
        ("return", "re-1"),
        ("click", "cl-2"),
    ]
    stored = orjson.loads(entries[1]["data"])
    assert stored == {k: v for k, v in purchase(1).items() if k != "kind"}


def test_a_resent_batch_is_stored_once_even_with_changed_content(
    settings: Settings, keys: dict[str, str], redis_client: Any
) -> None:
    items = [purchase(i) for i in range(5)]
    headers = {"X-API-Key": keys["events"]}
    with serve(settings) as client:
        first = client.post(PATH, json={"events": items}, headers=headers).json()
        again = client.post(
            PATH, json={"events": [purchase(2, qty=3), purchase(7)]}, headers=headers
        ).json()
    assert (first["accepted"], first["duplicates"]) == (5, 0)
    assert (again["accepted"], again["duplicates"]) == (2, 1)
    ids = [e["event_id"] for e in _entries(redis_client, settings.event_stream)]
    assert ids == ["pu-0", "pu-1", "pu-2", "pu-3", "pu-4", "pu-7"]
    # the marker that makes a re-send a duplicate expires with event_dedupe_ttl_s
    ttl = redis_client.ttl(f"{{{settings.event_stream}}}:seen:pu-2")
    assert 0 < ttl <= settings.event_dedupe_ttl_s


def test_a_refused_event_can_be_corrected_and_sent_again_under_its_id(
    settings: Settings, keys: dict[str, str], redis_client: Any
) -> None:
    headers = {"X-API-Key": keys["events"]}
    with serve(settings) as client:
        bad = client.post(PATH, json={"events": [purchase(0, qty=0)]}, headers=headers).json()
        good = client.post(PATH, json={"events": [purchase(0)]}, headers=headers).json()
    assert (bad["accepted"], len(bad["rejected"])) == (0, 1)
    assert (good["accepted"], good["duplicates"], good["rejected"]) == (1, 0, [])
    assert redis_client.xlen(settings.event_stream) == 1


@pytest.mark.parametrize(
    ("scope", "status"),
    [(None, 401), ("bad", 401), ("platform", 403), ("events", 200), ("admin", 200)],
)
def test_only_events_and_admin_keys_may_post(
    settings: Settings, keys: dict[str, str], scope: str | None, status: int
) -> None:
    headers = {} if scope is None else {"X-API-Key": keys.get(scope, "rk_unknown")}
    with serve(settings) as client:
        answer = client.post(PATH, json={"events": [click(1)]}, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert "may not write events" in answer.json()["message"]


def test_the_key_is_checked_before_the_batch(settings: Settings) -> None:
    with serve(settings) as client:
        answer = client.post(PATH, json={"events": [click(i) for i in range(1001)]})
    assert answer.status_code == 401


def test_limits_answer_4xx_with_a_clear_message_never_a_trace(
    settings: Settings, keys: dict[str, str], redis_client: Any
) -> None:
    headers = {"X-API-Key": keys["events"]}
    with serve(settings) as client:
        too_many = client.post(
            PATH, json={"events": [click(i) for i in range(1001)]}, headers=headers
        )
        at_limit = client.post(
            PATH, json={"events": [click(i) for i in range(1000)]}, headers=headers
        )
        not_json = client.post(
            PATH, content=b'{"events": [', headers={**headers, "Content-Type": "application/json"}
        )
        not_a_batch = client.post(PATH, json=[click(1)], headers=headers)
        huge = client.post(
            PATH,
            json={"events": [click(1, channel="x" * 3_000_000)]},
            headers=headers,
        )
    assert too_many.status_code == 422
    assert too_many.json()["message"] == (
        "events: a batch holds at most 1000 events, got 1001: split it into several calls"
    )
    assert at_limit.status_code == 200 and at_limit.json()["accepted"] == 1000
    assert (not_json.status_code, not_json.json()["message"]) == (
        422,
        "body: request body is not valid JSON",
    )
    assert not_a_batch.status_code == 422 and not_a_batch.json()["field"] == "body"
    assert huge.status_code == 413
    assert huge.json()["message"] == "body: request body is larger than 2097152 bytes"
    for answer in (too_many, not_json, not_a_batch, huge):
        assert "Traceback" not in answer.text
    assert redis_client.xlen(settings.event_stream) == 1000


def test_the_events_body_cap_leaves_other_routes_at_theirs(
    settings: Settings, keys: dict[str, str]
) -> None:
    body = {"reason": "x" * 100_000}  # above max_body_bytes (64 KiB), below the events cap
    with serve(settings) as client:
        admin = client.put(
            "/v1/admin/skus/s01/suspension", json=body, headers={"X-API-Key": keys["admin"]}
        )
        events = client.post(
            PATH,
            json={"events": [click(i, note="y" * 1000) for i in range(100)]},
            headers={"X-API-Key": keys["events"]},
        )
    assert admin.status_code == 413
    assert events.status_code == 200 and events.json()["accepted"] == 100


def test_redis_down_answers_503_and_stores_nothing() -> None:
    settings = make_settings("redis://127.0.0.1:1/0", auth_enabled=False)
    with serve(settings) as client:
        answer = client.post(PATH, json={"events": [click(1)]})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert "re-send it" in answer.json()["message"]


def test_metrics_count_events_and_show_the_sink_lag(
    settings: Settings, keys: dict[str, str], redis_client: Any
) -> None:
    headers = {"X-API-Key": keys["events"]}
    with serve(settings) as client:
        client.post(PATH, json={"events": [click(i) for i in range(3)]}, headers=headers)
        client.post(PATH, json={"events": [click(0), click(5, ts="bad")]}, headers=headers)

        def lag_line() -> str | None:
            text = client.get("/metrics").text
            found = [
                line
                for line in text.splitlines()
                if line.startswith(f'recsys_sink_lag_seconds{{stream="{settings.event_stream}"}}')
            ]
            return found[0] if found else None

        assert wait_for(lag_line)
        text = client.get("/metrics").text
    assert 'recsys_events_total{result="stored"} 3.0' in text
    assert 'recsys_events_total{result="duplicate"} 1.0' in text
    assert 'recsys_events_total{result="rejected"} 1.0' in text
    # no sink has read the stream yet: all 3 entries wait
    assert f'recsys_sink_lag{{stream="{settings.event_stream}"}} 3.0' in text
