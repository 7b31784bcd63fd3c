"""Time `validate_dir` on a synthetic data directory of N purchase lines (not a test).

    python bench/bench_validate.py --n-purchases 5000000 --format parquet

Writes the tables to a temporary folder (ids repeat as in real logs: 5% of the lines returned,
100k SKUs, 20k agents, 500k customers), then reports the time to read the raw tables and to
validate them (wall and CPU: the machine may be shared) and peak memory. A bad SKU is planted so
the quarantine and cascade paths run too. Then, unless `--no-cache`, it times `load_tables` the
way training loads data: with the table cache empty (hash the files, read, validate, store the
cache) and filled (read the cached tables back).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys.columns import RETURN_REASONS, Columns, Tables
from recsys.contract.io import read_raw_table, write_table
from recsys.contract.loader import load_tables_cached
from recsys.contract.table_cache import CACHE_DIRNAME
from recsys.contract.validate import validate_tables

C = Columns
START = pd.Timestamp("2025-01-01", tz="UTC")


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """Ids like `P000123` built in Arrow (fast for millions of rows)."""
    digits = pa.array(numbers.astype("int64")).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(digits, 7, "0"), "")


def _ts(rng: np.random.Generator, n: int, days: int) -> pa.Array:
    seconds = rng.integers(0, days * 86_400, size=n)
    values = START.value + seconds.astype("int64") * 1_000_000_000
    return pa.array(values, type=pa.timestamp("ns", tz="UTC"))


def build(out: Path, n_purchases: int, fmt: str, seed: int = 0) -> None:
    """Write the six tables of a synthetic data directory to `out`."""
    rng = np.random.default_rng(seed)
    n_skus, n_agents, n_customers, n_shares = 100_000, 20_000, 500_000, n_purchases // 5
    skus = pd.DataFrame(
        {
            C.SKU_ID: _ids("S", np.arange(n_skus)).to_pandas(),
            C.TITLE: "item",
            C.CATEGORY: rng.choice(["fresh", "beauty", "staples"], n_skus),
            C.SERIES: None,
            C.BRAND: "brand",
            C.PRICE: rng.uniform(1, 300, n_skus).round(2),
            C.TAGS: [["a", "b"]] * n_skus,
            C.LAUNCHED_AT: _ts(rng, n_skus, 30).to_pandas(),
            C.REGIONS: [[]] * n_skus,
            C.STATUS: "active",
        }
    )
    skus.loc[7, C.PRICE] = -1.0  # planted: one bad SKU cascades to its lines
    agents = pd.DataFrame(
        {
            C.AGENT_ID: _ids("A", np.arange(n_agents)).to_pandas(),
            C.REGION: "east",
            C.TIER: rng.integers(1, 6, n_agents),
            C.JOINED_AT: _ts(rng, n_agents, 30).to_pandas(),
        }
    )
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: _ids("C", np.arange(n_customers)).to_pandas(),
            C.REGION: "east",
            C.AGENT_ID: _ids("A", rng.integers(0, n_agents, n_customers)).to_pandas(),
            C.JOINED_AT: _ts(rng, n_customers, 30).to_pandas(),
        }
    )
    shares = pa.table(
        {
            C.SHARE_ID: _ids("H", np.arange(n_shares)),
            C.TS: _ts(rng, n_shares, 60),
            C.AGENT_ID: _ids("A", rng.integers(0, n_agents, n_shares)),
            C.SKU_ID: _ids("S", rng.integers(0, n_skus, n_shares)),
            C.CHANNEL: pa.array(["group"] * n_shares),
            C.AUDIENCE_SIZE: pa.array(rng.integers(0, 500, n_shares)),
        }
    )
    qty = rng.integers(1, 4, n_purchases)
    share_ids = _ids("H", rng.integers(0, n_shares, n_purchases))
    purchases = pa.table(
        {
            C.PURCHASE_ID: _ids("P", np.arange(n_purchases)),
            C.ORDER_ID: _ids("O", np.arange(n_purchases) // 2),
            C.TS: _ts(rng, n_purchases, 90),
            C.CUSTOMER_ID: _ids("C", rng.integers(0, n_customers, n_purchases)),
            C.AGENT_ID: _ids("A", rng.integers(0, n_agents, n_purchases)),
            C.SKU_ID: _ids("S", rng.integers(0, n_skus, n_purchases)),
            C.QTY: pa.array(qty),
            C.UNIT_PRICE: pa.array(rng.uniform(1, 300, n_purchases).round(2)),
            C.SHARE_ID: pc.if_else(pa.array(rng.random(n_purchases) < 0.3), None, share_ids),
        }
    )
    lines = rng.choice(n_purchases, size=n_purchases // 20, replace=False)
    n_returns = len(lines)
    returns = pa.table(
        {
            C.RETURN_ID: _ids("R", np.arange(n_returns)),
            # after every purchase of the period
            C.TS: pa.array(
                np.full(n_returns, (START + pd.Timedelta(days=100)).value),
                type=pa.timestamp("ns", tz="UTC"),
            ),
            C.PURCHASE_ID: _ids("P", lines),
            C.QTY: pa.array(np.maximum(1, qty[lines] - 1)),
            C.REASON: pa.array(rng.choice(list(RETURN_REASONS), n_returns)),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        (Tables.SKUS, skus),
        (Tables.AGENTS, agents),
        (Tables.CUSTOMERS, customers),
    ):
        write_table(frame, out / f"{name}.{fmt}", name)
    for name, table in (
        (Tables.SHARES, shares),
        (Tables.PURCHASES, purchases),
        (Tables.RETURNS, returns),
    ):
        if fmt == "parquet":
            pq.write_table(table, out / f"{name}.parquet")
        else:
            write_table(table.to_pandas(), out / f"{name}.csv", name)


def main() -> None:
    """Build the directory, read and validate it, print the timings and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-purchases", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep the data here")
    parser.add_argument(
        "--no-cache", action="store_true", help="skip the cold and warm table-cache loads"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or Path(tmp) / "data"
        start = time.perf_counter()
        if not (data / f"purchases.{args.format}").exists():
            build(data, args.n_purchases, args.format)
        built = time.perf_counter() - start
        wall, cpu = time.perf_counter(), time.process_time()
        raws = {name: read_raw_table(data, name) for name in Tables.ALL}
        read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        result = validate_tables(raws, now="2025-12-31")
        check_wall, check_cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        summary = result.summary().to_string(index=False)
        del raws, result  # the cached loads start from an empty heap, as a training run does
        gc.collect()
        loads = [] if args.no_cache else _cached_loads(data)
    print(summary)
    print(
        f"{args.n_purchases:,} purchase lines ({args.format}), built in {built:.1f} s\n"
        f"  read:     {read_wall:6.1f} s wall, {read_cpu:6.1f} s CPU\n"
        f"  validate: {check_wall:6.1f} s wall, {check_cpu:6.1f} s CPU\n"
        f"  peak memory {peak_gib:.2f} GiB (read + validate)"
    )
    for label, load_wall, load_cpu in loads:
        print(f"  load_tables, {label}: {load_wall:6.1f} s wall, {load_cpu:6.1f} s CPU")
    if loads:
        total_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"  peak memory {total_gib:.2f} GiB (whole run)")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _cached_loads(data: Path) -> list[tuple[str, float, float]]:
    """Wall and CPU seconds of `load_tables` with the table cache empty, then filled."""
    shutil.rmtree(data / CACHE_DIRNAME, ignore_errors=True)
    out = []
    for label in ("cache empty", "cache filled"):
        wall, cpu = time.perf_counter(), time.process_time()
        loaded = load_tables_cached(data, on_quarantine="ignore", now="2025-12-31", cache=True)
        out.append((label, time.perf_counter() - wall, time.process_time() - cpu))
        if loaded.from_cache != (label == "cache filled"):
            raise RuntimeError(f"{label}: from_cache is {loaded.from_cache}")
        del loaded
    return out


if __name__ == "__main__":
    main()
