"""PopularRecommender: buyers in the window, ties by kept units, region/tier lists, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.models.popular import PopularRecommender
from tests.models.helpers import line, make_dataset

C = Columns
SKUS = ["p1", "p2", "p3", "p4", "p5"]
REGIONS = {"u1": "north", "u2": "north", "u3": "south", "u4": "south"}
TIERS = {"u1": 1, "u2": 1, "u3": 2, "u4": 2}


@pytest.fixture()
def data() -> Dataset:
    lines = [
        line("u1", "p1", 1),
        line("u2", "p1", 2),
        line("u1", "p2", 3, qty=5),
        line("u3", "p3", 1),
        line("u3", "p3", 5, qty=2),
        line("u3", "p2", 4),
        line("u1", "p4", 40, qty=10),  # outside the 28-day window
    ]
    # u4 is known (has a region) but has no history
    return make_dataset(lines, ["u1", "u2", "u3", "u4"], SKUS, regions=REGIONS, tiers=TIERS)


def picks(model: PopularRecommender, user: str, k: int = 5) -> list[str]:
    return model.recommend([user], k=k)[C.SKU_ID].tolist()


def test_popular_global_ranks_by_buyers_then_units(data: Dataset) -> None:
    reco = PopularRecommender().fit(data).recommend(["u1"], k=5)
    # p2: 2 buyers, 6 units; p1: 2 buyers, 2 units; p3: 1 buyer, 3 units; max units 6
    assert reco[C.SKU_ID].tolist() == ["p2", "p1", "p3", "p4", "p5"]
    assert_allclose(reco[C.SCORE][:3], [2 + 6 / 7, 2 + 2 / 7, 1 + 3 / 7], rtol=1e-6)


def test_popular_window_days_widens_the_window(data: Dataset) -> None:
    model = PopularRecommender(window_days=60).fit(data)
    # p4 now counts: 1 buyer with 10 units, which beats p3 (1 buyer, 3 units)
    assert picks(model, "u1") == ["p2", "p1", "p4", "p3", "p5"]


def test_popular_min_buyers_drops_rare_skus_below_ranked_ones(data: Dataset) -> None:
    model = PopularRecommender(min_buyers=2).fit(data)
    reco = model.recommend(["u1"], k=5)
    assert reco[C.SKU_ID].tolist()[:2] == ["p2", "p1"]
    # p3 and p4 (one buyer each) follow by all-time popularity, ties by catalogue order
    assert reco[C.SKU_ID].tolist()[2:] == ["p3", "p4", "p5"]


def test_popular_returned_units_do_not_break_ties(data: Dataset) -> None:
    lines = [line("u1", "p1", 1, qty=9, ret=9), line("u2", "p2", 1, qty=2)]
    model = PopularRecommender().fit(make_dataset(lines, ["u1", "u2"], SKUS))
    assert picks(model, "u1", k=2) == ["p2", "p1"]


def test_popular_region_ranks_own_region_first(data: Dataset) -> None:
    model = PopularRecommender(by="region").fit(data)
    # north: p1 (2 buyers), p2 (1 buyer); south: p3 (3 units), p2 (1 unit); then global order
    assert picks(model, "u1") == ["p1", "p2", "p3", "p4", "p5"]
    assert picks(model, "u3") == ["p3", "p2", "p1", "p4", "p5"]
    offset = 2 + 6 / 7 + 1
    scores = model.recommend(["u3"], k=2)[C.SCORE]
    assert_allclose(scores, [1 + 3 / 6 + offset, 1 + 1 / 6 + offset], rtol=1e-6)


def test_popular_region_scores_known_users_without_history(data: Dataset) -> None:
    model = PopularRecommender(by="region").fit(data)
    assert picks(model, "u4") == picks(model, "u3")


def test_popular_tier_ranks_own_tier_first(data: Dataset) -> None:
    model = PopularRecommender(by="tier").fit(data)
    assert picks(model, "u2") == ["p1", "p2", "p3", "p4", "p5"]
    assert picks(model, "u4") == ["p3", "p2", "p1", "p4", "p5"]


def test_popular_missing_region_falls_back_to_global(data: Dataset) -> None:
    lines = [line("u1", "p1", 1), line("u2", "p2", 1), line("u3", "p2", 1)]
    data = make_dataset(lines, ["u1", "u2", "u3"], SKUS, regions={"u1": "north"})
    model = PopularRecommender(by="region").fit(data)
    assert picks(model, "u1", k=2) == ["p1", "p2"]
    assert picks(model, "u2", k=2) == ["p2", "p1"]  # no region: global


def test_popular_unknown_user_gets_global_window_ranking(data: Dataset) -> None:
    model = PopularRecommender(by="region").fit(data)
    assert picks(model, "stranger") == ["p2", "p1", "p3", "p4", "p5"]


@pytest.mark.parametrize(("region", "tier", "user"), [("north", None, "u1"), (None, 2, "u3")])
def test_popular_ranking_for_matches_recommend(
    data: Dataset, region: str | None, tier: int | None, user: str
) -> None:
    by = "region" if region is not None else "tier"
    model = PopularRecommender(by=by).fit(data)
    ranking = model.ranking_for(region=region, tier=tier, k=5)
    assert ranking[C.SKU_ID].tolist() == picks(model, user)
    assert ranking[C.RANK].tolist() == [1, 2, 3, 4, 5]
    assert (np.diff(ranking[C.SCORE]) <= 0).all()


def test_popular_ranking_for_unknown_region_and_global_are_global(data: Dataset) -> None:
    model = PopularRecommender().fit(data)
    glob = model.ranking_for(k=3)[C.SKU_ID].tolist()
    assert glob == ["p2", "p1", "p3"]
    assert model.ranking_for(region="atlantis", k=3)[C.SKU_ID].tolist() == glob


def test_popular_ranking_for_skips_unavailable(data: Dataset) -> None:
    data.sku_available[1] = False  # p2
    model = PopularRecommender().fit(data)
    assert "p2" not in model.ranking_for(k=5)[C.SKU_ID].tolist()
    assert len(model.ranking_for(k=5)) == 4


def test_popular_ranking_for_rejects_region_and_tier(data: Dataset) -> None:
    model = PopularRecommender().fit(data)
    with pytest.raises(ValueError, match="region or tier, not both"):
        model.ranking_for(region="north", tier=1)


def test_popular_tier_needs_a_tier_column() -> None:
    data = make_dataset([line("c1", "p1", 1)], ["c1"], SKUS, target="customer")
    with pytest.raises(ValueError, match="by='tier' needs column 'tier' in the customer table"):
        PopularRecommender(by="tier").fit(data)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_days": 0}, "window_days must be an integer >= 1, got 0"),
        ({"min_buyers": 0}, "min_buyers must be an integer >= 1, got 0"),
        ({"by": "city"}, "by must be one of .*got 'city'"),
    ],
)
def test_popular_bad_params_raise(data: Dataset, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PopularRecommender(**params).fit(data)


def _aggregated(data: Dataset, days: int = 28) -> Dataset:
    """`data` with its window handed over as `WindowStats` and no lines (as Spark builds it)."""
    import dataclasses

    import pandas as pd

    from recsys.data.dataset import SKU_IDX, WindowStats
    from recsys.models.popular import GROUP_COLUMNS, window_stats

    ev = data.events
    window = ev[ev[C.TS] >= data.cutoff - pd.Timedelta(days=days)]
    stats = {"global": window_stats(window).assign(group=None)}
    for kind, column in GROUP_COLUMNS.items():
        codes, names = pd.factorize(data.user_table[column], sort=True)
        frame = window_stats(window, codes.astype(np.int64))
        stats[kind] = frame.assign(group=np.asarray(names, dtype=object)[frame["group"]])
    assert set(stats["global"].columns) == {"group", SKU_IDX, "buyers", "units"}
    return dataclasses.replace(data, events=ev.iloc[:0], window_stats=WindowStats(days, stats))


@pytest.mark.parametrize("by", ["global", "region", "tier"])
def test_popular_from_aggregated_window_equals_from_lines(data: Dataset, by: str) -> None:
    lines = PopularRecommender(by=by).fit(data)
    stats = PopularRecommender(by=by).fit(_aggregated(data))
    np.testing.assert_array_equal(stats.global_scores_, lines.global_scores_)
    np.testing.assert_array_equal(stats.popularity_, lines.popularity_)
    for kind in ("region", "tier"):
        np.testing.assert_array_equal(stats.group_scores_[kind], lines.group_scores_[kind])
    users = ["u1", "u2", "u3", "u4", "stranger"]
    assert stats.recommend(users, k=5).equals(lines.recommend(users, k=5))


def test_popular_refuses_an_aggregated_window_of_another_length(data: Dataset) -> None:
    with pytest.raises(ValueError, match="last 28 days only .* fit with window_days=28"):
        PopularRecommender(window_days=7).fit(_aggregated(data))
