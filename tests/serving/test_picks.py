"""Publish → serve round trip, every serve-time filter with refill, fallbacks, other routes."""

from __future__ import annotations

from typing import Any

import orjson

from serving.schemas import AgentPicksOut, CustomerPicksOut, SimilarOut
from tests.serving.conftest import serve, sku_ids, wait_for
from tests.serving.world import AGENTS, CUSTOMERS, FALLBACKS, expected, publish


def test_agent_picks_round_trip_matches_the_published_list(client: Any, published: str) -> None:
    response = client.get("/v1/agents/a03/picks", params={"k": 5})
    assert response.status_code == 200
    body = AgentPicksOut.model_validate_json(response.content).model_dump()
    assert [p["sku_id"] for p in body["picks"]] == expected(AGENTS, "a03", k=5)
    assert [p["rank"] for p in body["picks"]] == [1, 2, 3, 4, 5]
    scores = [p["score"] for p in body["picks"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    assert body["agent_id"] == "a03" and body["source"] == "personal"
    assert body["snapshot"] == published and body["model_version"] == "1"
    assert body["variant"] is None
    assert body["request_id"] == response.headers["x-request-id"]


def test_agent_picks_carry_rendered_reasons(client: Any) -> None:
    picks = client.get("/v1/agents/a00/picks", params={"k": 2}).json()["picks"]
    assert picks[0]["reasons"] == [
        {"code": "picked_for_you", "text": "Picked for you", "params": {}}
    ]
    # The publisher was told 3 of a00's customers bought s01 before.
    assert picks[1]["sku_id"] == "s01"
    assert picks[1]["reasons"] == [
        {
            "code": "customers_rebuy",
            "text": "3 of your customers bought this before",
            "params": {"n": 3},
        }
    ]


def test_default_k_is_twenty_capped_by_list_and_refilled(client: Any) -> None:
    # a00's published list is s00..s09 (10 picks); k=20 refills from the global fallback
    # (s15..s24), skipping nothing since none of them is in the list.
    got = sku_ids(client.get("/v1/agents/a00/picks"))
    assert got == expected(AGENTS, "a00") + FALLBACKS["global"]


def test_region_filter_drops_skus_not_sold_there_and_refills(client: Any) -> None:
    # s01 and s06 are sold only in the north.
    south = sku_ids(client.get("/v1/agents/a00/picks", params={"k": 5, "region": "south"}))
    assert south == ["s00", "s02", "s03", "s04", "s05"]
    north = sku_ids(client.get("/v1/agents/a00/picks", params={"k": 5, "region": "north"}))
    assert north == ["s00", "s01", "s02", "s03", "s04"]


def test_region_filter_refills_from_the_region_list_first(client: Any) -> None:
    # a00 in the south keeps 8 of her 10 picks; the south list (s12, s13, s14) refills first.
    got = sku_ids(client.get("/v1/agents/a00/picks", params={"k": 11, "region": "south"}))
    assert got == ["s00", "s02", "s03", "s04", "s05", "s07", "s08", "s09", "s12", "s13", "s14"]


def test_category_filter_refills_from_the_fallback_in_category(client: Any) -> None:
    # Snacks are i % 3 == 0: s00, s03, s06, s09 in a00's list, then s15 from the global list.
    response = client.get("/v1/agents/a00/picks", params={"k": 5, "category": "snacks"})
    assert sku_ids(response) == ["s00", "s03", "s06", "s09", "s15"]
    assert [p["rank"] for p in response.json()["picks"]] == [1, 2, 3, 4, 5]
    assert response.json()["picks"][4]["reasons"][0]["code"] == "popular_overall"


def test_unknown_category_answers_empty_not_an_error(client: Any) -> None:
    response = client.get("/v1/agents/a00/picks", params={"category": "garden"})
    assert response.status_code == 200 and response.json()["picks"] == []


def test_exclude_filter_refills_from_deeper_in_the_list(client: Any) -> None:
    got = sku_ids(client.get("/v1/agents/a00/picks", params={"k": 5, "exclude": "s00,s02,zz"}))
    assert got == ["s01", "s03", "s04", "s05", "s06"]


def test_source_names_the_list_the_first_pick_comes_from(client: Any) -> None:
    everything = ",".join(expected(AGENTS, "a00"))
    response = client.get("/v1/agents/a00/picks", params={"k": 2, "exclude": everything})
    assert response.json()["source"] == "fallback:global"
    assert sku_ids(response) == ["s15", "s16"]


def test_suspensions_written_by_other_tools_are_listed(
    client: Any, redis_client: Any, keys: dict[str, str]
) -> None:
    from recsys.cache.snapshot import suspend_sku

    suspend_sku(redis_client, "s03", {"reason": "complaints", "by": "ops", "at": "2026-11-28"})
    listed = client.get("/v1/admin/suspensions", headers={"X-API-Key": keys["admin"]}).json()
    assert listed["suspensions"] == [
        {
            "sku_id": "s03",
            "reason": "complaints",
            "numbers": {},
            "suspended_at": "2026-11-28",
            "by": "ops",
        }
    ]
    wait_for(lambda: "s03" not in sku_ids(client.get("/v1/agents/a00/picks", params={"k": 5})))


def test_discontinued_and_catalogue_suspended_skus_are_never_served(client: Any) -> None:
    # a20's list is s20..s29; s28 is discontinued and s29 suspended in the SKU table, so the
    # last two places are refilled from the global list, skipping s20..s24 already taken.
    got = sku_ids(client.get("/v1/agents/a20/picks", params={"k": 10}))
    assert got == ["s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s15", "s16"]


def test_suspension_via_admin_disappears_within_a_second_on_every_worker(
    client: Any, settings: Any, keys: dict[str, str], redis_client: Any
) -> None:
    from recsys.quality.store import read_lifts

    admin = {"X-API-Key": keys["admin"]}
    with serve(settings) as other_worker:
        other_worker.headers["X-API-Key"] = keys["platform"]
        assert "s01" in sku_ids(other_worker.get("/v1/agents/a00/picks", params={"k": 5}))
        response = client.put(
            "/v1/admin/skus/s01/suspension",
            json={"reason": "wave of complaints", "numbers": {"complaints": 14}},
            headers=admin,
        )
        assert response.status_code == 200
        assert response.json()["numbers"] == {"complaints": 14.0}
        # This worker applies it at once; the other within its refresh interval.
        assert sku_ids(client.get("/v1/agents/a00/picks", params={"k": 5}))[:2] == ["s00", "s02"]
        wait_for(
            lambda: "s01" not in sku_ids(other_worker.get("/v1/agents/a00/picks", params={"k": 5})),
            timeout_s=1.0,
        )
        listed = client.get("/v1/admin/suspensions", headers=admin).json()["suspensions"]
        assert [(s["sku_id"], s["reason"]) for s in listed] == [("s01", "wave of complaints")]
        lifted = client.delete("/v1/admin/skus/s01/suspension", headers=admin).json()
        assert lifted == {"sku_id": "s01", "lifted": True}
        # remembered, so the next quality check does not suspend it again on old evidence
        assert "s01" in read_lifts(redis_client)
        again = client.delete("/v1/admin/skus/s01/suspension", headers=admin).json()
        assert again == {"sku_id": "s01", "lifted": False}
        wait_for(
            lambda: "s01" in sku_ids(other_worker.get("/v1/agents/a00/picks", params={"k": 5})),
            timeout_s=1.0,
        )


def test_unknown_agent_gets_her_region_fallback_never_a_404(client: Any) -> None:
    response = client.get("/v1/agents/new-agent/picks", params={"k": 3, "region": "north"})
    assert response.status_code == 200
    assert sku_ids(response) == ["s21", "s26", "s11"]
    assert response.json()["source"] == "fallback:region"
    assert response.json()["picks"][0]["reasons"][0]["params"] == {"n": 4}


def test_unknown_agent_falls_back_to_tier_then_global(client: Any) -> None:
    tier = client.get("/v1/agents/new-agent/picks", params={"k": 4, "tier": 3})
    assert tier.json()["source"] == "fallback:tier"
    assert sku_ids(tier) == ["s03", "s04", "s15", "s16"]
    plain = client.get("/v1/agents/new-agent/picks", params={"k": 3})
    assert plain.json()["source"] == "fallback:global"
    assert sku_ids(plain) == ["s15", "s16", "s17"]
    # A region no SKU lists keeps only SKUs sold everywhere: s16 (north only) is skipped.
    far = client.get("/v1/agents/new-agent/picks", params={"k": 3, "region": "east"})
    assert sku_ids(far) == ["s15", "s17", "s18"]


def test_customer_picks_read_the_customer_snapshot(
    client: Any, redis_client: Any, keys: dict[str, str]
) -> None:
    missing = client.get("/v1/customers/c01/picks")
    assert missing.status_code == 503  # nothing published for customers yet
    assert missing.json()["error"] == "unavailable"
    snapshot = publish(redis_client, "customer", shift=2).snapshot
    response = wait_for(
        lambda: (
            (r := client.get("/v1/customers/c01/picks", params={"k": 3})).status_code == 200 and r
        )
    )
    body = CustomerPicksOut.model_validate_json(response.content)
    assert body.customer_id == "c01" and body.snapshot == snapshot
    assert [p.sku_id for p in body.picks] == expected(CUSTOMERS, "c01", shift=2, k=3)
    assert (
        client.get("/v1/customers/c01/picks", headers={"X-API-Key": keys["a00"]}).status_code == 403
    )


def test_similar_skus_come_from_the_snapshot_then_the_category(client: Any) -> None:
    response = client.get("/v1/skus/s05/similar", params={"k": 4})
    body = SimilarOut.model_validate_json(response.content)
    assert body.source == "similar"
    got = [p.sku_id for p in body.similar]
    # Neighbours on the circle: s04/s06 (equal similarity) then s03/s07.
    assert set(got[:2]) == {"s04", "s06"} and set(got[2:]) == {"s03", "s07"}
    unknown = client.get("/v1/skus/zz/similar", params={"k": 2}).json()
    assert unknown["source"] == "fallback:global"
    assert [p["sku_id"] for p in unknown["similar"]] == ["s15", "s16"]


def metric(client: Any, line_start: str) -> float:
    """The value of the first /metrics sample line starting with `line_start` (0 if absent)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_picks_are_read_from_redis_once_then_served_from_memory(client: Any) -> None:
    picks_miss = 'recsys_picks_cache_total{level="picks",result="miss"}'
    picks_hit = 'recsys_picks_cache_total{level="picks",result="hit"}'
    answer_hit = 'recsys_picks_cache_total{level="answer",result="hit"}'
    first = client.get("/v1/agents/a07/picks", params={"k": 3}).json()
    assert metric(client, picks_miss) == 1 and metric(client, answer_hit) == 0
    again = client.get("/v1/agents/a07/picks", params={"k": 3}).json()
    assert again["picks"] == first["picks"] and metric(client, answer_hit) == 1
    # A filtered request cannot reuse a finished answer, but reuses the decoded list.
    client.get("/v1/agents/a07/picks", params={"k": 3, "exclude": "s07"})
    assert metric(client, picks_hit) == 1 and metric(client, picks_miss) == 1


def test_ops_routes_report_health_readiness_and_metrics(
    settings: Any, redis_client: Any, keys: dict[str, str]
) -> None:
    with serve(settings) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        not_ready = c.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["redis"] is True
        snapshot = publish(redis_client).snapshot
        ready = wait_for(lambda: (r := c.get("/readyz")).status_code == 200 and r)
        assert ready.json()["snapshots"] == {"agent:current": snapshot}
        c.get("/v1/agents/nobody/picks", headers={"X-API-Key": keys["platform"]})
        text = c.get("/metrics").text
        assert 'recsys_fallbacks_total{kind="global"} 1.0' in text
        assert 'route="/v1/agents/{agent_id}/picks"' in text
        assert 'recsys_snapshot_age_seconds{channel="current",target="agent"}' in text


def test_answers_are_bytes_equal_to_their_schema(client: Any) -> None:
    raw = client.get("/v1/agents/a05/picks", params={"k": 4, "region": "north"}).content
    parsed = AgentPicksOut.model_validate_json(raw)
    assert orjson.loads(raw) == parsed.model_dump()


def test_access_log_writes_one_json_line_per_request(
    redis_url: str, published: str, keys: dict[str, str], capsys: Any
) -> None:
    from tests.serving.conftest import make_settings

    with serve(make_settings(redis_url, access_log=True)) as c:
        c.get("/v1/agents/a01/picks", headers={"X-API-Key": keys["a00"], "X-Request-ID": "req-9"})
    lines = [orjson.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    (line,) = [x for x in lines if x["request_id"] == "req-9"]
    assert (line["route"], line["status"], line["method"]) == (
        "/v1/agents/{agent_id}/picks",
        403,
        "GET",
    )
    assert line["path"] == "/v1/agents/a01/picks" and line["ms"] > 0
