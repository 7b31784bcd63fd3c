"""Killing the sink (SIGKILL, at random points) and the service mid-stream loses nothing and
writes nothing twice: real processes, real Redis, events posted over HTTP the whole time."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsys.contract.loader import load_tables
from recsys.events.lag import measure_lag
from serving.auth import add_key
from tests.events.conftest import DAY, click, purchase, ret, share
from tests.serving.conftest import wait_for

EVENTS = "events:v1:events"
EXPOSURES = "events:v1:exposures"
SINK_KILLS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _events(first: int, n: int, rng: random.Random) -> list[dict[str, Any]]:
    """`n` valid events numbered from `first`: shares, purchases (some returned), clicks."""
    out: list[dict[str, Any]] = []
    for i in range(first, first + n):
        # within 20 days of DAY whatever i: never in the future
        ts = (DAY + pd.Timedelta(minutes=i % 28_000)).isoformat()
        kind = rng.choice("spc")
        if kind == "s":
            out.append(share(i, ts=ts))
        elif kind == "c":
            out.append(click(i, ts=ts))
        else:
            out.append(purchase(i, share_id=None, ts=ts))
            if rng.random() < 0.3:
                later = pd.Timestamp(ts) + pd.Timedelta(hours=1)
                out.append(ret(i, ts=later.isoformat()))
    return out


class Poster(threading.Thread):
    """Posts batches until stopped, re-sending a batch until it is answered 200 (as a client
    that lost the answer must), and re-sending every 5th batch once more on purpose."""

    def __init__(self, url: str, key: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.rng = url, key, random.Random(seed)
        self.stop = threading.Event()
        self.sent: set[str] = set()
        self.retries = 0
        self.error: BaseException | None = None

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        while True:
            try:
                answer = client.post("/v1/events", json={"events": batch})
                if answer.status_code == 200:
                    assert answer.json()["rejected"] == []
                    return
            except httpx.TransportError:
                pass
            self.retries += 1
            time.sleep(0.05)

    def run(self) -> None:
        try:
            with httpx.Client(
                base_url=self.url, headers={"X-API-Key": self.key}, timeout=5.0
            ) as client:
                n = 0
                while not self.stop.is_set():
                    batch = _events(n, self.rng.randint(1, 40), self.rng)
                    n += 100
                    self._send(client, batch)
                    self.sent.update(e["event_id"] for e in batch)
                    if n % 500 == 0:
                        self._send(client, batch)
                    time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def _exposures(redis_url: str, stop: threading.Event, ids: list[str]) -> None:
    """Write exposure entries the way the service does, until stopped."""
    import redis

    client = redis.Redis.from_url(redis_url)
    n = 0
    while not stop.is_set():
        n += 1
        fields = {
            "request_id": f"req-{n}",
            "ts": str(1790000000000 + n * 1000),
            "target": "agent",
            "agent_id": "A1",
            "variant": "",
            "experiment": "",
            "snapshot": "snap-1",
            "model_version": "1",
            "sku_ids": '["S1","S2"]',
            "positions": "[1,2]",
            "source": "personal",
        }
        ids.append(client.xadd(EXPOSURES, fields).decode())
        time.sleep(0.01)
    client.close()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _event_ids(data: Path, table: str) -> list[str]:
    parts = sorted((data / table).glob("date=*/*.parquet"))
    return [
        i for p in parts for i in pq.read_table(p, columns=["event_id"])["event_id"].to_pylist()
    ]


def test_killing_the_sink_and_the_service_mid_stream_loses_and_duplicates_nothing(
    redis_url: str, redis_client: Any, catalogue_dir: Path, tmp_path: Path
) -> None:
    rng = random.Random(6)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RECSYS_REDIS_URL": redis_url,
        "RECSYS_ACCESS_LOG": "false",
        "RECSYS_RATE_LIMIT_PER_S": "100000",
        "RECSYS_RATE_LIMIT_BURST": "100000",
        "RECSYS_REDIS_TIMEOUT_S": "1",
        "RECSYS_REDIS_CONNECT_TIMEOUT_S": "1",
    }
    port, metrics_port = _free_port(), _free_port()
    service_args = [sys.executable, "-m", "uvicorn", "--factory", "serving.main:create_app"]
    service_args += ["--port", str(port), "--log-level", "warning"]
    sink_args = [sys.executable, "-m", "recsys", "sink", "--data", str(catalogue_dir)]
    sink_args += ["--batch", "25", "--block-ms", "100", "--consumer", "sink-1"]
    logs = tmp_path / "logs"
    logs.mkdir()
    sink_log = logs / "sink.log"
    url = f"http://127.0.0.1:{port}"

    def service_up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    def n_parts() -> int:
        return sum(1 for _ in catalogue_dir.glob("*/date=*/*.parquet"))

    service = _spawn(service_args, env, logs / "service.log")
    sink = _spawn(sink_args, env, sink_log)
    poster = Poster(url, add_key(redis_client, ["events"])[0], seed=7)
    stop_exposures = threading.Event()
    exposure_ids: list[str] = []
    writer = threading.Thread(
        target=_exposures, args=(redis_url, stop_exposures, exposure_ids), daemon=True
    )
    try:
        wait_for(service_up, timeout_s=60)
        poster.start()
        writer.start()
        for kill in range(SINK_KILLS):
            before = n_parts()
            wait_for(lambda b=before: n_parts() > b, timeout_s=60)  # the sink is at work
            time.sleep(rng.uniform(0.0, 0.4))
            sink.send_signal(signal.SIGKILL)
            sink.wait()
            # the last one drains the backlog: larger batches, and serves its metrics
            last = ["--batch", "500", "--metrics-port", str(metrics_port), "--lag-every-s", "1"]
            sink = _spawn(sink_args + (last if kill == SINK_KILLS - 1 else []), env, sink_log)
            if kill == 1:  # the service too, while the poster keeps posting
                service.send_signal(signal.SIGKILL)
                service.wait()
                service = _spawn(service_args, env, logs / "service.log")
                wait_for(service_up, timeout_s=60)
        wait_for(lambda: n_parts() > 0 and len(poster.sent) > 400, timeout_s=60)
        poster.stop.set()
        stop_exposures.set()
        poster.join(timeout=30)
        writer.join(timeout=30)
        assert poster.error is None, poster.error

        def drained() -> bool:
            return all(
                measure_lag(redis_client, s, "parquet-sink").entries == 0
                for s in (EVENTS, EXPOSURES)
            )

        wait_for(drained, timeout_s=60, every_s=0.2)
        lag_line = f'recsys_sink_lag{{stream="{EVENTS}"}} 0.0'
        metrics = wait_for(
            lambda: (
                lag_line in (t := httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text) and t
            )
        )
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=30) == 0, sink_log.read_text()
    finally:
        for process in (sink, service):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert f'recsys_sink_lag{{stream="{EXPOSURES}"}} 0.0' in metrics
    assert poster.retries > 0  # the service kill was felt
    written = Counter(
        i
        for table in ("shares", "purchases", "returns", "clicks")
        for i in _event_ids(catalogue_dir, table)
    )
    assert sorted(written) == sorted(poster.sent)
    assert max(written.values()) == 1
    exposures = Counter(_event_ids(catalogue_dir, "exposures"))
    assert sorted(exposures) == sorted(exposure_ids) and max(exposures.values()) == 1
    tables = load_tables(catalogue_dir, on_quarantine="raise")
    loaded = sum(len(tables[t]) for t in ("shares", "purchases", "returns"))
    assert loaded == sum(1 for i in poster.sent if not i.startswith("cl-"))


def test_a_running_sink_outlives_a_redis_restart(tmp_path: Path) -> None:
    import redis

    from recsys.cache.server import start_redis_server

    server = start_redis_server(workdir=tmp_path / "redis")
    data, log = tmp_path / "data", tmp_path / "sink.log"
    env = {**os.environ, "REDIS_URL": server.url}
    args = [sys.executable, "-m", "recsys", "sink", "--data", str(data), "--block-ms", "100"]
    sink = _spawn(args, env, log)
    try:
        client = redis.Redis.from_url(server.url)
        for i in range(3):
            client.xadd(EVENTS, {"event_id": f"cl-{i}", "kind": "click", "data": _click(i)})
        wait_for(lambda: len(_event_ids(data, "clicks")) == 3, timeout_s=60)
        server.stop()  # no persistence: the stream and the group are gone too
        time.sleep(0.5)
        server = start_redis_server(port=server.port, workdir=tmp_path / "redis")
        client = redis.Redis.from_url(server.url)
        client.xadd(EVENTS, {"event_id": "cl-3", "kind": "click", "data": _click(3)})
        wait_for(lambda: len(_event_ids(data, "clicks")) == 4, timeout_s=60)
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=30) == 0, log.read_text()
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
        server.stop()
    assert sorted(_event_ids(data, "clicks")) == ["cl-0", "cl-1", "cl-2", "cl-3"]
    assert "Redis unreachable" in log.read_text()


@pytest.mark.cluster
def test_a_running_sink_outlives_a_cluster_master_restart(tmp_path: Path) -> None:
    from recsys.cache.connect import connect
    from recsys.cache.server import start_redis_cluster

    cluster = start_redis_cluster(3, workdir=tmp_path / "cluster")
    data, log = tmp_path / "data", tmp_path / "sink.log"
    env = {**os.environ, "REDIS_URL": cluster.url}
    args = [sys.executable, "-m", "recsys", "sink", "--data", str(data), "--block-ms", "100"]
    sink = _spawn(args, env, log)
    try:
        client = connect(cluster.url)
        for i in range(3):
            client.xadd(EVENTS, {"event_id": f"cl-{i}", "kind": "click", "data": _click(i)})
        wait_for(lambda: len(_event_ids(data, "clicks")) == 3, timeout_s=60)
        # The master of the events stream restarts (well within cluster-node-timeout), empty.
        port = client.get_node_from_key(EVENTS).port
        (node,) = [n for n in cluster.nodes if n.port == port]
        node.stop()
        time.sleep(0.5)
        node.start()
        wait_for(lambda: _xadd_click(client, 3), timeout_s=30)
        wait_for(lambda: len(_event_ids(data, "clicks")) == 4, timeout_s=60)
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=30) == 0, log.read_text()
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
        cluster.stop()
    assert sorted(_event_ids(data, "clicks")) == ["cl-0", "cl-1", "cl-2", "cl-3"]
    assert "Redis unreachable" in log.read_text()


def _xadd_click(client: Any, i: int) -> bool:
    """Append click `i` to the events stream; False while the cluster refuses it."""
    from recsys.cache.connect import redis_failures

    try:
        client.xadd(EVENTS, {"event_id": f"cl-{i}", "kind": "click", "data": _click(i)})
    except redis_failures():
        return False
    return True


def _click(i: int) -> bytes:
    """The stream `data` of a checked click event."""
    import orjson

    from recsys.events.check import check_events, to_records

    (record,) = to_records(check_events([click(i)]).typed["click"])
    return orjson.dumps(record)
