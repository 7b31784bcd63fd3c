"""`recsys publish` stores the ranked model's own reasons with its picks, unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.cache.snapshot import load_snapshot, read_picks
from recsys.columns import Columns
from tests.ranking.conftest import Fitted

C = Columns


def test_published_ranked_picks_carry_the_model_reasons(
    tiny_ranked: Fitted, redis_client: Any
) -> None:
    from training.publish import publish_snapshot

    model = tiny_ranked.model
    agents = list(model.users_.external_ids[:12])
    skus = tiny_ranked.tables["skus"]
    global_list = model.recommend(["nobody"], k=10)[[C.SKU_ID, C.SCORE]]
    publish_snapshot(
        redis_client,
        "agent",
        model,
        agents,
        sku_table=skus,
        fallbacks={"global": global_list},
        meta={"model_name": "ranked", "model_version": "1"},
        top_n=10,
        batch_size=5,
        progress=False,
        similar_k=0,
    )
    snapshot = load_snapshot(redis_client, "agent")
    table = skus[C.SKU_ID].to_numpy(dtype=object)
    reco = model.recommend(agents, k=10)
    for agent in agents[:4]:
        stored = read_picks(redis_client, snapshot, agent)
        assert stored is not None
        sku_ids = table[stored.sku_index]
        mine = reco[reco[C.AGENT_ID] == agent]
        assert sku_ids.tolist() == mine[C.SKU_ID].tolist()
        ids, params = model.pick_reasons(np.full(len(sku_ids), agent, dtype=object), sku_ids)
        assert (stored.reasons == ids).all() and (stored.params == params).all()
        assert (stored.reasons[:, 0] > 0).all()
