"""The explorer's test world: the publish tests' tiny tables, published twice, with extras.

On top of `tests.publish.helpers.tiny_tables` (20 SKUs, 24 agents, two customers each):

- unit prices are the SKUs' catalogue prices (10 + i), so price bands differ between agents;
- one unit of a00's line of s01 (2 units) came back for a fault: s01 has 1 of 8 units returned,
  a00 1 of her 4 units;
- s05's title holds markup (`TITLE_WITH_SCRIPT`), which every page must show as text.

`publish_world` publishes `FixedRecommender(shift=0)` as `current` and `shift=5` on the
`challenger` channel, both with agent profiles and SKU stats, runs an experiment whose two
variants read those channels, suspends s03 with the breaker's numbers and makes API keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.ab import Experiment
from recsys.cache.snapshot import suspend_sku
from recsys.columns import Columns, Tables
from serving.auth import add_key
from serving.experiments import EXPERIMENTS_HASH
from tests.publish.helpers import FixedRecommender, tiny_dataset, tiny_tables
from training.publish import publish_snapshot
from training.publish_inputs import (
    build_fallbacks,
    build_history,
    build_sku_table,
    user_ids,
    user_regions,
)
from training.publish_profiles import build_agent_profiles, build_sku_stats

C = Columns
TITLE_WITH_SCRIPT = '<script>alert("pwned")</script> Chili crisps'
SUSPENDED_SKU = "s03"
BLOCKED = {"s17", "s18", SUSPENDED_SKU}  # suspended / discontinued in the catalogue, suspended
EXPERIMENT = Experiment.model_validate(
    {
        "name": "ranker",
        "salt": "explorer-tests",
        "variants": [
            {"name": "control", "weight": 1, "channel": "current"},
            {"name": "treatment", "weight": 1, "channel": "challenger"},
        ],
    }
)
SUSPENSION = {
    "reason": "5 of 9 units bought in the last 14 days came back as faulty (56%)",
    "numbers": {"units": 9.0, "fault_returns": 5.0, "rate": 0.5556, "category_rate": 0.05},
    "suspended_at": 1_790_000_000.0,
    "by": "quality-check",
}


def explorer_tables() -> dict[str, pd.DataFrame]:
    """The tiny tables with catalogue unit prices, one fault return and a title with markup."""
    tables = tiny_tables()
    skus = tables[Tables.SKUS].copy()
    skus.loc[skus[C.SKU_ID] == "s05", C.TITLE] = TITLE_WITH_SCRIPT
    purchases = tables[Tables.PURCHASES].copy()
    price = skus.set_index(C.SKU_ID)[C.PRICE]
    purchases[C.UNIT_PRICE] = purchases[C.SKU_ID].map(price).to_numpy()
    line = purchases.index[(purchases[C.AGENT_ID] == "a00") & (purchases[C.SKU_ID] == "s01")][0]
    returns = pd.DataFrame(
        {
            "return_id": ["r0"],
            C.TS: [purchases.at[line, C.TS] + pd.Timedelta(days=2)],
            C.PURCHASE_ID: [purchases.at[line, C.PURCHASE_ID]],
            C.QTY: [1],
            C.REASON: ["quality"],
        }
    )
    return {**tables, Tables.SKUS: skus, Tables.PURCHASES: purchases, Tables.RETURNS: returns}


def published_list(agent: int, shift: int) -> list[str]:
    """FixedRecommender's top 10 for agent number `agent`, without the blocked SKUs."""
    score = {j: (agent * 7 + j * 3 + shift) % 20 for j in range(20)}
    top = sorted(score, key=lambda j: -score[j])[:10]
    return [s for s in (f"s{j:02d}" for j in top) if s not in BLOCKED]


@dataclass
class Published:
    """What `publish_world` made: snapshot ids, keys and the inputs behind them."""

    current: str
    challenger: str
    admin_key: str
    platform_key: str
    tables: dict[str, pd.DataFrame]
    profiles: pd.DataFrame
    sku_stats: pd.DataFrame


@lru_cache(maxsize=1)
def _inputs() -> tuple[dict[str, pd.DataFrame], dict[str, Any], Any]:
    """Tables, publish arguments and the Dataset, built once (nothing mutates them)."""
    tables = explorer_tables()
    sku_table = build_sku_table(tables)
    common: dict[str, Any] = {
        "sku_table": sku_table,
        "fallbacks": build_fallbacks(tables, "agent", k=10),
        "top_n": 10,
        "batch_size": 8,
        "progress": False,
        "history": build_history(tables, "agent", sku_table[C.SKU_ID].to_numpy()),
        "regions": user_regions(tables, "agent"),
        "n_buckets": 4,
        "similar_k": 0,  # the explorer shows no similar SKUs
        "profiles": build_agent_profiles(tables),
        "sku_stats": build_sku_stats(tables),
    }
    return tables, common, tiny_dataset(tables)


def publish_world(client: Any) -> Published:
    """Publish the world (see the module docstring) into a clean Redis."""
    tables, common, dataset = _inputs()
    users = user_ids(tables, "agent")
    current = publish_snapshot(
        client,
        "agent",
        FixedRecommender(shift=0).fit(dataset),
        users,
        meta={"model_name": "fixed", "model_version": "3", "run_id": "0123456789abcdef"},
        **common,
    )
    challenger = publish_snapshot(
        client,
        "agent",
        FixedRecommender(shift=5).fit(dataset),
        users,
        meta={"model_name": "fixed", "model_version": "4", "run_id": "fedcba9876543210"},
        channel="challenger",
        **common,
    )
    client.hset(EXPERIMENTS_HASH, EXPERIMENT.name, EXPERIMENT.model_dump_json())
    suspend_sku(client, SUSPENDED_SKU, SUSPENSION)
    return Published(
        current=current.snapshot,
        challenger=challenger.snapshot,
        admin_key=add_key(client, ["admin"], name="ops")[0],
        platform_key=add_key(client, ["platform"], name="shop")[0],
        tables=tables,
        profiles=common["profiles"],
        sku_stats=common["sku_stats"],
    )


def write_reports(root: Path) -> list[str]:
    """Two A/B report folders (the newer one second on disk); their paths, newest first."""
    old = root / "2026-10-01-ranker" / "report.html"
    new = root / "2026-11-01-ranker" / "report.html"
    for path, stamp in ((old, 1_790_000_000), (new, 1_792_000_000)):
        path.parent.mkdir(parents=True)
        path.write_text(f"<html><body><h1>A/B report {path.parent.name}</h1></body></html>")
        (path.parent / "lift.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        os.utime(path, (stamp, stamp))
    (root / "notes.txt").write_text("not a report")
    return [new.relative_to(root).as_posix(), old.relative_to(root).as_posix()]
