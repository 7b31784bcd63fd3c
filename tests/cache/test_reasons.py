"""Reason codes: ids, code names and plain words."""

from __future__ import annotations

import pytest

from recsys.reasons import (
    REASONS,
    Reason,
    reason_code,
    reason_id,
    reason_table,
    register_reason,
    render_reason,
)


def test_render_reason_fills_the_parameter() -> None:
    assert render_reason("customers_rebuy", 3) == "3 of your customers bought this before"
    assert render_reason("customers_rebuy", 0) == "Your customers bought this before"
    assert render_reason("bought_before", 1) == "You bought this once before"
    assert render_reason("bought_before", 4) == "You bought this 4 times before"
    assert render_reason("popular_with_tier", 3) == "Popular with tier 3 agents"
    assert render_reason(reason_id("picked_for_you")) == "Picked for you"


def test_reason_ids_and_codes_round_trip() -> None:
    expected = {
        "picked_for_you", "customers_rebuy", "bought_before", "similar_agents_sell",
        "low_return_rate", "fits_price_band", "new_in_series", "trending_region",
        "popular_in_region", "popular_with_tier", "popular_overall",
    }  # fmt: skip
    assert expected <= {r.code for r in REASONS.values()}
    for rid, reason in REASONS.items():
        assert reason_code(rid) == reason.code
        assert reason_id(reason.code) == rid
        assert 1 <= rid <= 255
    assert [r["id"] for r in reason_table()] == sorted(REASONS)


def test_unknown_reasons_raise_key_error() -> None:
    with pytest.raises(KeyError, match="unknown reason code 'nope'"):
        reason_id("nope")
    with pytest.raises(KeyError, match="unknown reason id 200"):
        reason_code(200)
    with pytest.raises(KeyError, match="unknown reason id 0"):
        render_reason(0)


def test_register_reason_refuses_reuse_and_bad_templates() -> None:
    with pytest.raises(ValueError, match="reason id 1 is taken by 'picked_for_you'"):
        register_reason(Reason(1, "other", "Other"))
    with pytest.raises(ValueError, match="reason code 'picked_for_you' is already registered"):
        register_reason(Reason(254, "picked_for_you", "Again"))
    with pytest.raises(ValueError, match="must be in 1..255"):
        register_reason(Reason(0, "zero", "Zero"))
    with pytest.raises(ValueError, match=r"does not use \{n\}"):
        register_reason(Reason(253, "broken", "No number here", param="n"))
