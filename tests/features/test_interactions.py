"""Interaction matrices: weights worked out by hand on the tiny log, a slow reference, stability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from pydantic import ValidationError

from features.interactions import build_events, build_interactions, sku_id_map, user_id_map
from features.weights import InteractionWeights, as_weights
from recsys.columns import FAULT_RETURN_REASONS, Columns, Tables
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY, SKU_IDX, USER_IDX
from tests.features.tiny import CUTOFF, random_tables, shuffled, tiny_tables

C = Columns


def matrix(target: str, tables=None, cutoff=CUTOFF, **weights: object) -> np.ndarray:
    tables = tables if tables is not None else tiny_tables()
    users, skus = user_id_map(tables, target), sku_id_map(tables)
    m = build_interactions(tables, target, users, skus, weights, cutoff)
    assert m.dtype == np.float32
    return m.toarray()


def test_interactions_agent_default_weights_by_hand() -> None:
    # rows a1, a2; columns s1..s4. Shares weigh 0.3; a line weighs qty − returned − fault extra.
    expected = np.array(
        [
            # sh1 + p1 (3 bought, 1 returned) + p2 + p5; sh2 + p3 (2 bought, 1 quality return)
            [0.3 + (3 - 1) + 1 + 1, 0.3 + (2 - 1 - 1), 0, 0],
            # sh3 + p4; p6 (1 bought, 1 not_as_described) nets −1 and is clipped
            [0.3 + 2, 0, 0, 0],
        ]
    )
    assert_allclose(matrix("agent"), expected, rtol=1e-6)


def test_interactions_agent_decay_half_life_by_hand() -> None:
    # Half-life 10 days from the cutoff 03-01: an event d days before weighs 2 ** (−d / 10).
    a1_s1 = 0.3 * 2**-2.9 + 2 * 2**-2.8 + 1 * 2**-1.0 + 1 * 2**-0.5  # 29, 28, 10, 5 days
    a1_s2 = 0.3 * 2**-1.9 + 0 * 2**-1.8  # sh2 19 days; p3 nets to zero
    a2_s1 = 0.3 * 2**-0.9 + 2 * 2**-0.8  # sh3 9 days, p4 8 days
    expected = np.array([[a1_s1, a1_s2, 0, 0], [a2_s1, 0, 0, 0]])
    assert_allclose(matrix("agent", half_life_days=10), expected, rtol=1e-6)


def test_interactions_customer_repurchase_counted() -> None:
    # c1 bought s1 twice (p1: 3 with 1 returned, p5: 1; p5's return comes after the cutoff).
    expected = np.array(
        [
            [(3 - 1) + 1, 0, 0, 0],  # c1: s2 (p3) nets 2 − 1 − 1 = 0
            [1, 0, 0, 0],  # c2
            [2, 0, 0, 0],  # c3: s2 (p6) nets −1, clipped
            [0, 0, 0, 0],  # c4 joined after the cutoff
        ]
    )
    assert_allclose(matrix("customer"), expected, rtol=1e-6)


def test_interactions_keep_negative_when_not_clipped() -> None:
    m = matrix("customer", clip_negative=False)
    assert m[2, 1] == pytest.approx(1 - 1 - 1)
    assert matrix("agent", clip_negative=False)[1, 1] == pytest.approx(-1.0)


def test_interactions_custom_weights_by_hand() -> None:
    got = matrix(
        "agent",
        share_weight=0.5,
        purchase_weight=2.0,
        return_weight=1.5,
        fault_return_extra=3.0,
        clip_negative=False,
    )
    expected = np.array(
        [
            [0.5 + (2 * 3 - 1.5 * 1) + 2 * 1 + 2 * 1, 0.5 + (2 * 2 - 1.5 * 1 - 3.0 * 1), 0, 0],
            [0.5 + 2 * 2, 2 * 1 - 1.5 * 1 - 3.0 * 1, 0, 0],
        ]
    )
    assert_allclose(got, expected, rtol=1e-6)


def test_interactions_log_scale_after_summing() -> None:
    got = matrix("agent", log_scale=True)
    assert got[0, 0] == pytest.approx(math.log1p(4.3), rel=1e-6)
    assert got[1, 0] == pytest.approx(math.log1p(2.3), rel=1e-6)


def test_interactions_zero_pairs_not_stored() -> None:
    tables = tiny_tables()
    users, skus = user_id_map(tables, "customer"), sku_id_map(tables)
    m = build_interactions(tables, "customer", users, skus, None, CUTOFF)
    assert m.nnz == 3  # c1·s1, c2·s1, c3·s1; c1·s2 nets 0 and c3·s2 is negative


def test_interactions_event_at_cutoff_excluded() -> None:
    # p5 (c1, s1, qty 1) is exactly at 02-25: with that cutoff it is in the future.
    cutoff = pd.Timestamp("2024-02-25", tz="UTC")
    got = matrix("customer", cutoff=cutoff)
    assert got[0, 0] == pytest.approx(3 - 1)


def test_interactions_new_sku_in_id_map_without_interactions() -> None:
    tables = tiny_tables()
    skus = sku_id_map(tables)
    assert "s3" in skus  # launched 03-10, after the cutoff
    s3 = skus.to_index(["s3"])[0]
    assert not matrix("agent")[:, s3].any()  # its share sh4 is after the cutoff too


def test_interactions_stable_under_row_order() -> None:
    tables = tiny_tables()
    for seed in range(3):
        other = shuffled(tables, seed)
        for target in ("agent", "customer"):
            users, skus = user_id_map(tables, target), sku_id_map(tables)
            assert users == user_id_map(other, target)
            assert skus == sku_id_map(other)
            a = build_interactions(tables, target, users, skus, {"half_life_days": 7}, CUTOFF)
            b = build_interactions(other, target, users, skus, {"half_life_days": 7}, CUTOFF)
            assert np.array_equal(a.indptr, b.indptr)
            assert np.array_equal(a.indices, b.indices)
            assert np.array_equal(a.data, b.data)
            pd.testing.assert_frame_equal(
                build_events(tables, target, CUTOFF), build_events(other, target, CUTOFF)
            )


def test_build_events_columns_and_returned_units() -> None:
    events = build_events(tiny_tables(), "customer", CUTOFF)
    assert list(events.columns) == [
        C.CUSTOMER_ID, C.SKU_ID, C.TS, C.QTY, C.UNIT_PRICE,
        RETURNED_QTY, FAULT_RETURNED_QTY, USER_IDX, SKU_IDX,
    ]  # fmt: skip
    assert events[C.TS].is_monotonic_increasing
    by_day = events.set_index(events[C.TS].dt.strftime("%m-%d"))
    assert by_day.loc["02-02", RETURNED_QTY] == 1  # r1, changed_mind
    assert by_day.loc["02-02", FAULT_RETURNED_QTY] == 0
    assert by_day.loc["02-12", FAULT_RETURNED_QTY] == 1  # r2, quality
    assert by_day.loc["02-25", RETURNED_QTY] == 0  # r4 is after the cutoff
    assert "03-03" not in by_day.index  # p7 is after the cutoff
    assert (events[USER_IDX].to_numpy() == [0, 0, 1, 2, 0, 2]).all()


def test_as_weights_accepts_dict_and_rejects_bad_values() -> None:
    assert as_weights({"half_life_days": 30}).half_life_days == 30
    assert as_weights(None) == InteractionWeights()
    with pytest.raises(ValidationError, match="share_weight"):
        InteractionWeights(share_weight=-1)
    with pytest.raises(ValidationError, match="half_life_days"):
        as_weights({"half_life_days": 0})
    with pytest.raises(ValidationError, match="purchase_wieght"):
        as_weights({"purchase_wieght": 1.0})
    with pytest.raises(TypeError, match="weights must be"):
        as_weights(1.0)  # type: ignore[arg-type]


def test_build_interactions_unknown_target() -> None:
    tables = tiny_tables()
    users, skus = user_id_map(tables, "agent"), sku_id_map(tables)
    with pytest.raises(ValueError, match="target must be one of"):
        build_interactions(tables, "shop", users, skus)


def reference_matrix(
    tables: dict[str, pd.DataFrame], target: str, w: InteractionWeights, cutoff: pd.Timestamp
) -> np.ndarray:
    """Event-by-event Python loop, straight from the formula in docs/features.md."""
    users, skus = user_id_map(tables, target), sku_id_map(tables)
    col = C.AGENT_ID if target == "agent" else C.CUSTOMER_ID
    out = np.zeros((len(users), len(skus)))

    def decay(ts: pd.Timestamp) -> float:
        if w.half_life_days is None:
            return 1.0
        return 0.5 ** (((cutoff - ts) / pd.Timedelta(days=1)) / w.half_life_days)

    returns = tables[Tables.RETURNS]
    for p in tables[Tables.PURCHASES].itertuples(index=False):
        if p.ts >= cutoff:
            continue
        rets = returns[(returns[C.PURCHASE_ID] == p.purchase_id) & (returns[C.TS] < cutoff)]
        returned = min(int(rets[C.QTY].sum()), p.qty)
        fault = min(int(rets.loc[rets[C.REASON].isin(FAULT_RETURN_REASONS), C.QTY].sum()), returned)
        net = w.purchase_weight * p.qty - w.return_weight * returned
        net -= w.fault_return_extra * fault
        u, s = users.to_index([getattr(p, col)])[0], skus.to_index([p.sku_id])[0]
        out[u, s] += net * decay(p.ts)
    if target == "agent":
        for sh in tables[Tables.SHARES].itertuples(index=False):
            if sh.ts < cutoff:
                u, s = users.to_index([sh.agent_id])[0], skus.to_index([sh.sku_id])[0]
                out[u, s] += w.share_weight * decay(sh.ts)
    if w.log_scale:
        out = np.sign(out) * np.log1p(np.abs(out))
    return np.maximum(out, 0) if w.clip_negative else out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    target=st.sampled_from(["agent", "customer"]),
    day=st.integers(2, 31),
    half_life=st.one_of(st.none(), st.floats(0.5, 60)),
    log_scale=st.booleans(),
    clip=st.booleans(),
)
def test_interactions_match_slow_reference(
    seed: int, target: str, day: int, half_life: float | None, log_scale: bool, clip: bool
) -> None:
    tables = random_tables(seed)
    cutoff = pd.Timestamp(f"2024-01-{day:02d}", tz="UTC")
    w = InteractionWeights(half_life_days=half_life, log_scale=log_scale, clip_negative=clip)
    got = matrix(target, tables, cutoff, **w.model_dump())
    assert_allclose(got, reference_matrix(tables, target, w, cutoff), rtol=1e-5, atol=1e-6)


def test_lookup_positions_unknown_and_null() -> None:
    from features.logs import lookup

    values = np.array(["b", "a", "c"], dtype=object)
    keys = np.array(["a", "z", None, "c", "a"], dtype=object)
    assert lookup(keys, values).tolist() == [1, -1, -1, 2, 1]
    # keys that are not all strings go through pandas, with the same answer
    assert lookup(np.array([2, 7], dtype=object), np.array([7, 2], dtype=object)).tolist() == [1, 0]
