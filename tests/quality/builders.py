"""A hand-built log whose breaker numbers can be worked out by hand.

Every SKU sells one line of one unit a day at noon, on days 0..59 from T0. Returns are filed one
day after their purchase (noon the next day).

- snacks s00..s09: the line of every 20th day (0, 20, 40) comes back for `quality`;
- s00 has an incident from day 40 (`ONSET`): from then on every line comes back for `quality`;
- s01 also has every line from day 40 come back as `damaged` (a fault only with include_damaged);
- apparel t0..t4: the line of every 10th day comes back for `quality`, every 5th (not 10th) for
  `fit` (not a fault);
- x0 (snacks) sells only on days 57, 58, 59, each returned for `quality` (3 of 3: too few units).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.columns import Columns, Tables
from recsys.contract.io import write_table
from recsys.contract.schema import empty_table

C = Columns
T0 = pd.Timestamp("2025-01-01", tz="UTC")
ONSET = T0 + pd.Timedelta(days=40)
N_DAYS = 60
SNACKS = [f"s{i:02d}" for i in range(10)]
APPAREL = [f"t{i}" for i in range(5)]


def day(d: float) -> pd.Timestamp:
    """Midnight of day `d` after T0 (plus the fraction)."""
    return T0 + pd.Timedelta(days=d)


def _return_reason(sku: str, d: int) -> str | None:
    if sku == "x0":
        return "quality"
    if sku in APPAREL:
        return "quality" if d % 10 == 0 else "fit" if d % 5 == 0 else None
    if sku == "s00" and d >= 40:
        return "quality"
    if d % 20 == 0:
        return "quality"
    if sku == "s01" and d >= 40:
        return "damaged"
    return None


def build_tables() -> dict[str, pd.DataFrame]:
    """The six contract tables of the log described in the module docstring."""
    skus = [*SNACKS, *APPAREL, "x0"]
    catalogue = pd.DataFrame(
        {
            C.SKU_ID: skus,
            C.TITLE: skus,
            C.CATEGORY: ["apparel" if s in APPAREL else "snacks" for s in skus],
            C.SERIES: [None] * len(skus),
            C.BRAND: ["b"] * len(skus),
            C.PRICE: [10.0] * len(skus),
            C.TAGS: [[] for _ in skus],
            C.LAUNCHED_AT: [T0] * len(skus),
            C.REGIONS: [[] for _ in skus],
            C.STATUS: ["active"] * len(skus),
        }
    )
    agents = pd.DataFrame({C.AGENT_ID: ["a0"], C.REGION: ["north"], C.TIER: [1], C.JOINED_AT: [T0]})
    customers = pd.DataFrame(
        {C.CUSTOMER_ID: ["c0"], C.REGION: ["north"], C.AGENT_ID: ["a0"], C.JOINED_AT: [T0]}
    )
    lines, rets = [], []
    for sku in skus:
        days = range(57, 60) if sku == "x0" else range(N_DAYS)
        for d in days:
            pid = f"p-{sku}-{d:02d}"
            lines.append((pid, f"o-{pid}", day(d + 0.5), "c0", "a0", sku, 1, 10.0, None))
            reason = _return_reason(sku, d)
            if reason is not None:
                rets.append((f"r-{pid}", day(d + 1.5), pid, 1, reason))
    purchases = pd.DataFrame(
        lines,
        columns=[
            C.PURCHASE_ID,
            C.ORDER_ID,
            C.TS,
            C.CUSTOMER_ID,
            C.AGENT_ID,
            C.SKU_ID,
            C.QTY,
            C.UNIT_PRICE,
            C.SHARE_ID,
        ],
    )
    returns = pd.DataFrame(rets, columns=[C.RETURN_ID, C.TS, C.PURCHASE_ID, C.QTY, C.REASON])
    shares = empty_table(Tables.SHARES)
    return {
        Tables.SKUS: catalogue,
        Tables.AGENTS: agents,
        Tables.CUSTOMERS: customers,
        Tables.SHARES: shares,
        Tables.PURCHASES: purchases,
        Tables.RETURNS: returns,
    }


def write_tables(tables: dict[str, pd.DataFrame], out: Path) -> Path:
    """Write the tables as a data directory (Parquet) that `load_tables` accepts."""
    for name, frame in tables.items():
        write_table(frame, out / f"{name}.parquet", name)
    return out
