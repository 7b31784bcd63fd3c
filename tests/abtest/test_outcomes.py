"""Per-agent outcomes of the hand-built experiment, each number worked out from conftest.tiny_data.

A1 (variant A) is first served on 2025-03-10 10:00, so her window is [03-10 10:00, 03-17 10:00);
A2 (B) on 03-11 00:00, window [03-11, 03-18). The experiment starts 03-10 (the first exposure's
day), so the 28-day pre-period is [02-10, 03-10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recsys.abtest.daily import daily_cumulative
from recsys.abtest.outcomes import OutcomeSettings, build_outcomes
from recsys.exceptions import EmptyDataError
from tests.abtest.conftest import TINY_EXPERIMENT, ts

EXPECTED = {
    # A1: P2 2x10 + P3 30 + P4 50 + P5 40 (a customer of A2, still A1's sale); P6 is after
    # the window. R1 (1 of P2) counts; R2 (of P4) comes 36 days later and does not.
    "A1": {
        "n_exposures": 3,
        "exposed_skus": 3,  # S1, S2 (E1), S3 (E2); E3 is after the window
        "shared_skus": 2,  # H1 (S1), H3 (S3); H2 shares S3 before it was served
        "any_purchase": 1,
        "gmv": 2 * 10 + 30 + 50 + 40,
        "returned_value": 10,
        "net_gmv": 140 - 10,
        "buyers": 3,  # C1, C2, C9
        "repeat_buyers": 1,  # C1: orders O2 and O3
        "customers": 3,  # C1, C2, C4 (C3 joined after the window)
        "reached": 3,  # C1, C2 bought; C4 clicked
        "acted": 1,
        "rec_gmv": 20,  # P2 (S1 after it was served); P5 was bought by A2's customer
        "customer_spend": 20 + 30 + 50 + 25,  # C1 and C2, including C1's P7 through A2
        "shares_pre": 1,
        "any_purchase_pre": 1,
        "gmv_pre": 2 * 15 + 10,
        "returned_value_pre": 10,  # R4; R5 comes after the start
        "net_gmv_pre": 30,
        "buyers_pre": 2,
        "repeat_buyers_pre": 0,
        "customers_pre": 3,
        "reached_pre": 2,  # the click K4 is before the pre-period
        "acted_pre": 1,
    },
    "A2": {
        "n_exposures": 1,
        "exposed_skus": 2,
        "shared_skus": 0,
        "any_purchase": 1,
        "gmv": 3 * 40 + 25,
        "returned_value": 2 * 40,
        "net_gmv": 145 - 80,
        "buyers": 2,
        "repeat_buyers": 0,
        "customers": 1,
        "reached": 1,
        "acted": 1,  # sold S2 and S6 after they were served
        "rec_gmv": 120,  # P8 by her own customer C9; P7's C1 is A1's customer
        "customer_spend": 120 + 40,  # C9: P8, and P5 through A1
        "shares_pre": 0,
        "any_purchase_pre": 0,
        "gmv_pre": 0,
        "returned_value_pre": 0,
        "net_gmv_pre": 0,
        "buyers_pre": 0,
        "repeat_buyers_pre": 0,
        "customers_pre": 1,
        "reached_pre": 0,
        "acted_pre": 0,
    },
}


def test_outcomes_match_hand_computed_values(tiny) -> None:
    out = build_outcomes(tiny, TINY_EXPERIMENT)
    table = out.table.set_index("agent_id")
    assert list(table.index) == ["A1", "A2"]
    assert table.loc["A1", "variant"] == "A" and table.loc["A2", "variant"] == "B"
    assert table.loc["A1", "first_exposure"] == ts("2025-03-10 10:00")
    for agent, expected in EXPECTED.items():
        got = table.loc[agent, list(expected)].astype(float)
        assert_allclose(
            got.to_numpy(), np.array(list(expected.values()), dtype=float), err_msg=agent
        )
    assert out.start == ts("2025-03-10") and out.pre_start == ts("2025-02-10")
    assert out.observed_until == ts("2025-04-20")


def test_outcomes_integrity_counts_left_out_agents(tiny) -> None:
    out = build_outcomes(tiny, TINY_EXPERIMENT)
    assert out.integrity == {
        "agents_exposed": 4,
        "agents_in_several_variants": 1,  # A3
        "agents_in_unknown_variants": 1,  # A4 in "Z"
        "agents_not_in_their_assigned_variant": 0,
        "agents_with_open_window": 0,
        "agents_with_immature_returns": 0,
    }


def test_outcomes_flag_agents_served_against_their_assignment(tiny) -> None:
    swapped = TINY_EXPERIMENT.model_copy(update={"salt": "s-other"})
    expected = sum(swapped.assign(a).name != v for a, v in (("A1", "A"), ("A2", "B")))
    out = build_outcomes(tiny, swapped)
    assert out.integrity["agents_not_in_their_assigned_variant"] == expected


def test_outcomes_window_and_return_period_are_settings(tiny) -> None:
    # A 3-day window keeps P2 and P3 for A1 (P4 is on day 4.6); 5 return days drop R1.
    out = build_outcomes(tiny, TINY_EXPERIMENT, OutcomeSettings(window_days=3, return_days=5))
    a1 = out.table.set_index("agent_id").loc["A1"]
    assert a1["gmv"] == 2 * 10 + 30
    assert a1["returned_value"] == 0
    assert out.integrity["agents_with_immature_returns"] == 0


def test_outcomes_start_end_select_exposures(tiny) -> None:
    settings = OutcomeSettings(start=ts("2025-03-11 06:00"), end=ts("2025-03-15"))
    out = build_outcomes(tiny, TINY_EXPERIMENT, settings)
    table = out.table.set_index("agent_id")
    # A1's first exposure in the period is E2; A2's (03-11 00:00) is before it; A3 is left
    # with E6 alone, so one variant (B), though salt s0 assigns her to A.
    assert list(table.index) == ["A1", "A3"]
    assert table.loc["A1", "first_exposure"] == ts("2025-03-12 09:00")
    assert table.loc["A3", "variant"] == "B"
    assert TINY_EXPERIMENT.assign("A3").name == "A"
    assert out.integrity["agents_not_in_their_assigned_variant"] == 1
    assert out.pre_start == ts("2025-03-11 06:00") - pd.Timedelta(days=28)


def test_outcomes_without_exposures_raise(tiny) -> None:
    with pytest.raises(EmptyDataError, match="no exposures of experiment 'exp1'.* from 2026"):
        build_outcomes(tiny, TINY_EXPERIMENT, OutcomeSettings(start=ts("2026-01-01")))
    other = TINY_EXPERIMENT.model_copy(update={"name": "missing"})
    with pytest.raises(EmptyDataError, match="no exposures of experiment 'missing'"):
        build_outcomes(tiny, other)


def test_outcomes_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="window_days must be > 0, got 0"):
        OutcomeSettings(window_days=0)
    with pytest.raises(ValueError, match="end .* must be after start"):
        OutcomeSettings(start=ts("2025-03-02"), end=ts("2025-03-01"))


def test_daily_cumulative_by_variant(tiny) -> None:
    out = build_outcomes(tiny, TINY_EXPERIMENT)
    daily = daily_cumulative(out).set_index(["date", "variant"])
    day0_a = daily.loc[("2025-03-10", "A")]
    assert (day0_a["agents"], day0_a["gmv"], day0_a["refunds"]) == (1, 20.0, 0.0)
    assert np.isnan(daily.loc[("2025-03-10", "B"), "net_gmv_per_agent"])  # nobody exposed yet
    day3_b = daily.loc[("2025-03-13", "B")]  # P8 (120) on 03-12, R3 (80) on 03-13
    assert (day3_b["gmv"], day3_b["refunds"], day3_b["net_gmv_per_agent"]) == (120.0, 80.0, 40.0)
    last_a = daily.xs("A", level="variant").iloc[-1]
    assert (last_a["gmv"], last_a["refunds"]) == (140.0, 10.0)
    assert last_a["return_rate"] == pytest.approx(10 / 140)
