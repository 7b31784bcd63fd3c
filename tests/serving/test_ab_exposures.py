"""A/B: deterministic assignment, each variant served from its channel; exposure records."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml

from recsys.ab import Experiment, Variant, assign_many
from recsys.cache.keys import CacheKeys
from tests.serving.conftest import make_settings, serve, sku_ids, wait_for
from tests.serving.world import AGENTS, publish, served

EXPERIMENT = {
    "salt": "ranker-2026-11",
    "variants": [
        {"name": "control", "weight": 1, "channel": "current"},
        {"name": "treatment", "weight": 1, "channel": "challenger"},
    ],
}


def test_assignment_matches_the_configured_weights_over_100k_ids() -> None:
    exp = Experiment(
        name="w", salt="s", variants=[Variant(name="a", weight=7), Variant(name="b", weight=3)]
    )
    names = assign_many(exp, [f"agent-{i}" for i in range(100_000)])
    share = names.count("a") / len(names)
    assert share == pytest.approx(0.7, abs=0.005)  # 5 standard deviations at n = 100k
    assert [exp.assign(f"agent-{i}").name for i in range(200)] == names[:200]


def test_each_variant_is_served_from_its_channel_snapshot(
    redis_client: Any, settings: Any, keys: dict[str, str]
) -> None:
    old = publish(redis_client, shift=0, version="1").snapshot
    new = publish(redis_client, shift=5, version="2").snapshot  # now current; old is previous
    redis_client.set(CacheKeys("agent").pointer("challenger"), old)
    exp = Experiment(name="ranker", **EXPERIMENT)
    with serve(settings) as c:
        c.headers["X-API-Key"] = keys["platform"]
        put = c.put(
            "/v1/admin/experiments/ranker", json=EXPERIMENT, headers={"X-API-Key": keys["admin"]}
        )
        assert put.status_code == 200 and put.json()["active"] is True
        variants = set()
        for agent in AGENTS:
            body = c.get(f"/v1/agents/{agent}/picks", params={"k": 3}).json()
            want = exp.assign(agent).name
            snapshot, shift, version = (new, 5, "2") if want == "control" else (old, 0, "1")
            assert (body["variant"], body["snapshot"], body["model_version"]) == (
                want,
                snapshot,
                version,
            )
            assert [p["sku_id"] for p in body["picks"]] == served(AGENTS, agent, shift, k=3)
            variants.add(want)
        assert variants == {"control", "treatment"}
        again = [c.get(f"/v1/agents/{a}/picks").json()["variant"] for a in AGENTS[:5]]
        assert again == [exp.assign(a).name for a in AGENTS[:5]]


def test_every_served_feed_writes_an_exposure_with_positions(
    client: Any, redis_client: Any, settings: Any
) -> None:
    personal = client.get("/v1/agents/a02/picks", params={"k": 3}).json()
    fallback = client.get("/v1/agents/newbie/picks", params={"k": 2, "region": "south"}).json()
    entries = wait_for(lambda: len(e := redis_client.xrange(settings.exposure_stream)) == 2 and e)
    records = {
        f[b"request_id"].decode(): {k.decode(): v.decode() for k, v in f.items()}
        for _, f in entries
    }
    first = records[personal["request_id"]]
    assert orjson.loads(first["sku_ids"]) == ["s02", "s03", "s04"]
    assert orjson.loads(first["positions"]) == [1, 2, 3]
    assert {k: first[k] for k in ("target", "agent_id", "snapshot", "model_version", "source")} == {
        "target": "agent",
        "agent_id": "a02",
        "snapshot": personal["snapshot"],
        "model_version": "1",
        "source": "personal",
    }
    assert first["variant"] == "" and first["experiment"] == ""
    assert abs(int(first["ts"]) / 1000 - float(entries[0][0].split(b"-")[0]) / 1000) < 5
    second = records[fallback["request_id"]]
    assert orjson.loads(second["sku_ids"]) == ["s12", "s13"]
    assert second["source"] == "fallback:region" and second["agent_id"] == "newbie"


def test_exposures_carry_the_variant_and_experiment(
    redis_client: Any, settings: Any, keys: dict[str, str]
) -> None:
    snap = publish(redis_client).snapshot
    redis_client.set(CacheKeys("agent").pointer("challenger"), snap)
    with serve(settings) as c:
        c.put("/v1/admin/experiments/ranker", json=EXPERIMENT, headers={"X-API-Key": keys["admin"]})
        body = c.get("/v1/agents/a01/picks", headers={"X-API-Key": keys["platform"]}).json()
    # The shutdown flushes what is still buffered.
    ((_, fields),) = redis_client.xrange(settings.exposure_stream)
    assert fields[b"request_id"].decode() == body["request_id"]
    assert fields[b"variant"].decode() == body["variant"] != ""
    assert fields[b"experiment"] == b"ranker"


def test_experiments_from_a_file_can_be_overridden_and_restored(
    tmp_path: Any, redis_url: str, published: str, keys: dict[str, str]
) -> None:
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump({"experiments": [{"name": "from-file", **EXPERIMENT}]}))
    admin = {"X-API-Key": keys["admin"]}
    with serve(make_settings(redis_url, experiments_file=path)) as c:
        listed = c.get("/v1/admin/experiments", headers=admin).json()["experiments"]
        assert [(e["name"], e["source"], e["active"]) for e in listed] == [
            ("from-file", "file", True)
        ]
        body = c.get("/v1/agents/a03/picks", headers={"X-API-Key": keys["platform"]}).json()
        assert body["variant"] == Experiment(name="from-file", **EXPERIMENT).assign("a03").name
        # A second enabled experiment on the same target is refused.
        clash = c.put("/v1/admin/experiments/other", json=EXPERIMENT, headers=admin)
        assert clash.status_code == 409 and "'from-file' already runs" in clash.json()["message"]
        # Switching the file experiment off in Redis takes effect without a redeploy.
        off = c.put(
            "/v1/admin/experiments/from-file", json=EXPERIMENT | {"enabled": False}, headers=admin
        )
        assert off.json()["source"] == "redis" and off.json()["active"] is False
        body = c.get("/v1/agents/a03/picks", headers={"X-API-Key": keys["platform"]}).json()
        assert body["variant"] is None
        assert c.delete("/v1/admin/experiments/from-file", headers=admin).status_code == 200
        restored = c.get("/v1/admin/experiments/from-file", headers=admin).json()
        assert restored["source"] == "file" and restored["active"] is True
        gone = c.delete("/v1/admin/experiments/from-file", headers=admin)
        assert gone.status_code == 404 and "experiments file" in gone.json()["message"]


def test_experiment_bodies_are_validated(client: Any, keys: dict[str, str]) -> None:
    admin = {"X-API-Key": keys["admin"]}
    dup = EXPERIMENT | {"variants": [EXPERIMENT["variants"][0]] * 2}
    response = client.put("/v1/admin/experiments/x", json=dup, headers=admin)
    assert response.status_code == 422 and "unique" in response.json()["message"]
    no_weight = EXPERIMENT | {"variants": [{"name": "a", "weight": 0}]}
    response = client.put("/v1/admin/experiments/x", json=no_weight, headers=admin)
    assert response.status_code == 422 and response.json()["field"] == "variants.0.weight"
    assert client.get("/v1/admin/experiments/x", headers=admin).status_code == 404
    assert sku_ids(client.get("/v1/agents/a00/picks", params={"k": 1})) == ["s00"]
