"""Configuration: presets, overrides, validation and JSON round-trip."""

from __future__ import annotations

import json

import pytest

from recsys.simulation.categories import DEFAULT_CATEGORIES, CategorySpec
from recsys.simulation.config import SCALES, SimConfig


def test_preset_sizes_grow_with_scale() -> None:
    configs = [SimConfig.preset(s) for s in SCALES]
    agents = [c.n_agents for c in configs]
    days = [c.n_days for c in configs]
    assert agents == sorted(agents) and len(set(agents)) == 4
    assert days == sorted(days)


def test_preset_applies_overrides() -> None:
    config = SimConfig.preset("tiny", n_days=30, homophily=0.5)
    assert (config.n_days, config.homophily) == (30, 0.5)
    assert config.n_skus == SimConfig.preset("tiny").n_skus


def test_preset_rejects_unknown_scale_and_field() -> None:
    with pytest.raises(ValueError, match="scale must be one of .* got 'huge'"):
        SimConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown SimConfig field"):
        SimConfig.preset("tiny", n_dayz=3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_days", 0, "n_days must be >= 1, got 0"),
        ("homophily", 1.5, r"homophily must be in \[0, 1\], got 1.5"),
        ("tier_shares", (0.5, 0.5), "tier_shares must be 5 shares"),
        ("customers_per_agent_median", 0.5, "customers_per_agent_median must be >= 1"),
    ],
)
def test_config_rejects_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimConfig.preset("tiny", **{field: value})


def test_config_json_round_trip() -> None:
    config = SimConfig.preset("small", incident_return_rate=(0.4, 0.6))
    again = SimConfig.from_dict(json.loads(config.to_json()))
    assert again == config


def test_category_table_has_realistic_traits() -> None:
    by_name = {c.name: c for c in DEFAULT_CATEGORIES}
    assert 10 <= len(by_name) <= 12
    assert abs(sum(c.weight for c in DEFAULT_CATEGORIES) - 1.0) < 1e-9
    # apparel is returned most, mostly for fit; fresh food rarely, mostly damaged; cosmetics between
    assert by_name["apparel"].base_return_rate > by_name["cosmetics"].base_return_rate
    assert by_name["cosmetics"].base_return_rate > by_name["fresh_food"].base_return_rate
    assert by_name["apparel"].fit_share > 0.5 and by_name["fresh_food"].damaged_share > 0.5
    assert by_name["fresh_food"].cycle_days == 7 and by_name["personal_care"].cycle_days == 40
    assert not by_name["apparel"].consumable


def test_category_spec_rejects_band_not_bracketing_rate() -> None:
    spec = DEFAULT_CATEGORIES[0].__dict__ | {"return_band": (0.2, 0.3)}
    with pytest.raises(ValueError, match="return_band of 'fresh_food' must bracket"):
        CategorySpec(**spec)
