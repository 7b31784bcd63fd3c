"""Events fixtures: settings and keys on the test Redis, event builders, a catalogue data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.columns import Columns, Tables
from recsys.contract.arrow_tables import with_event_ids
from recsys.contract.io import write_table
from recsys.events.check import check_events
from serving.auth import add_key
from serving.settings import Settings
from tests.serving.conftest import make_settings

C = Columns
AGENTS = [f"A{i}" for i in range(4)]
CUSTOMERS = [f"C{i}" for i in range(8)]
SKUS = [f"S{i}" for i in range(6)]
# Events must lie before "now" (the intake refuses the future): a month and more ago.
DAY = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=40)


def share(i: int, **changes: Any) -> dict[str, Any]:
    """A valid share event number `i` (on day 1 + i % 3)."""
    event = {
        "kind": "share",
        "event_id": f"sh-{i}",
        "share_id": f"H{i}",
        "ts": (DAY + pd.Timedelta(days=i % 3, minutes=i)).isoformat(),
        "agent_id": AGENTS[i % len(AGENTS)],
        "sku_id": SKUS[i % len(SKUS)],
        "channel": f"group-{i % 2}",
        "audience_size": 40 + i if i % 2 else None,
    }
    return {**event, **changes}


def purchase(i: int, **changes: Any) -> dict[str, Any]:
    """A valid purchase event number `i` (share `H{i}` when i is even)."""
    event = {
        "kind": "purchase",
        "event_id": f"pu-{i}",
        "purchase_id": f"P{i}",
        "order_id": f"O{i // 2}",
        "ts": (DAY + pd.Timedelta(days=i % 3, hours=1, minutes=i)).isoformat(),
        "customer_id": CUSTOMERS[i % len(CUSTOMERS)],
        "agent_id": AGENTS[i % len(AGENTS)],
        "sku_id": SKUS[i % len(SKUS)],
        "qty": 1 + i % 3,
        "unit_price": 9.5 + i,
        "share_id": f"H{i}" if i % 2 == 0 else None,
    }
    return {**event, **changes}


def ret(i: int, **changes: Any) -> dict[str, Any]:
    """A valid return event of purchase `P{i}`, a day after it, of one unit."""
    event = {
        "kind": "return",
        "event_id": f"re-{i}",
        "return_id": f"R{i}",
        "ts": (DAY + pd.Timedelta(days=i % 3 + 1, hours=2)).isoformat(),
        "purchase_id": f"P{i}",
        "qty": 1,
        "reason": "quality" if i % 2 else "fit",
    }
    return {**event, **changes}


def click(i: int, **changes: Any) -> dict[str, Any]:
    """A valid click event number `i` (customer and request id on odd i only)."""
    event = {
        "kind": "click",
        "event_id": f"cl-{i}",
        "ts": (DAY + pd.Timedelta(minutes=3 * i)).isoformat(),
        "agent_id": AGENTS[i % len(AGENTS)],
        "customer_id": CUSTOMERS[i % len(CUSTOMERS)] if i % 2 else None,
        "sku_id": SKUS[i % len(SKUS)],
        "request_id": f"req-{i}" if i % 2 else None,
    }
    return {**event, **changes}


CONTRACT_TABLE = {"share": Tables.SHARES, "purchase": Tables.PURCHASES, "return": Tables.RETURNS}


def expected_table(items: list[dict[str, Any]], kind: str) -> pd.DataFrame:
    """The contract table the loader should give for the posted events of `kind`."""
    typed = check_events([i for i in items if i["kind"] == kind]).typed[kind]
    frame = typed.frame.drop(columns="event_id")
    if "audience_size" in frame:
        frame["audience_size"] = frame["audience_size"].astype("Int64")
    return with_event_ids(CONTRACT_TABLE[kind], frame)


def write_catalogue(data_dir: Path) -> Path:
    """Write skus, agents and customers (the tables events refer to) into `data_dir`."""
    joined = pd.Timestamp("2025-01-01", tz="UTC")
    write_table(
        pd.DataFrame(
            {
                C.SKU_ID: SKUS,
                C.TITLE: [f"product {s}" for s in SKUS],
                C.CATEGORY: ["snacks"] * len(SKUS),
                C.SERIES: [None] * len(SKUS),
                C.BRAND: ["B"] * len(SKUS),
                C.PRICE: [10.0] * len(SKUS),
                C.TAGS: [[] for _ in SKUS],
                C.LAUNCHED_AT: [joined] * len(SKUS),
                C.REGIONS: [[] for _ in SKUS],
                C.STATUS: ["active"] * len(SKUS),
            }
        ),
        data_dir / f"{Tables.SKUS}.parquet",
    )
    write_table(
        pd.DataFrame(
            {C.AGENT_ID: AGENTS, C.REGION: "north", C.TIER: 1, C.JOINED_AT: joined},
        ),
        data_dir / f"{Tables.AGENTS}.parquet",
    )
    write_table(
        pd.DataFrame(
            {
                C.CUSTOMER_ID: CUSTOMERS,
                C.REGION: "north",
                C.AGENT_ID: [AGENTS[i % len(AGENTS)] for i in range(len(CUSTOMERS))],
                C.JOINED_AT: joined,
            }
        ),
        data_dir / f"{Tables.CUSTOMERS}.parquet",
    )
    return data_dir


@pytest.fixture()
def settings(redis_url: str, redis_client: Any) -> Settings:
    """Service settings on the (flushed) test Redis; sink lag read every 50 ms."""
    return make_settings(redis_url, sink_lag_interval_s=0.05)


@pytest.fixture()
def keys(redis_client: Any) -> dict[str, str]:
    """Plaintext keys by scope: events, admin, platform."""
    return {
        scope: add_key(redis_client, [scope], name=scope)[0]
        for scope in ("events", "admin", "platform")
    }


@pytest.fixture()
def catalogue_dir(tmp_path: Path) -> Path:
    """A data directory holding only skus, agents and customers."""
    return write_catalogue(tmp_path / "data")
