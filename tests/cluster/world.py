"""The serving tests' tiny world, published with more buckets so a snapshot spans the nodes."""

from __future__ import annotations

from typing import Any

from tests.serving.world import (
    AGENTS,
    CUSTOMERS,
    TOP_N,
    RotatingRecommender,
    dataset,
    fallbacks,
    sku_table,
)
from training.publish import PublishReport, publish_snapshot

N_BUCKETS = 16  # 24 agents in 16 buckets: ~20 snapshot keys, over all 3 masters


def publish_world(
    client: Any,
    target: str = "agent",
    shift: int = 0,
    *,
    version: str = "1",
    channel: str = "current",
    model: Any = None,
) -> PublishReport:
    """Publish `RotatingRecommender(shift)` (or `model`) for the tiny world's users."""
    users = AGENTS if target == "agent" else CUSTOMERS
    if model is None:
        model = RotatingRecommender(shift=shift).fit(dataset(target, users))
    return publish_snapshot(
        client,
        target,
        model,
        users,
        sku_table=sku_table(),
        fallbacks=fallbacks(),
        meta={"model_name": "rotating", "model_version": version},
        top_n=TOP_N,
        batch_size=10,
        progress=False,
        similar_k=6,
        n_buckets=N_BUCKETS,
        channel=channel,
    )
