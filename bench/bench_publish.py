"""Time the publish write path: N users × 100 picks into a Redis started here (not a test).

    python bench/bench_publish.py --users 1000000

Model scoring is bypassed: picks come from precomputed arrays (a pool of batches reused with new
user ids), so what is timed is reasons + encoding + pipelined writes + count check + flip. In the
same run, against the same server, two references write the same picks:

(a) baseline: a bare pipelined loop, one `SET user-key packed-bytes` per user (7 B per pick:
    u32 SKU index, f16 score, u8 reason), packed with numpy per batch;
(b) msgpack: one `SET user-key msgpack([[sku, score, reason], ...])` per user.

Memory per user is Redis's own count: `MEMORY USAGE` of sample keys (per field for the bucket
hashes) and the growth of `used_memory` divided by the users written.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgpack
import numpy as np
import pandas as pd
import redis
import scipy.sparse as sp

from recsys.cache.keys import CacheKeys
from recsys.cache.server import start_redis_server
from recsys.columns import Columns
from training.publish import UserPicks, publish_snapshot
from training.publish_inputs import N_BUYERS, History

C = Columns
POOL_BATCHES = 8
N_REGIONS = 20
HOT = 1000  # SKUs the regional bestseller lists are drawn from


@dataclass
class Pool:
    """Precomputed picks of POOL_BATCHES batches (SKU rows, scores, offsets)."""

    sku: list[np.ndarray]
    score: list[np.ndarray]
    offsets: np.ndarray


def make_pool(batch: int, top_n: int, n_skus: int, seed: int) -> Pool:
    """Distinct top-n SKUs per user with falling scores, for a few batches.

    A fifth of each list comes from a "hot" set of HOT SKUs (where the regional bestsellers
    are too), the rest from the long tail, as in a real catalogue.
    """
    rng = np.random.default_rng(seed)
    n_hot = top_n // 5
    skus, scores = [], []
    for _ in range(POOL_BATCHES):
        # distinct SKUs per user: a random start and a small stride (no wrap-around repeats)
        j_hot, j_tail = np.arange(n_hot)[None, :], np.arange(top_n - n_hot)[None, :]
        hot = (rng.integers(0, HOT, (batch, 1)) + rng.integers(1, 40, (batch, 1)) * j_hot) % HOT
        tail = rng.integers(0, n_skus - HOT, (batch, 1)) + rng.integers(1, 97, (batch, 1)) * j_tail
        rows = np.hstack([hot, HOT + tail % (n_skus - HOT)])
        skus.append(rows.ravel().astype(np.int64))
        falling = np.sort(rng.random((batch, top_n)).astype(np.float32), axis=1)[:, ::-1]
        scores.append(falling.ravel().astype(np.float64))
    return Pool(skus, scores, np.arange(batch + 1, dtype=np.int64) * top_n)


class PoolSource:
    """A picks source that hands out the pool's batches in turn (no scoring cost)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.calls = 0

    def picks_for(self, users: np.ndarray, k: int) -> UserPicks:
        """The next pooled batch, cut to len(users)."""
        i = self.calls % POOL_BATCHES
        self.calls += 1
        n = len(users)
        end = int(self.pool.offsets[n])
        return UserPicks(
            self.pool.offsets[: n + 1], self.pool.sku[i][:end], self.pool.score[i][:end]
        )


def reason_inputs(
    users: np.ndarray, pool: Pool, batch: int, n_skus: int, seed: int
) -> tuple[History, pd.Series, dict[str, pd.DataFrame]]:
    """History (about 1 in 5 picks a rebuy), regions and region fallback lists."""
    rng = np.random.default_rng(seed + 1)
    rows, cols = [], []
    for b in range(0, len(users), batch):
        i = (b // batch) % POOL_BATCHES
        n = min(batch, len(users) - b)
        picks = pool.sku[i][: int(pool.offsets[n])]
        hit = rng.random(len(picks)) < 0.2
        rows.append(b + np.repeat(np.arange(n), np.diff(pool.offsets[: n + 1]))[hit])
        cols.append(picks[hit])
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = sp.csr_matrix(
        (rng.integers(1, 6, len(r)).astype(np.float32), (r, c)), shape=(len(users), n_skus)
    )
    history = History(pd.Index(users), counts)
    regions = pd.Series(rng.integers(0, N_REGIONS, len(users)).astype(str), index=users)
    fallbacks = {"global": _popular(rng, n_skus)}
    for region in range(N_REGIONS):
        fallbacks[f"region:{region}"] = _popular(rng, n_skus)
    return history, regions, fallbacks


def _popular(rng: np.random.Generator, n_skus: int, size: int = 200) -> pd.DataFrame:
    rows = rng.choice(min(HOT, n_skus), size, replace=False)
    buyers = np.sort(rng.integers(1, 5000, size))[::-1]
    return pd.DataFrame(
        {C.SKU_ID: [f"sku{r:07d}" for r in rows], C.SCORE: buyers.astype(float), N_BUYERS: buyers}
    )


def sku_table(n_skus: int) -> pd.DataFrame:
    """A synthetic catalogue: ids, 50 categories, 20 regions."""
    return pd.DataFrame(
        {
            C.SKU_ID: [f"sku{i:07d}" for i in range(n_skus)],
            C.TITLE: [f"product {i}" for i in range(n_skus)],
            C.CATEGORY: [f"cat{i % 50}" for i in range(n_skus)],
            C.SERIES: [None] * n_skus,
            C.BRAND: ["b"] * n_skus,
            C.PRICE: np.full(n_skus, 9.9),
            C.STATUS: ["active"] * n_skus,
            C.REGIONS: [[] if i % 3 else [str(i % N_REGIONS)] for i in range(n_skus)],
        }
    )


def bare_loop(
    client: redis.Redis, users: np.ndarray, pool: Pool, batch: int, pack: Callable[..., list]
) -> float:
    """Write every user with one SET per user, one pipeline per batch; return seconds."""
    start = time.perf_counter()
    for b in range(0, len(users), batch):
        i = (b // batch) % POOL_BATCHES
        chunk = users[b : b + batch]
        values = pack(pool, i, len(chunk))
        pipe = client.pipeline(transaction=False)
        for user, value in zip(chunk.tolist(), values, strict=True):
            pipe.set(f"bench:{user}", value)
        pipe.execute()
    return time.perf_counter() - start


def pack_numpy(pool: Pool, i: int, n: int) -> list[bytes]:
    """7 bytes per pick (u32 SKU, f16 score, u8 reason), one slice per user."""
    end = int(pool.offsets[n])
    rec = np.empty(end, dtype=[("sku", "<u4"), ("score", "<f2"), ("reason", "u1")])
    rec["sku"], rec["score"], rec["reason"] = pool.sku[i][:end], pool.score[i][:end], 1
    body, size = rec.tobytes(), rec.itemsize
    b = (pool.offsets[: n + 1] * size).tolist()
    return [body[b[u] : b[u + 1]] for u in range(n)]


def pack_msgpack(pool: Pool, i: int, n: int) -> list[bytes]:
    """msgpack of [[sku, score (float32), reason], ...] per user."""
    packer = msgpack.Packer(use_single_float=True)
    sku, score = pool.sku[i].tolist(), pool.score[i].tolist()
    bounds = pool.offsets[: n + 1].tolist()
    return [
        packer.pack([[k, v, 1] for k, v in zip(sku[s:e], score[s:e], strict=True)])
        for s, e in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def used_memory(client: redis.Redis) -> int:
    """Redis `used_memory` in bytes."""
    return int(client.info("memory")["used_memory"])


def server_cpu(client: redis.Redis) -> float:
    """CPU seconds the Redis server has used (user + system)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class Result:
    """One method's measurements (medians over rounds)."""

    label: str
    wall: list[float]
    cpu: list[float]  # client + server CPU seconds
    value: float = 0.0
    usage: float = 0.0
    grown: float = 0.0


def run_ours(
    client: redis.Redis, args: argparse.Namespace, inputs: tuple, with_regions: bool
) -> tuple[float, float, float]:
    """Publish through publish_snapshot; return value bytes, MEMORY USAGE and used_memory/user."""
    users, pool, history, regions, fallbacks, table = inputs
    report = publish_snapshot(
        client, "agent", PoolSource(pool), users, sku_table=table, fallbacks=fallbacks,
        meta={"model_name": "bench"}, top_n=args.top_n, batch_size=args.batch_size,
        progress=False, history=history, regions=regions if with_regions else None, similar_k=0,
    )  # fmt: skip
    stages = ", ".join(f"{k} {v:.1f}" for k, v in report.timings.items() if v)
    print(f"  publish_snapshot stages: {stages}", flush=True)
    keys = CacheKeys("agent")
    samples = [keys.picks(report.snapshot, b) for b in range(0, report.n_buckets, 97)]
    usage = np.mean([client.memory_usage(k, samples=0) / client.hlen(k) for k in samples])
    return report.bytes_picks / len(users), float(usage), 0.0


def run_bare(
    client: redis.Redis, args: argparse.Namespace, inputs: tuple, pack: Callable[..., list]
) -> tuple[float, float, float]:
    """Write with a bare SET loop; return value bytes, MEMORY USAGE and used_memory/user."""
    users, pool = inputs[0], inputs[1]
    bare_loop(client, users, pool, args.batch_size, pack)
    sample = [f"bench:{u}" for u in users[:: max(1, len(users) // 50)]]
    value = np.mean([client.strlen(k) for k in sample])
    usage = np.mean([client.memory_usage(k, samples=0) for k in sample])
    return float(value), float(usage), 0.0


def main() -> None:
    """Run every method on one server (interleaved rounds) and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument("--skus", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--skip-msgpack", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    users = np.array([f"agent{i:08d}" for i in range(args.users)], dtype=object)
    pool = make_pool(args.batch_size, args.top_n, args.skus, args.seed)
    history, regions, fallbacks = reason_inputs(users, pool, args.batch_size, args.skus, args.seed)
    inputs = (users, pool, history, regions, fallbacks, sku_table(args.skus))
    methods: list[tuple[str, Callable[[redis.Redis], tuple[float, float, float]]]] = [
        ("publish_snapshot, 2 reasons", lambda c: run_ours(c, args, inputs, True)),
        ("publish_snapshot, 1 reason", lambda c: run_ours(c, args, inputs, False)),
        ("(a) bare SET loop, packed", lambda c: run_bare(c, args, inputs, pack_numpy)),
    ]
    if not args.skip_msgpack:
        methods.append(("(b) msgpack lists", lambda c: run_bare(c, args, inputs, pack_msgpack)))
    results = {label: Result(label, [], []) for label, _ in methods}
    server = start_redis_server()
    # long timeout: FLUSHDB of a million keys takes seconds on a busy machine
    client = redis.Redis.from_url(server.url, socket_timeout=600)
    try:
        for _ in range(args.rounds):
            for label, run in methods:
                client.flushdb()
                before, cpu0, srv0 = used_memory(client), time.process_time(), server_cpu(client)
                start = time.perf_counter()
                value, usage, _ = run(client)
                wall = time.perf_counter() - start
                cpu = time.process_time() - cpu0 + server_cpu(client) - srv0
                res = results[label]
                res.wall.append(wall)
                res.cpu.append(cpu)
                res.value, res.usage = value, usage
                res.grown = (used_memory(client) - before) / args.users
                print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    finally:
        client.close()
        server.stop()
    print(f"\n{args.users:,} users × {args.top_n} picks, batches of {args.batch_size:,}\n")
    print(
        "| method | wall s | users/s | CPU s (client + Redis) | users per CPU-s "
        "| value B/user | MEMORY USAGE B/user | used_memory B/user |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        wall, cpu = float(np.median(r.wall)), float(np.median(r.cpu))
        print(
            f"| {r.label} | {wall:.1f} | {args.users / wall:,.0f} | {cpu:.1f} | "
            f"{args.users / cpu:,.0f} | {r.value:.0f} | {r.usage:.0f} | {r.grown:.0f} |"
        )


if __name__ == "__main__":
    main()
