"""Keys, scopes and rate limits (401/403/429); bounded input (422/413); no 500 leaks a trace."""

from __future__ import annotations

from typing import Any

import pytest

from serving.auth import add_key, revoke_key
from tests.serving.conftest import make_settings, serve


def test_missing_and_invalid_keys_are_401_naming_the_header(client: Any) -> None:
    missing = client.get("/v1/agents/a00/picks", headers={"X-API-Key": ""})
    assert missing.status_code == 401
    assert missing.json()["field"] == "X-API-Key"
    assert "X-API-Key header is required" in missing.json()["message"]
    invalid = client.get("/v1/agents/a00/picks", headers={"X-API-Key": "rk_not-a-key"})
    assert invalid.status_code == 401 and "not a valid key" in invalid.json()["message"]
    assert invalid.json()["request_id"] == invalid.headers["x-request-id"]


def test_agent_key_reads_only_her_own_picks(client: Any, keys: dict[str, str]) -> None:
    own = {"X-API-Key": keys["a00"]}
    assert client.get("/v1/agents/a00/picks", headers=own).status_code == 200
    other = client.get("/v1/agents/a01/picks", headers=own)
    assert other.status_code == 403
    assert "may not read agent a01's picks" in other.json()["message"]
    assert client.get("/v1/skus/s01/similar", headers=own).status_code == 200


def test_admin_routes_need_the_admin_scope(client: Any, keys: dict[str, str]) -> None:
    for role in ("platform", "a00", "events"):
        response = client.get("/v1/admin/suspensions", headers={"X-API-Key": keys[role]})
        assert response.status_code == 403, role
    events = client.get("/v1/agents/a00/picks", headers={"X-API-Key": keys["events"]})
    assert events.status_code == 403
    assert client.get("/v1/admin/suspensions", headers={"X-API-Key": keys["admin"]}).json() == {
        "suspensions": []
    }


def test_keys_made_or_revoked_while_running_take_effect(
    client: Any, redis_client: Any, settings: Any
) -> None:
    key, record = add_key(redis_client, ["platform"])
    assert client.get("/v1/agents/a00/picks", headers={"X-API-Key": key}).status_code == 200
    revoke_key(redis_client, key)
    with serve(settings) as fresh:
        assert fresh.get("/v1/agents/a00/picks", headers={"X-API-Key": key}).status_code == 401


def test_rate_limit_is_per_key_with_retry_after(
    redis_url: str, published: str, keys: dict[str, str]
) -> None:
    with serve(make_settings(redis_url, rate_limit_per_s=0.5, rate_limit_burst=2)) as c:
        platform = {"X-API-Key": keys["platform"]}
        codes = [c.get("/v1/agents/a00/picks", headers=platform).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = c.get("/v1/agents/a00/picks", headers=platform)
        assert limited.headers["Retry-After"] == "2"  # 1 token at 0.5/s
        assert limited.json()["error"] == "rate_limited"
        assert c.get("/v1/agents/a00/picks", headers={"X-API-Key": keys["a00"]}).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "field", "words"),
    [
        ("/v1/agents/a00/picks", {"k": 0}, "k", "greater than or equal to 1"),
        ("/v1/agents/a00/picks", {"k": 101}, "k", "less than or equal to 100"),
        ("/v1/agents/a00/picks", {"k": "ten"}, "k", "valid integer"),
        ("/v1/agents/a%20b/picks", {}, "agent_id", "pattern"),
        ("/v1/agents/" + "a" * 65 + "/picks", {}, "agent_id", "at most 64"),
        (
            "/v1/agents/a00/picks",
            {"exclude": ",".join(f"s{i}" for i in range(201))},
            "exclude",
            "at most 200 ids, got 201",
        ),
        ("/v1/agents/a00/picks", {"exclude": "s01,<script>"}, "exclude", "not a valid SKU id"),
        ("/v1/agents/a00/picks", {"region": "x" * 65}, "region", "at most 64"),
        ("/v1/agents/a00/picks", {"tier": -1}, "tier", "greater than or equal to 0"),
        ("/v1/skus/s01/similar", {"k": 500}, "k", "less than or equal to 100"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: Any, path: str, params: dict[str, Any], field: str, words: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == field
    assert body["message"].startswith(f"{field}: ") and words in body["message"]


def test_admin_bodies_are_validated_and_capped(
    client: Any, keys: dict[str, str], redis_url: str, published: str
) -> None:
    admin = {"X-API-Key": keys["admin"]}
    url = "/v1/admin/skus/s01/suspension"
    no_reason = client.put(url, json={"numbers": {}}, headers=admin)
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    bad_number = client.put(url, json={"reason": "x", "numbers": {"n": "many"}}, headers=admin)
    assert bad_number.status_code == 422 and bad_number.json()["field"] == "numbers.n"
    not_json = client.put(
        url, content=b"{nope", headers=admin | {"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["field"] == "body"
    big = client.put(url, json={"reason": "x" * 70_000}, headers=admin)
    assert big.status_code == 413 and big.json()["field"] == "body"
    assert "larger than 65536 bytes" in big.json()["message"]

    def chunks() -> Any:  # no Content-Length: the cap is enforced while reading
        for _ in range(20):
            yield b"x" * 4096

    streamed = client.put(url, content=chunks(), headers=admin)
    assert streamed.status_code == 413


def test_unexpected_errors_are_json_500_with_request_id_and_no_trace(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(client.app.state.services.repo, "picks", explode)
    response = client.get("/v1/agents/a00/picks", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "internal error; quote request id req-123",
        "field": None,
        "request_id": "req-123",
    }
    assert "secret" not in response.text and "Traceback" not in response.text
