"""RepeatRecommender: recency-weighted frequency of the user's own purchases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from recsys.columns import Columns
from recsys.data.dataset import Dataset
from recsys.models.repeat import RepeatRecommender, repeat_scores
from tests.models.helpers import CUTOFF, line, make_dataset

C = Columns
SKUS = ["p1", "p2", "p3", "p4", "p5"]


@pytest.fixture()
def data() -> Dataset:
    lines = [
        line("u1", "p1", 30, qty=2),
        line("u1", "p1", 60, qty=4),
        line("u1", "p2", 30, qty=3),
        line("u1", "p3", 30, qty=2, ret=1),  # one unit returned (changed mind)
        line("u1", "p4", 30, qty=2, ret=1, fault=1),  # one unit returned for quality
        line("u2", "p5", 1, qty=1),
        line("u2", "p4", 1, qty=1),
    ]
    return make_dataset(lines, ["u1", "u2"], SKUS)


def test_repeat_scores_are_decayed_quantities(data: Dataset) -> None:
    reco = RepeatRecommender(half_life_days=30).fit(data).recommend(["u1"], k=3)
    # p1: 2·½ + 4·¼; p2: 3·½; p3: (2 − 1)·½
    assert reco[C.SKU_ID].tolist() == ["p1", "p2", "p3"]
    assert_allclose(reco[C.SCORE], [2 * 0.5 + 4 * 0.25, 3 * 0.5, (2 - 1) * 0.5], rtol=1e-6)


def test_repeat_fault_return_cancels_the_pair(data: Dataset) -> None:
    model = RepeatRecommender(half_life_days=30).fit(data)
    # p4: (2 − 1 − 1)·½ = 0, so it is not a personal pick; it comes from popularity below p3
    reco = model.recommend(["u1"], k=5)
    assert reco[C.SKU_ID].tolist()[3:] == ["p4", "p5"]
    assert (reco[C.SCORE].to_numpy()[3:] < 0.5).all()


def test_repeat_without_fault_penalty_keeps_the_pair(data: Dataset) -> None:
    model = RepeatRecommender(half_life_days=30, fault_return_extra=0.0).fit(data)
    reco = model.recommend(["u1"], k=4)
    assert reco[C.SKU_ID].tolist() == ["p1", "p2", "p3", "p4"]
    assert_allclose(reco[C.SCORE].iloc[3], (2 - 1) * 0.5, rtol=1e-6)


def test_repeat_without_decay_counts_units(data: Dataset) -> None:
    reco = RepeatRecommender(half_life_days=None).fit(data).recommend(["u1"], k=3)
    assert_allclose(reco[C.SCORE], [6.0, 3.0, 1.0])


def test_repeat_use_qty_false_counts_lines(data: Dataset) -> None:
    reco = RepeatRecommender(half_life_days=30, use_qty=False).fit(data).recommend(["u1"], k=3)
    # p1: ½ + ¼; p2: ½; p3: (1 − ½)·½
    assert reco[C.SKU_ID].tolist() == ["p1", "p2", "p3"]
    assert_allclose(reco[C.SCORE], [0.75, 0.5, 0.25], rtol=1e-6)


def test_repeat_recent_beats_frequent_with_short_half_life() -> None:
    lines = [line("u1", "p1", 1), *(line("u1", "p2", 90) for _ in range(4))]
    data = make_dataset(lines, ["u1"], SKUS)
    assert RepeatRecommender(half_life_days=7).fit(data).recommend(["u1"], k=1)[
        C.SKU_ID
    ].tolist() == ["p1"]
    assert RepeatRecommender(half_life_days=365).fit(data).recommend(["u1"], k=1)[
        C.SKU_ID
    ].tolist() == ["p2"]


def test_repeat_never_bought_skus_come_from_popularity(data: Dataset) -> None:
    reco = RepeatRecommender().fit(data).recommend(["u2"], k=4)
    assert set(reco[C.SKU_ID][:2]) == {"p4", "p5"}
    assert len(reco) == 4


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 3),
            st.floats(0.0, 200.0),
            st.integers(1, 5),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_repeat_scores_match_a_line_by_line_sum(rows: list) -> None:
    events = pd.DataFrame(
        {
            "user_idx": [r[0] for r in rows],
            "sku_idx": [r[1] for r in rows],
            C.TS: [CUTOFF - pd.Timedelta(days=r[2]) for r in rows],
            C.QTY: [r[3] for r in rows],
            "returned_qty": [min(r[4], r[3]) for r in rows],
            "fault_returned_qty": [0] * len(rows),
        }
    )
    got = repeat_scores(events, (3, 4), CUTOFF, half_life_days=20.0).toarray()
    want = np.zeros((3, 4))
    for u, s, age, qty, ret in rows:
        want[u, s] += (qty - min(ret, qty)) * 0.5 ** (age / 20.0)
    assert_allclose(got, np.where(want > 0, want, 0.0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"half_life_days": 0}, "half_life_days must be > 0 or None, got 0"),
        ({"return_weight": -1.0}, "return_weight must be >= 0, got -1.0"),
        ({"fault_return_extra": -0.5}, "fault_return_extra must be >= 0, got -0.5"),
    ],
)
def test_repeat_bad_params_raise(data: Dataset, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RepeatRecommender(**params).fit(data)
