"""The picks explorer on a real Redis Cluster: login, an agent's page, a comparison, a lift."""

from __future__ import annotations

from typing import Any

import pytest

from recsys.cache.keys import SUSPENDED
from recsys.quality.store import LIFTS
from serving.explorer.views import return_badge
from tests.explorer.conftest import cards, form_token, login
from tests.explorer.world import EXPERIMENT, SUSPENDED_SKU, publish_world, published_list
from tests.serving.conftest import make_settings, serve, wait_for

pytestmark = pytest.mark.cluster


def test_the_explorer_reads_and_lifts_on_a_cluster(cluster_client: Any, cluster_url: str) -> None:
    world = publish_world(cluster_client)
    with serve(make_settings(cluster_url)) as client:
        live = client.app.state.services.live  # type: ignore[attr-defined]
        wait_for(lambda: live.snapshot("agent", "challenger") is not None)
        assert login(client, world.admin_key).status_code == 303
        # Overview: pointers, snapshot list and metas, one GET each, from several masters.
        overview = client.get("/explorer/").text
        assert f"<code>{world.current}</code>" in overview
        assert f"<code>{world.challenger}</code></td><td>challenger</td>" in overview
        # Her page: the profile from beside her picks bucket, the cards as the API serves them.
        html = client.get("/explorer/agents/a00", params={"k": 6}).text
        assert '<dd class="region">north</dd>' in html
        assert '<dd class="audience">2 customers</dd>' in html
        variant = EXPERIMENT.assign("a00")
        shift = 5 if variant.channel == "challenger" else 0
        shown = [s for s, _, _ in cards(html)]
        assert shown == published_list(0, shift)[:6]
        # Each card's badge from the SKU figures (one HMGET on the stats hash's master).
        for sku, _, inner in cards(html):
            figures = world.sku_stats.loc[sku].to_dict()
            assert f">{return_badge(figures).text}</span>" in inner
        api = client.get(
            "/v1/agents/a00/picks",
            params={"k": 6, "region": "north", "tier": 1},
            headers={"X-API-Key": world.platform_key},
        ).json()
        assert shown == [p["sku_id"] for p in api["picks"]]
        # A comparison loads a snapshot by id (meta, SKU table, fallbacks on their masters).
        compare = client.get(
            "/explorer/agents/a00/compare",
            params={"left": f"snapshot:{world.current}", "right": "channel:challenger", "k": 7},
        ).text
        split = compare.index('aria-label="Right"')
        assert [s for s, _, _ in cards(compare[:split])] == published_list(0, 0)[:7]
        assert [s for s, _, _ in cards(compare[split:])] == published_list(0, 5)[:7]
        # A lift: one script over the suspension hash and the lifts hash, one slot.
        page = client.get("/explorer/suspensions").text
        lifted = client.post(
            f"/explorer/suspensions/{SUSPENDED_SKU}/lift",
            data={"csrf": form_token(page)},
            follow_redirects=False,
        )
        assert lifted.status_code == 303, lifted.text
    assert not cluster_client.hexists(SUSPENDED, SUSPENDED_SKU)
    assert b'"by":"explorer:' in cluster_client.hget(LIFTS, SUSPENDED_SKU)
