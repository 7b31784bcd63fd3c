"""Publishing into a real 3-master Redis Cluster: layout over nodes, flip, rollback, failures."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import ClusterPipeline
from redis.crc import key_slot
from typer.testing import CliRunner

from recsys.cache.connect import connect
from recsys.cache.keys import CacheKeys, bucket_of
from recsys.cache.server import free_port, redis_server_binary, start_redis_cluster
from recsys.cache.snapshot import load_snapshot, read_current, read_picks, read_previous
from recsys.cli import app
from tests.cluster.conftest import keys_by_node
from tests.cluster.world import N_BUCKETS, publish_world
from tests.serving.conftest import wait_for
from tests.serving.world import AGENTS, RotatingRecommender, dataset, expected
from training.publish import PublishError, rollback

pytestmark = pytest.mark.cluster
KEYS = CacheKeys("agent")
runner = CliRunner()


def _snapshot_keys(client: Any, snapshot: str) -> dict[int, set[str]]:
    """Keys of one snapshot, by node port (nodes without any are left out)."""
    found = {p: {k for k in ks if snapshot in k} for p, ks in keys_by_node(client).items()}
    return {p: ks for p, ks in found.items() if ks}


def _published_list(client: Any, user: str) -> list[str]:
    """The user's picks as SKU ids, read straight from the cluster."""
    snap = load_snapshot(client, "agent")
    picks = read_picks(client, snap, user)
    assert picks is not None, f"no picks for {user} in {snap.snapshot_id}"
    return [str(s) for s in snap.skus.sku_ids[picks.sku_index]]


def test_snapshot_spreads_over_the_nodes_while_control_keys_share_one_slot(
    cluster_client: Any,
) -> None:
    report = publish_world(cluster_client)
    by_node = _snapshot_keys(cluster_client, report.snapshot)
    names = set().union(*by_node.values())
    assert len(names) == N_BUCKETS + 4  # picks buckets, one similar bucket, skus, fallbacks, meta
    assert len(by_node) >= 2, f"one node holds the whole snapshot: {by_node}"
    assert len({p for p, ks in by_node.items() if any(":picks:" in k for k in ks)}) >= 2
    control = {k for ks in keys_by_node(cluster_client).values() for k in ks if "{agent}" in k}
    assert control == {KEYS.current, KEYS.snapshots}
    assert len({key_slot(k.encode()) for k in [*control, KEYS.previous, KEYS.lock]}) == 1
    holders = [p for p, ks in keys_by_node(cluster_client).items() if ks & control]
    assert len(holders) == 1


def test_published_picks_read_back_from_the_cluster(cluster_client: Any) -> None:
    report = publish_world(cluster_client)
    assert (report.n_users, report.n_buckets) == (len(AGENTS), N_BUCKETS)
    assert read_current(cluster_client, "agent") == report.snapshot
    for agent in AGENTS:
        assert _published_list(cluster_client, agent) == expected(AGENTS, agent)
    snap = load_snapshot(cluster_client, "agent")
    assert snap.meta["counts"]["users"] == 24 and snap.meta["n_buckets"] == N_BUCKETS
    key, field = snap.picks_location("a07")
    assert key == KEYS.picks(report.snapshot, bucket_of("a07", N_BUCKETS)) and field == "a07"


def test_flip_never_shows_a_reader_an_incomplete_snapshot(
    cluster_client: Any, cluster_url: str
) -> None:
    first = publish_world(cluster_client).snapshot
    reader = connect(cluster_url)
    seen: set[str] = set()
    problems: list[str] = []
    done = threading.Event()

    def read_loop() -> None:
        while not done.is_set():
            sid = read_current(reader, "agent")
            if sid is None:
                problems.append("no current pointer")
                continue
            seen.add(sid)
            pipe = reader.pipeline(transaction=False)
            pipe.get(KEYS.meta(sid))
            for b in range(N_BUCKETS):
                pipe.hlen(KEYS.picks(sid, b))
            meta, *lens = pipe.execute()
            if meta is None or sum(lens) != len(AGENTS):
                problems.append(f"{sid}: meta {meta is not None}, {sum(lens)} users")

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        wait_for(lambda: seen)  # the reader is running before the first flip
        published = [publish_world(cluster_client, shift=s).snapshot for s in (1, 2, 3)]
        wait_for(lambda: published[-1] in seen)
    finally:
        done.set()
        thread.join()
        reader.close()
    assert problems == []
    assert seen <= {first, *published} and {first, published[-1]} <= seen


def test_rollback_swaps_current_and_previous_in_the_cluster(cluster_client: Any) -> None:
    with pytest.raises(PublishError, match="no previous agent snapshot to roll back to"):
        rollback(cluster_client, "agent")
    first = publish_world(cluster_client, shift=0).snapshot
    second = publish_world(cluster_client, shift=5).snapshot
    result = rollback(cluster_client, "agent")
    assert (result.current, result.replaced) == (first, second)
    assert (read_current(cluster_client, "agent"), read_previous(cluster_client, "agent")) == (
        first,
        second,
    )
    assert _published_list(cluster_client, "a03") == expected(AGENTS, "a03", shift=0)
    assert rollback(cluster_client, "agent").current == second
    assert _published_list(cluster_client, "a03") == expected(AGENTS, "a03", shift=5)


def test_older_snapshots_expire_on_every_node_and_live_ones_never(cluster_client: Any) -> None:
    a, b, c = (publish_world(cluster_client, shift=s).snapshot for s in (0, 1, 2))
    ttls = {
        snap: {
            k: cluster_client.ttl(k)
            for ks in _snapshot_keys(cluster_client, snap).values()
            for k in ks
        }
        for snap in (a, b, c)
    }
    assert len(ttls[a]) == N_BUCKETS + 4
    assert all(0 < t <= 7 * 86_400 for t in ttls[a].values()), ttls[a]
    assert set(ttls[b].values()) == {-1} and set(ttls[c].values()) == {-1}
    # A TTL already set (by an earlier publish, or by hand) is never extended.
    short = KEYS.picks(a, 3)
    cluster_client.expire(short, 50)
    publish_world(cluster_client, shift=3)
    assert 0 < cluster_client.ttl(short) <= 50
    assert all(0 < cluster_client.ttl(k) for k in ttls[b])  # b is now older than previous


def test_failed_publish_leaves_the_live_snapshot_and_no_keys(cluster_client: Any) -> None:
    live = publish_world(cluster_client).snapshot

    class Exploding(RotatingRecommender):
        calls = 0

        def recommend(self, ids, k=20, exclude_seen=False):  # type: ignore[no-untyped-def]
            type(self).calls += 1
            if type(self).calls == 2:
                raise RuntimeError("scoring exploded")
            return super().recommend(ids, k, exclude_seen)

    model = Exploding(shift=4).fit(dataset("agent", AGENTS))
    with pytest.raises(PublishError, match=r"while scoring batch 2/3.*scoring exploded") as err:
        publish_world(cluster_client, model=model)
    assert f"The live snapshot ({live}) is unchanged" in str(err.value)
    assert read_current(cluster_client, "agent") == live
    assert _snapshot_keys(cluster_client, err.value.snapshot or "") == {}
    assert cluster_client.zcard(KEYS.pending) == 0 and not cluster_client.exists(KEYS.lock)
    assert _published_list(cluster_client, "a01") == expected(AGENTS, "a01")


def test_a_node_error_mid_write_is_cleaned_up(
    cluster_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = publish_world(cluster_client).snapshot
    real_execute = ClusterPipeline.execute
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:  # after the id check, the static keys and one batch
            raise redis.ConnectionError("node reset the connection")
        return real_execute(self, *args, **kwargs)

    monkeypatch.setattr(ClusterPipeline, "execute", flaky)
    with pytest.raises(PublishError, match=r"writing batch 2/3.*node reset") as err:
        publish_world(cluster_client, shift=7)
    monkeypatch.undo()
    assert read_current(cluster_client, "agent") == live
    assert _snapshot_keys(cluster_client, err.value.snapshot or "") == {}


def test_a_channel_publish_flips_only_its_pointer(cluster_client: Any) -> None:
    main = publish_world(cluster_client, shift=0).snapshot
    challenger = publish_world(cluster_client, shift=5, channel="challenger").snapshot
    assert read_current(cluster_client, "agent") == main
    assert cluster_client.get(KEYS.pointer("challenger")) == challenger.encode()
    assert cluster_client.smembers(KEYS.channels) == {b"challenger"}
    publish_world(cluster_client, shift=1)
    publish_world(cluster_client, shift=2)
    # Live on a channel: never expired, however many main publishes follow.
    names = _snapshot_keys(cluster_client, challenger)
    assert {cluster_client.ttl(k) for ks in names.values() for k in ks} == {-1}


def _text(result: Any) -> str:
    """Everything a CLI command printed, with rich's line wrapping undone."""
    return re.sub(r"\s+", " ", result.output + (result.stderr or ""))


def test_publish_and_rollback_commands_take_a_cluster_url(
    cluster_client: Any, cluster_url: str, tmp_path: Path
) -> None:
    from recsys.contract.io import write_table
    from tests.publish.helpers import FixedRecommender, tiny_dataset, tiny_tables

    tables = tiny_tables()
    for name, frame in tables.items():
        write_table(frame, tmp_path / "data" / f"{name}.parquet", name)
    model = FixedRecommender(shift=0).fit(tiny_dataset(tables)).save(tmp_path / "model")
    args = ["publish", "--redis-url", cluster_url, "--model", str(model)]
    args += ["--data", str(tmp_path / "data"), "--top-n", "5", "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, _text(first)
    assert "24 users (0 without picks), 120 picks" in _text(first)
    snapshot = read_current(cluster_client, "agent")
    assert snapshot is not None and snapshot in _text(first)
    second = runner.invoke(app, args)
    assert second.exit_code == 0, _text(second)
    back = runner.invoke(app, ["rollback"], env={"REDIS_URL": cluster_url})
    assert back.exit_code == 0, _text(back)
    assert f"live snapshot is now {snapshot}" in _text(back)
    assert read_current(cluster_client, "agent") == snapshot


def test_publish_command_names_an_unreachable_cluster() -> None:
    url = f"redis+cluster://ops:secret@127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["publish", "--redis-url", url])
    assert result.exit_code == 1
    text = _text(result)
    assert "cannot reach Redis at redis+cluster://ops:***@127.0.0.1" in text
    assert "secret" not in text and "Traceback" not in text


def _redis_versions() -> dict[str, str]:
    """Every distinct redis-server version on this machine: version → binary."""
    candidates = [redis_server_binary(), shutil.which("redis-server"), "/usr/bin/redis-server"]
    found: dict[str, str] = {}
    for binary in filter(None, candidates):
        if Path(binary).exists():
            out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
            found.setdefault(re.search(r"v=(\S+)", out).group(1), binary)  # type: ignore[union-attr]
    return found


@pytest.mark.parametrize("version", sorted(_redis_versions()))
def test_publish_flip_and_rollback_on_each_redis_version(version: str, tmp_path: Path) -> None:
    cluster = start_redis_cluster(3, workdir=tmp_path, binary=_redis_versions()[version])
    try:
        client = connect(cluster.url)
        assert client.info("server", target_nodes=client.get_random_node())["redis_version"] == (
            version
        )
        first = publish_world(client, shift=0).snapshot
        publish_world(client, shift=1)
        third = publish_world(client, shift=2).snapshot
        assert all(0 < client.ttl(k) for k in _flatten(_snapshot_keys(client, first)))
        assert rollback(client, "agent").replaced == third
        assert _published_list(client, "a00") == expected(AGENTS, "a00", shift=1)
        assert len(_snapshot_keys(client, third)) >= 2
        client.close()
    finally:
        cluster.stop()


def _flatten(by_node: dict[int, set[str]]) -> set[str]:
    """All keys of a by-node listing."""
    return set().union(*by_node.values()) if by_node else set()
