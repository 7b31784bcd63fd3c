"""The shared weight formula (features/weight_spec.py) equals the local engine's, bit for bit.

Pure numpy: no Spark needed. The Spark side of the same formula is checked in test_parity.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from features.weight_spec import (
    KNOWN_FIELDS,
    NUMPY_OPS,
    WeightRules,
    age_days,
    finish_pair,
    line_weight,
    share_weight,
)
from features.weights import (
    InteractionWeights,
    finish_pair_weights,
    line_weights,
    share_weights,
)
from recsys.columns import Columns
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY

C = Columns
CUTOFF = pd.Timestamp("2026-03-01", tz="UTC")
DAY_NS = 86_400 * 10**9

weights_st = st.builds(
    InteractionWeights,
    share_weight=st.floats(0, 3),
    purchase_weight=st.floats(0, 3),
    return_weight=st.floats(0, 3),
    fault_return_extra=st.floats(0, 3),
    half_life_days=st.none() | st.floats(0.5, 365),
    log_scale=st.booleans(),
    clip_negative=st.booleans(),
)


def _lines(qty: np.ndarray, age_ns: np.ndarray) -> pd.DataFrame:
    returned = qty // 2
    return pd.DataFrame(
        {
            C.QTY: qty,
            RETURNED_QTY: returned,
            FAULT_RETURNED_QTY: returned // 2,
            # some events after the cutoff too: the decay treats them as age 0
            C.TS: pd.DatetimeIndex((CUTOFF.value - age_ns).view("datetime64[ns]"), tz="UTC"),
        }
    )


@settings(max_examples=60, deadline=None)
@given(
    weights=weights_st,
    qty=arrays(np.int64, 12, elements=st.integers(1, 20)),
    age_ns=arrays(np.int64, 12, elements=st.integers(-5 * DAY_NS, 400 * DAY_NS)),
)
def test_weight_spec_line_and_share_weights_equal_the_local_engine(
    weights: InteractionWeights, qty: np.ndarray, age_ns: np.ndarray
) -> None:
    lines = _lines(qty, age_ns)
    rules = WeightRules.from_weights(weights)
    ts_ns = lines[C.TS].to_numpy(dtype="datetime64[ns]").view(np.int64)
    age = age_days(ts_ns, CUTOFF.value)
    columns = {c: lines[c].to_numpy(dtype=np.float64) for c in rules.line_columns}
    expected = line_weights(lines, weights, CUTOFF)
    np.testing.assert_array_equal(line_weight(columns, age, rules, NUMPY_OPS), expected)
    shared = np.broadcast_to(share_weight(age, rules, NUMPY_OPS), ts_ns.shape)
    np.testing.assert_array_equal(shared, share_weights(ts_ns, weights, CUTOFF))
    summed = expected - 3.0  # negative and positive pair sums
    np.testing.assert_array_equal(
        finish_pair(summed, rules, NUMPY_OPS), finish_pair_weights(summed, weights)
    )


def test_weight_spec_defaults_read_as_rules() -> None:
    rules = WeightRules.from_weights(None)
    assert rules.line_terms == ((C.QTY, 1.0), (RETURNED_QTY, -1.0), (FAULT_RETURNED_QTY, -1.0))
    assert (rules.share_value, rules.half_life_days) == (0.3, None)
    assert (rules.log_scale, rules.clip_negative) == (False, True)
    # a line of 3 units, 1 returned for a fault, 30 days old with a 30-day half-life: (3 - 1 - 1)/2
    decayed = WeightRules.from_weights({"half_life_days": 30.0})
    value = line_weight(
        {
            C.QTY: np.array([3.0]),
            RETURNED_QTY: np.array([1.0]),
            FAULT_RETURNED_QTY: np.array([1.0]),
        },
        np.array([30.0]),
        decayed,
        NUMPY_OPS,
    )
    np.testing.assert_allclose(value, [(3 - 1 - 1) / 2])


def test_weight_spec_knows_every_interaction_weight_field() -> None:
    assert set(InteractionWeights.model_fields) == KNOWN_FIELDS


def test_weight_spec_refuses_a_field_it_does_not_interpret() -> None:
    class WithBonus(InteractionWeights):
        bonus: float = 1.0

    with pytest.raises(NotImplementedError, match=r"\['bonus'\].*weight_spec"):
        WeightRules.from_weights(WithBonus())
