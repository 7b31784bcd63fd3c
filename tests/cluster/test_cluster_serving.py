"""The picks service on a real Redis Cluster: same answers as on one server, live ops, outages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from recsys.ab import Experiment
from recsys.cache.connect import connect
from recsys.cache.keys import CacheKeys, bucket_of
from recsys.cache.server import free_port, start_redis_cluster
from recsys.cache.snapshot import suspend_sku
from serving.auth import add_key
from tests.cluster.world import N_BUCKETS, publish_world
from tests.serving.conftest import make_settings, serve, sku_ids, wait_for
from tests.serving.world import AGENTS, CUSTOMERS, SKUS, RotatingRecommender, dataset, served
from training.publish import PublishError, rollback

pytestmark = pytest.mark.cluster
EXPERIMENT = {
    "salt": "ranker-2026-11",
    "variants": [
        {"name": "control", "weight": 1, "channel": "current"},
        {"name": "treatment", "weight": 1, "channel": "challenger"},
    ],
}
# Requests whose answers are compared between one server and the cluster.
QUERIES: list[dict[str, Any]] = [
    {"k": 5},
    {"k": 12},
    {"k": 4, "region": "north"},
    {"k": 4, "region": "south", "tier": "3"},
    {"k": 3, "category": "beauty"},
    {"k": 3, "exclude": "s01,s02,s03"},
]


@contextmanager
def service(url: str, client: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    """A test client on an app serving from `url`, with platform and admin keys made in it."""
    keys = {
        "platform": add_key(client, ["platform"], name="platform")[0],
        "admin": add_key(client, ["admin"], name="ops")[0],
    }
    with serve(make_settings(url)) as c:
        c.headers["X-API-Key"] = keys["platform"]
        yield c, keys


def _answers(c: Any) -> list[Any]:
    """Every agent's and customer's answer to every query, and similar SKUs, without ids."""
    out = []
    for path, users in (("agents", [*AGENTS, "newbie"]), ("customers", [*CUSTOMERS, "c99"])):
        for user in users:
            for query in QUERIES:
                body = c.get(f"/v1/{path}/{user}/picks", params=query).json()
                out.append({k: v for k, v in body.items() if k not in ("request_id", "snapshot")})
    for sku in SKUS[::4]:
        body = c.get(f"/v1/skus/{sku}/similar", params={"k": 4}).json()
        out.append({k: v for k, v in body.items() if k not in ("request_id", "snapshot")})
    return out


def test_cluster_serves_the_same_answers_as_one_redis(
    cluster_client: Any, cluster_url: str, redis_client: Any, redis_url: str
) -> None:
    for client in (cluster_client, redis_client):
        publish_world(client, "agent", shift=0)
        publish_world(client, "customer", shift=2)
    with service(cluster_url, cluster_client) as (on_cluster, _):
        wait_for(lambda: on_cluster.get("/readyz").status_code == 200)
        from_cluster = _answers(on_cluster)
    with service(redis_url, redis_client) as (on_one, _):
        wait_for(lambda: on_one.get("/readyz").status_code == 200)
        from_one = _answers(on_one)
    assert from_cluster == from_one
    assert len(from_cluster) == (25 + 7) * len(QUERIES) + 8
    personal = [a for a in from_cluster if a.get("source") == "personal"]
    assert len(personal) >= 24 * 4  # the lists came from the cluster, not from fallbacks only
    first = from_cluster[0]
    assert [p["sku_id"] for p in first["picks"]] == served(AGENTS, "a00", 0, k=5)


def test_rollback_and_new_publishes_are_served_from_the_cluster(
    cluster_client: Any, cluster_url: str
) -> None:
    old = publish_world(cluster_client, shift=0).snapshot
    with service(cluster_url, cluster_client) as (c, _):
        wait_for(lambda: c.get("/v1/agents/a04/picks").json().get("snapshot") == old)
        new = publish_world(cluster_client, shift=5).snapshot
        body = wait_for(
            lambda: (b := c.get("/v1/agents/a04/picks").json())["snapshot"] == new and b
        )
        assert [p["sku_id"] for p in body["picks"]] == served(AGENTS, "a04", 5, k=20)
        rollback(cluster_client, "agent")
        body = wait_for(
            lambda: (b := c.get("/v1/agents/a04/picks").json())["snapshot"] == old and b
        )
        assert [p["sku_id"] for p in body["picks"]] == served(AGENTS, "a04", 0, k=20)


def test_a_failed_publish_changes_nothing_that_is_served(
    cluster_client: Any, cluster_url: str
) -> None:
    live = publish_world(cluster_client, shift=0).snapshot

    class Exploding(RotatingRecommender):
        def recommend(self, ids, k=20, exclude_seen=False):  # type: ignore[no-untyped-def]
            raise RuntimeError("model file truncated")

    with service(cluster_url, cluster_client) as (c, _):
        before = c.get("/v1/agents/a09/picks", params={"k": 6}).json()
        assert before["snapshot"] == live
        with pytest.raises(PublishError, match="model file truncated"):
            publish_world(cluster_client, model=Exploding(shift=9).fit(dataset("agent", AGENTS)))
        after = c.get("/v1/agents/a09/picks", params={"k": 6}).json()
        assert after["snapshot"] == live
        assert sku_ids(c.get("/v1/agents/a09/picks", params={"k": 6})) == served(
            AGENTS, "a09", 0, k=6
        )


def test_suspensions_reach_every_answer(cluster_client: Any, cluster_url: str) -> None:
    publish_world(cluster_client, shift=0)
    with service(cluster_url, cluster_client) as (c, keys):
        assert sku_ids(c.get("/v1/agents/a02/picks", params={"k": 3})) == ["s02", "s03", "s04"]
        put = c.put(
            "/v1/admin/skus/s03/suspension",
            json={"reason": "complaints"},
            headers={"X-API-Key": keys["admin"]},
        )
        assert put.status_code == 200
        assert sku_ids(c.get("/v1/agents/a02/picks", params={"k": 3})) == ["s02", "s04", "s05"]
        # One written by another tool straight into the cluster is picked up by the refresher.
        suspend_sku(cluster_client, "s04", {"reason": "returns wave", "by": "breaker"})
        wait_for(
            lambda: sku_ids(c.get("/v1/agents/a02/picks", params={"k": 3})) == ["s02", "s05", "s06"]
        )
        lift = c.delete("/v1/admin/skus/s03/suspension", headers={"X-API-Key": keys["admin"]})
        assert lift.json() == {"sku_id": "s03", "lifted": True}
        assert sku_ids(c.get("/v1/agents/a02/picks", params={"k": 3})) == ["s02", "s03", "s05"]


def test_experiment_variants_are_served_from_their_channels(
    cluster_client: Any, cluster_url: str
) -> None:
    main = publish_world(cluster_client, shift=5, version="2").snapshot
    challenger = publish_world(cluster_client, shift=0, version="1", channel="challenger").snapshot
    exp = Experiment(name="ranker", **EXPERIMENT)
    with service(cluster_url, cluster_client) as (c, keys):
        put = c.put(
            "/v1/admin/experiments/ranker", json=EXPERIMENT, headers={"X-API-Key": keys["admin"]}
        )
        assert put.status_code == 200 and put.json()["active"] is True
        variants = set()
        for agent in AGENTS:
            body = c.get(f"/v1/agents/{agent}/picks", params={"k": 3}).json()
            want = exp.assign(agent).name
            snapshot, shift = (main, 5) if want == "control" else (challenger, 0)
            assert (body["variant"], body["snapshot"]) == (want, snapshot)
            assert [p["sku_id"] for p in body["picks"]] == served(AGENTS, agent, shift, k=3)
            variants.add(want)
        assert variants == {"control", "treatment"}


def test_served_feeds_are_written_to_the_exposure_stream(
    cluster_client: Any, cluster_url: str
) -> None:
    publish_world(cluster_client, shift=0)
    with service(cluster_url, cluster_client) as (c, _):
        ids = [c.get(f"/v1/agents/{a}/picks", params={"k": 2}).json()["request_id"] for a in AGENTS]
        stream = make_settings(cluster_url).exposure_stream
        entries = wait_for(lambda: len(e := cluster_client.xrange(stream)) == len(AGENTS) and e)
    records = {f[b"request_id"].decode(): f for _, f in entries}
    assert sorted(records) == sorted(ids)
    first = records[ids[0]]
    assert orjson.loads(first[b"sku_ids"]) == ["s00", "s01"]
    assert (first[b"agent_id"], first[b"source"]) == (b"a00", b"personal")


def test_a_node_outage_answers_from_memory_and_never_fails(tmp_path: Path) -> None:
    cluster = start_redis_cluster(3, workdir=tmp_path)
    try:
        client = connect(cluster.url)
        snapshot = publish_world(client, shift=0).snapshot
        keys = CacheKeys("agent")
        node_of = {n.port: i for i, n in enumerate(cluster.nodes)}
        bucket_node = {
            b: client.get_node_from_key(keys.picks(snapshot, b)).port for b in range(N_BUCKETS)
        }
        with service(cluster.url, client) as (c, _):
            ready = wait_for(lambda: (r := c.get("/readyz")).status_code == 200 and r.json())
            assert ready["redis"] is True and ready["redis_nodes_down"] == []
            warm = c.get("/v1/agents/a00/picks", params={"k": 3}).json()
            assert warm["source"] == "personal"
            lost = bucket_node[bucket_of("a01", N_BUCKETS)]
            cluster.nodes[node_of[lost]].stop()
            # Every master is pinged, not only the client's default node: the lost one is named.
            not_ready = c.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["redis"] is False
            assert not_ready.json()["redis_nodes_down"] == [f"127.0.0.1:{lost}"]
            answers = {a: c.get(f"/v1/agents/{a}/picks", params={"k": 3}) for a in AGENTS}
            assert {r.status_code for r in answers.values()} == {200}
            sources = {a: r.json()["source"] for a, r in answers.items()}
            assert set(sources.values()) <= {"personal", "fallback:degraded"}
            assert sources["a00"] == "personal"  # cached in-process: no Redis needed
            assert sources["a01"] == "fallback:degraded"
            degraded = answers["a01"].json()
            assert [p["sku_id"] for p in degraded["picks"]] == ["s15", "s16", "s17"]
            metrics = c.get("/metrics").text
            # counted, not hidden (as hget, refresh or xadd: whichever met the dead master first)
            counted = r'recsys_redis_errors_total\{op="(hget|refresh|xadd|auth)"\} [1-9]'
            assert re.search(counted, metrics), metrics
        client.close()
    finally:
        cluster.stop()


def test_settings_refuse_an_unknown_redis_url_at_start() -> None:
    with pytest.raises(ValueError, match=r"unknown Redis URL 'http://h:1'"):
        make_settings("http://h:1")
    assert make_settings("redis+cluster://h:1,h:2").redis_url == "redis+cluster://h:1,h:2"


def test_the_service_starts_without_a_reachable_cluster_and_says_so() -> None:
    settings = make_settings(f"redis+cluster://127.0.0.1:{free_port()}", auth_enabled=False)
    with serve(settings) as c:
        picks = c.get("/v1/agents/a00/picks")
        assert picks.status_code == 503 and picks.headers["Retry-After"] == "1"
        assert "no agent snapshot is live yet" in picks.text
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["redis"] is False
        assert ready.json()["redis_nodes_down"] == [settings.redis_url.split("//")[1]]
