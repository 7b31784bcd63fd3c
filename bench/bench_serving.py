"""Load-test the picks service with wrk (not a test; results go to docs/benchmarks-serving.md).

    python bench/bench_serving.py                 # 1 worker, then 2 workers
    python bench/bench_serving.py --workers 1 --duration 10

Publishes 100k agents × 100 picks (20k SKUs, reasons, region/tier fallbacks) with the real
publisher into a private Redis (or REDIS_URL), starts `uvicorn --factory serving.main:create_app`
on loopback with the benchmark's constant route enabled and sized like a k=20 picks answer,
then drives it with wrk: agent ids drawn Zipf-like from the 100k, the same ids against the
constant route, a uniform-random run (cache misses), and a fixed-rate run at half of the picks
saturation rate (wrk's `delay()` hook paces each connection; closed loop, so a stall sends fewer
requests rather than queuing them: a lower bound on the open-loop p99).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import redis

from recsys.cache.server import free_port, resolve_redis_url
from recsys.columns import Columns
from serving.auth import add_key
from training.publish import UserPicks, publish_snapshot

C = Columns
N_AGENTS, N_SKUS, TOP_N, K = 100_000, 20_000, 100, 20
REGIONS = [f"r{i}" for i in range(8)]
STEPS = np.array([s for s in range(1, 400, 2) if s % 5])  # coprime with 20000

LUA = r"""
local ids_n = tonumber(os.getenv("BENCH_N_AGENTS"))
local zipf_s = tonumber(os.getenv("BENCH_ZIPF_S"))
local mode = os.getenv("BENCH_MODE")            -- zipf | uniform
local prefix = os.getenv("BENCH_PREFIX")        -- /v1/agents/ | /v1/_bench/constant/
local suffix = os.getenv("BENCH_SUFFIX")        -- /picks?k=20 | ""
local key = os.getenv("BENCH_KEY")
local think_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local cdf = {}
local headers = {["X-API-Key"] = key}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  if mode == "zipf" then
    local total = 0
    for i = 1, ids_n do total = total + 1 / (i ^ zipf_s); cdf[i] = total end
    for i = 1, ids_n do cdf[i] = cdf[i] / total end
  end
end

local function pick()
  if mode == "uniform" then return math.random(ids_n) - 1 end
  local u, lo, hi = math.random(), 1, ids_n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end

function request()
  return wrk.format("GET", string.format("%sag%06d%s", prefix, pick(), suffix), headers)
end

if think_ms > 0 then
  function delay() return think_ms end
end

function done(summary, latency, requests)
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max)
  io.stderr:write("BENCH_RESULT " .. out .. "\n")
end
"""


class RandomPicks:
    """A picks source: 100 distinct SKUs per agent on a per-agent stride, scores descending."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def picks_for(self, users: np.ndarray, k: int) -> UserPicks:
        n = len(users)
        start = self.rng.integers(0, N_SKUS, n)
        step = self.rng.choice(STEPS, n)
        sku = (start[:, None] + step[:, None] * np.arange(k)[None, :]) % N_SKUS
        score = np.sort(self.rng.random((n, k)), axis=1)[:, ::-1] * 5
        return UserPicks(
            offsets=np.arange(0, n * k + 1, k, dtype=np.int64),
            sku_index=sku.ravel().astype(np.int64),
            score=score.ravel(),
        )


def publish_world(client: redis.Redis) -> Any:
    """Publish the benchmark's 100k agents with the real publisher."""
    rng = np.random.default_rng(1)
    sku_ids = np.array([f"sku{i:05d}" for i in range(N_SKUS)], dtype=object)
    regions = [
        [] if rng.random() < 0.7 else list(rng.choice(REGIONS, rng.integers(1, 4), replace=False))
        for _ in range(N_SKUS)
    ]
    status = rng.choice(["active", "discontinued", "suspended"], N_SKUS, p=[0.985, 0.01, 0.005])
    skus = pd.DataFrame(
        {
            C.SKU_ID: sku_ids,
            C.TITLE: [f"product {i}" for i in range(N_SKUS)],
            C.CATEGORY: [f"cat{i % 20}" for i in range(N_SKUS)],
            C.SERIES: None,
            C.BRAND: "brand",
            C.PRICE: rng.uniform(1, 300, N_SKUS).round(2),
            C.STATUS: status,
            C.REGIONS: regions,
        }
    )

    def top(n: int) -> pd.DataFrame:
        chosen = rng.choice(N_SKUS, n, replace=False)
        buyers = np.sort(rng.integers(1, 5000, n))[::-1]
        return pd.DataFrame(
            {C.SKU_ID: sku_ids[chosen], C.SCORE: buyers.astype(float), "n_buyers": buyers}
        )

    fallbacks = {"global": top(100)}
    fallbacks.update({f"region:{r}": top(100) for r in REGIONS})
    fallbacks.update({f"tier:{t}": top(100) for t in range(1, 6)})
    agents = np.array([f"ag{i:06d}" for i in range(N_AGENTS)], dtype=object)
    user_regions = pd.Series(rng.choice(REGIONS, N_AGENTS), index=agents)
    return publish_snapshot(
        client,
        "agent",
        RandomPicks(),
        agents,
        sku_table=skus,
        fallbacks=fallbacks,
        meta={"model_name": "bench", "model_version": "1"},
        top_n=TOP_N,
        regions=user_regions,
        similar_k=0,
        progress=False,
    )


class Server:
    """uvicorn serving the app in a child process on a loopback port."""

    def __init__(self, redis_url: str, workers: int, body_bytes: int, access_log: bool) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            RECSYS_REDIS_URL=redis_url,
            RECSYS_BENCH_ENDPOINTS="true",
            RECSYS_BENCH_BODY_BYTES=str(body_bytes),
            RECSYS_RATE_LIMIT_PER_S="1e9",
            RECSYS_RATE_LIMIT_BURST="1e9",
            RECSYS_ACCESS_LOG="true" if access_log else "false",
        )
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "serving.main:create_app",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not become ready")
            time.sleep(0.25)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wrk(
    url: str,
    script: Path,
    key: str,
    *,
    mode: str,
    constant: bool,
    duration: int,
    connections: int,
    delay_ms: float = 0.0,
) -> dict[str, float]:
    """One wrk run; requests/s and latency percentiles (ms)."""
    env = dict(os.environ)
    env.update(
        BENCH_N_AGENTS=str(N_AGENTS),
        BENCH_ZIPF_S="1.07",
        BENCH_MODE=mode,
        BENCH_PREFIX="/v1/_bench/constant/" if constant else "/v1/agents/",
        BENCH_SUFFIX="" if constant else f"/picks?k={K}",
        BENCH_KEY=key,
        BENCH_DELAY_MS=str(delay_ms),
    )
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "2s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next(x for x in out.stderr.splitlines() if x.startswith("BENCH_RESULT "))
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": raw["errors"],
        "non2xx": raw["non2xx"],
    }


def cache_counts(metrics: str) -> dict[str, float]:
    """Picks-cache counters of one worker from its /metrics text."""
    out = {}
    for line in metrics.splitlines():
        if line.startswith("recsys_picks_cache_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels[len("recsys_picks_cache_total") :]] = float(value)
    return out


def answer_size(url: str, key: str) -> int:
    """Mean body size of k=20 picks answers over a sample of agents."""
    sizes = [
        len(httpx.get(f"{url}/v1/agents/ag{i:06d}/picks?k={K}", headers={"X-API-Key": key}).content)
        for i in range(0, N_AGENTS, N_AGENTS // 50)
    ]
    return int(statistics.mean(sizes))


def run_config(
    redis_url: str, key: str, script: Path, workers: int, args: argparse.Namespace, size: int
) -> dict[str, Any]:
    """Saturation (picks and constant, interleaved rounds), half-rate p99, uniform misses."""
    server = Server(redis_url, workers, size, not args.no_access_log)
    res: dict[str, Any] = {"workers": workers, "body_bytes": size}
    try:
        common = {"duration": args.duration, "connections": args.connections}
        # Warm-up: a long-running worker has its hot agents in memory.
        wrk(
            server.url,
            script,
            key,
            mode="zipf",
            constant=False,
            duration=args.warmup,
            connections=8,
        )
        before = cache_counts(server.metrics()) if workers == 1 else {}
        picks, const = [], []
        for _ in range(args.rounds):
            const.append(wrk(server.url, script, key, mode="zipf", constant=True, **common))
            picks.append(wrk(server.url, script, key, mode="zipf", constant=False, **common))
        res["constant"], res["picks"] = const, picks
        if workers == 1:
            after = cache_counts(server.metrics())
            res["zipf_cache"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        sat = statistics.median(r["rps"] for r in picks)
        rate = sat / 2
        conns = args.paced_connections
        delay_ms = conns / rate * 1000
        res["half_rate_target"] = rate
        res["picks_half_rate"] = wrk(
            server.url, script, key, mode="zipf", constant=False, delay_ms=delay_ms,
            duration=args.duration, connections=conns,
        )  # fmt: skip
        res["constant_half_rate"] = wrk(
            server.url, script, key, mode="zipf", constant=True, delay_ms=delay_ms,
            duration=args.duration, connections=conns,
        )  # fmt: skip
        before = cache_counts(server.metrics()) if workers == 1 else {}
        res["uniform"] = wrk(server.url, script, key, mode="uniform", constant=False, **common)
        if workers == 1:
            after = cache_counts(server.metrics())
            res["uniform_cache"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    finally:
        server.stop()
    return res


def report(results: list[dict[str, Any]]) -> str:
    """A markdown table of the results."""
    lines = [
        "| workers | route | req/s | p50 ms | p99 ms | ratio to constant |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        const = statistics.median(r["rps"] for r in res["constant"])
        for name, runs in (("constant", res["constant"]), ("picks, Zipf", res["picks"])):
            rps = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["p50_ms"] for r in runs)
            p99 = statistics.median(r["p99_ms"] for r in runs)
            lines.append(
                f"| {res['workers']} | {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | "
                f"{rps / const:.2f} |"
            )
        u = res["uniform"]
        lines.append(
            f"| {res['workers']} | picks, uniform | {u['rps']:,.0f} | {u['p50_ms']:.2f} | "
            f"{u['p99_ms']:.2f} | {u['rps'] / const:.2f} |"
        )
        for label, key in (("picks", "picks_half_rate"), ("constant", "constant_half_rate")):
            h = res[key]
            lines.append(
                f"| {res['workers']} | {label} at {res['half_rate_target']:,.0f}/s target "
                f"(got {h['rps']:,.0f}) | | {h['p50_ms']:.2f} | {h['p99_ms']:.2f} | |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="constant/picks rounds")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of Zipf traffic first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--paced-connections", type=int, default=16)
    parser.add_argument("--no-access-log", action="store_true", help="switch the access log off")
    parser.add_argument("--out", type=Path, default=None, help="write raw results as JSON")
    args = parser.parse_args()

    redis_url, redis_server = resolve_redis_url()
    try:
        client = redis.Redis.from_url(redis_url)
        t0 = time.perf_counter()
        published = publish_world(client)
        print(
            f"published {published.n_users:,} agents in {time.perf_counter() - t0:.1f}s "
            f"({published.users_per_s:,.0f}/s), snapshot {published.snapshot}",
            flush=True,
        )
        key, _ = add_key(client, ["platform"], name="bench")
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "zipf.lua"
            script.write_text(LUA)
            probe = Server(redis_url, 1, 2_500, False)
            try:
                size = answer_size(probe.url, key)
            finally:
                probe.stop()
            print(f"a k={K} picks answer is {size} bytes; the constant route returns as many")
            results = []
            for workers in args.workers:
                res = run_config(redis_url, key, script, workers, args, size)
                results.append(res)
                print(json.dumps(res, indent=1), flush=True)
        print(report(results))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    finally:
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    main()
