"""Concurrent readers during publishes never see a mix of two snapshots through the API."""

from __future__ import annotations

import random
import threading
from typing import Any

from tests.serving.conftest import serve, wait_for
from tests.serving.world import AGENTS, publish, served


def test_readers_during_publishes_see_one_whole_snapshot_per_answer(
    redis_client: Any, settings: Any, keys: dict[str, str]
) -> None:
    versions = {publish(redis_client, shift=0, version="0").snapshot: 0}
    answers: list[tuple[str, int, int, dict[str, Any]]] = []
    stop = threading.Event()
    with serve(settings) as c:
        c.headers["X-API-Key"] = keys["platform"]

        def reader(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                agent, k = rng.choice(AGENTS), rng.choice([3, 10, 14])
                r = c.get(f"/v1/agents/{agent}/picks", params={"k": k})
                answers.append((agent, k, r.status_code, r.json()))

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        try:
            for shift in (7, 13):
                report = publish(redis_client, shift=shift, version=str(shift))
                versions[report.snapshot] = shift
                wait_for(
                    lambda s=report.snapshot: any(a[3].get("snapshot") == s for a in answers[-30:])
                )
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert {a[3]["snapshot"] for a in answers} == set(versions)  # every snapshot was served
    for agent, k, status, body in answers:
        assert status == 200, body
        shift = versions[body["snapshot"]]
        assert body["model_version"] == str(shift)
        assert [p["sku_id"] for p in body["picks"]] == served(AGENTS, agent, shift, k), body


def test_a_rollback_is_followed_within_a_refresh(
    redis_client: Any, settings: Any, keys: dict[str, str]
) -> None:
    from training.publish import rollback

    first = publish(redis_client, shift=0, version="1").snapshot
    with serve(settings) as c:
        c.headers["X-API-Key"] = keys["platform"]
        second = publish(redis_client, shift=3, version="2").snapshot
        wait_for(lambda: c.get("/v1/agents/a00/picks").json()["snapshot"] == second)
        assert rollback(redis_client, "agent").current == first
        body = wait_for(
            lambda: (
                (b := c.get("/v1/agents/a00/picks", params={"k": 3}).json())["snapshot"] == first
                and b
            ),
            timeout_s=1.0,
        )
        assert [p["sku_id"] for p in body["picks"]] == served(AGENTS, "a00", 0, 3)
