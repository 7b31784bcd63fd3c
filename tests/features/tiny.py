"""A tiny hand-built log, typed like `load_tables` output, whose weights are worked out by hand.

Cutoff 2024-03-01 (2024 is a leap year: 2024-02-01 is 29 days before it). Events at midnight UTC.

    shares     sh1 a1 s1 02-01 | sh2 a1 s2 02-11 | sh3 a2 s1 02-21 | sh4 a1 s3 03-02 (after)
    purchases  p1 c1/a1 s1 ×3 02-02 | p2 c2/a1 s1 ×1 02-20 | p3 c1/a1 s2 ×2 02-12
               p4 c3/a2 s1 ×2 02-22 | p5 c1/a1 s1 ×1 02-25 (c1 buys s1 again)
               p6 c3/a2 s2 ×1 02-26 | p7 c1/a1 s2 ×1 03-03 (after)
    returns    r1 p1 ×1 changed_mind 02-05 (partial) | r2 p3 ×1 quality 02-15
               r3 p6 ×1 not_as_described 02-28 | r4 p5 ×1 other 03-02 (after)

s3 launches 03-10, after the cutoff; s4 is suspended; c4 joins 03-05, after the cutoff.
"""

from __future__ import annotations

import pandas as pd

from recsys.columns import Columns, Tables

C = Columns
CUTOFF = pd.Timestamp("2024-03-01", tz="UTC")


def ts(day: str) -> pd.Timestamp:
    """Midnight UTC of a 2024 day given as MM-DD."""
    return pd.Timestamp(f"2024-{day}", tz="UTC")


def _frame(rows: list[dict[str, object]], ts_cols: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in ts_cols:
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
    return frame


def tiny_tables() -> dict[str, pd.DataFrame]:
    """The six contract tables of the log above."""
    skus = _frame(
        [
            {C.SKU_ID: "s1", C.TITLE: "nuts", C.CATEGORY: "snacks", C.SERIES: "daily",
             C.BRAND: "A", C.PRICE: 10.0, C.TAGS: ["organic"], C.LAUNCHED_AT: ts("01-01"),
             C.REGIONS: [], C.STATUS: "active"},
            {C.SKU_ID: "s2", C.TITLE: "cream", C.CATEGORY: "beauty", C.SERIES: None,
             C.BRAND: "B", C.PRICE: 50.0, C.TAGS: ["gift", "organic"], C.LAUNCHED_AT: ts("01-15"),
             C.REGIONS: ["north"], C.STATUS: "active"},
            {C.SKU_ID: "s3", C.TITLE: "chips", C.CATEGORY: "snacks", C.SERIES: "daily",
             C.BRAND: "A", C.PRICE: 20.0, C.TAGS: [], C.LAUNCHED_AT: ts("03-10"),
             C.REGIONS: ["south"], C.STATUS: "active"},
            {C.SKU_ID: "s4", C.TITLE: "serum", C.CATEGORY: "beauty", C.SERIES: None,
             C.BRAND: "C", C.PRICE: 100.0, C.TAGS: [], C.LAUNCHED_AT: ts("01-01"),
             C.REGIONS: [], C.STATUS: "suspended"},
        ],
        (C.LAUNCHED_AT,),
    )  # fmt: skip
    agents = _frame(
        [
            {C.AGENT_ID: "a1", C.REGION: "north", C.TIER: 2, C.JOINED_AT: "2023-12-01"},
            {C.AGENT_ID: "a2", C.REGION: "south", C.TIER: 4, C.JOINED_AT: "2024-02-20"},
        ],
        (C.JOINED_AT,),
    )
    customers = _frame(
        [
            {C.CUSTOMER_ID: "c1", C.REGION: "north", C.AGENT_ID: "a1", C.JOINED_AT: "2024-01-01"},
            {C.CUSTOMER_ID: "c2", C.REGION: "north", C.AGENT_ID: "a1", C.JOINED_AT: "2024-01-05"},
            {C.CUSTOMER_ID: "c3", C.REGION: "south", C.AGENT_ID: "a2", C.JOINED_AT: "2024-02-25"},
            {C.CUSTOMER_ID: "c4", C.REGION: "south", C.AGENT_ID: "a2", C.JOINED_AT: "2024-03-05"},
        ],
        (C.JOINED_AT,),
    )
    shares = _frame(
        [
            {C.SHARE_ID: "sh1", C.TS: ts("02-01"), C.AGENT_ID: "a1", C.SKU_ID: "s1"},
            {C.SHARE_ID: "sh2", C.TS: ts("02-11"), C.AGENT_ID: "a1", C.SKU_ID: "s2"},
            {C.SHARE_ID: "sh3", C.TS: ts("02-21"), C.AGENT_ID: "a2", C.SKU_ID: "s1"},
            {C.SHARE_ID: "sh4", C.TS: ts("03-02"), C.AGENT_ID: "a1", C.SKU_ID: "s3"},
        ],
        (C.TS,),
    )
    shares[C.CHANNEL] = "group_chat"
    shares[C.AUDIENCE_SIZE] = pd.array([10, 10, 5, None], dtype="Int64")
    purchases = _frame(
        [
            {C.PURCHASE_ID: "p1", C.TS: ts("02-02"), C.CUSTOMER_ID: "c1", C.AGENT_ID: "a1",
             C.SKU_ID: "s1", C.QTY: 3, C.SHARE_ID: "sh1"},
            {C.PURCHASE_ID: "p2", C.TS: ts("02-20"), C.CUSTOMER_ID: "c2", C.AGENT_ID: "a1",
             C.SKU_ID: "s1", C.QTY: 1, C.SHARE_ID: "sh1"},
            {C.PURCHASE_ID: "p3", C.TS: ts("02-12"), C.CUSTOMER_ID: "c1", C.AGENT_ID: "a1",
             C.SKU_ID: "s2", C.QTY: 2, C.SHARE_ID: "sh2"},
            {C.PURCHASE_ID: "p4", C.TS: ts("02-22"), C.CUSTOMER_ID: "c3", C.AGENT_ID: "a2",
             C.SKU_ID: "s1", C.QTY: 2, C.SHARE_ID: "sh3"},
            {C.PURCHASE_ID: "p5", C.TS: ts("02-25"), C.CUSTOMER_ID: "c1", C.AGENT_ID: "a1",
             C.SKU_ID: "s1", C.QTY: 1, C.SHARE_ID: None},
            {C.PURCHASE_ID: "p6", C.TS: ts("02-26"), C.CUSTOMER_ID: "c3", C.AGENT_ID: "a2",
             C.SKU_ID: "s2", C.QTY: 1, C.SHARE_ID: None},
            {C.PURCHASE_ID: "p7", C.TS: ts("03-03"), C.CUSTOMER_ID: "c1", C.AGENT_ID: "a1",
             C.SKU_ID: "s2", C.QTY: 1, C.SHARE_ID: None},
        ],
        (C.TS,),
    )  # fmt: skip
    purchases[C.ORDER_ID] = "o-" + purchases[C.PURCHASE_ID]
    prices = {"s1": 10.0, "s2": 50.0, "s3": 20.0, "s4": 100.0}
    purchases[C.UNIT_PRICE] = purchases[C.SKU_ID].map(prices)
    returns = _frame(
        [
            {C.RETURN_ID: "r1", C.TS: ts("02-05"), C.PURCHASE_ID: "p1", C.QTY: 1,
             C.REASON: "changed_mind"},
            {C.RETURN_ID: "r2", C.TS: ts("02-15"), C.PURCHASE_ID: "p3", C.QTY: 1,
             C.REASON: "quality"},
            {C.RETURN_ID: "r3", C.TS: ts("02-28"), C.PURCHASE_ID: "p6", C.QTY: 1,
             C.REASON: "not_as_described"},
            {C.RETURN_ID: "r4", C.TS: ts("03-02"), C.PURCHASE_ID: "p5", C.QTY: 1,
             C.REASON: "other"},
        ],
        (C.TS,),
    )  # fmt: skip
    return {
        Tables.SKUS: skus,
        Tables.AGENTS: agents,
        Tables.CUSTOMERS: customers,
        Tables.SHARES: shares,
        Tables.PURCHASES: purchases,
        Tables.RETURNS: returns,
    }


def shuffled(tables: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """The same tables with rows in a random order (and a fresh index)."""
    return {
        name: frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        for name, frame in tables.items()
    }


def random_tables(
    seed: int, n_purchases: int = 60, n_shares: int = 20, n_returns: int = 15
) -> dict[str, pd.DataFrame]:
    """A small random log over 4 agents, 8 customers and 6 SKUs in January 2024 (valid contract).

    Timestamps fall on whole hours, so several events often share one (ties are exercised).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")

    def times(n: int) -> pd.Series:
        return pd.Series(t0 + pd.to_timedelta(rng.integers(0, 31 * 24, n), unit="h"))

    agents = pd.DataFrame(
        {
            C.AGENT_ID: [f"a{i}" for i in range(4)],
            C.REGION: ["north", "south", "north", "east"],
            C.TIER: [1, 2, 3, 5],
            C.JOINED_AT: pd.Series([t0] * 4),
        }
    )
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: [f"c{i}" for i in range(8)],
            C.REGION: ["north", "south"] * 4,
            C.AGENT_ID: [f"a{i % 4}" for i in range(8)],
            C.JOINED_AT: times(8),
        }
    )
    skus = pd.DataFrame(
        {
            C.SKU_ID: [f"s{i}" for i in range(6)],
            C.TITLE: "item",
            C.CATEGORY: ["snacks", "beauty", "fresh"] * 2,
            C.SERIES: [None, "x"] * 3,
            C.BRAND: ["A", "B", "A", "C", "D", "A"],
            C.PRICE: [5.0, 12.0, 30.0, 30.0, 80.0, 7.5],
            C.TAGS: [["t1"], [], ["t1", "t2"], ["t3"], [], ["t2"]],
            C.LAUNCHED_AT: times(6),
            C.REGIONS: [[], ["north"], [], ["south", "east"], [], []],
            C.STATUS: ["active"] * 5 + ["discontinued"],
        }
    )
    shares = pd.DataFrame(
        {
            C.SHARE_ID: [f"sh{i}" for i in range(n_shares)],
            C.TS: times(n_shares),
            C.AGENT_ID: [f"a{i}" for i in rng.integers(0, 4, n_shares)],
            C.SKU_ID: [f"s{i}" for i in rng.integers(0, 6, n_shares)],
            C.CHANNEL: "group_chat",
            C.AUDIENCE_SIZE: pd.array([None] * n_shares, dtype="Int64"),
        }
    )
    buyer = rng.integers(0, 8, n_purchases)
    purchases = pd.DataFrame(
        {
            C.PURCHASE_ID: [f"p{i}" for i in range(n_purchases)],
            C.ORDER_ID: [f"o{i}" for i in range(n_purchases)],
            C.TS: times(n_purchases),
            C.CUSTOMER_ID: [f"c{i}" for i in buyer],
            C.AGENT_ID: [f"a{i % 4}" for i in buyer],
            C.SKU_ID: [f"s{i}" for i in rng.integers(0, 6, n_purchases)],
            C.QTY: rng.integers(1, 4, n_purchases),
            C.UNIT_PRICE: 10.0,
            C.SHARE_ID: None,
        }
    )
    n_returns = min(n_returns, n_purchases)
    which = rng.choice(n_purchases, n_returns, replace=False)
    returns = pd.DataFrame(
        {
            C.RETURN_ID: [f"r{i}" for i in range(n_returns)],
            C.TS: purchases[C.TS].iloc[which].reset_index(drop=True)
            + pd.to_timedelta(rng.integers(1, 10 * 24, n_returns), unit="h"),
            C.PURCHASE_ID: purchases[C.PURCHASE_ID].to_numpy()[which],
            C.QTY: np.minimum(rng.integers(1, 3, n_returns), purchases[C.QTY].to_numpy()[which]),
            C.REASON: rng.choice(["quality", "not_as_described", "damaged", "other"], n_returns),
        }
    )
    return {
        Tables.SKUS: skus,
        Tables.AGENTS: agents,
        Tables.CUSTOMERS: customers,
        Tables.SHARES: shares,
        Tables.PURCHASES: purchases,
        Tables.RETURNS: returns,
    }
