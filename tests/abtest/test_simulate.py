"""The fast experiment generator: deterministic, contract-valid, true to its truth, one answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recsys.abtest.outcomes import OutcomeSettings, build_outcomes
from recsys.abtest.replicates import fast_outcomes, run_fast, run_full
from recsys.abtest.sim_config import ABSimConfig, ArmEffect, scenario
from recsys.abtest.sim_truth import true_effects
from recsys.abtest.simulate import simulate_arrays, simulate_experiment
from recsys.contract.validate import validate_dir

SALES = ["gmv", "returned_value", "net_gmv", "gmv_pre", "returned_value_pre", "net_gmv_pre"]


def test_simulation_is_deterministic_per_seed() -> None:
    config = scenario("aa", "tiny")
    a, b = simulate_experiment(config, 3), simulate_experiment(config, 3)
    pd.testing.assert_frame_equal(a.data.purchases, b.data.purchases)
    pd.testing.assert_frame_equal(a.data.exposures, b.data.exposures)
    other = simulate_experiment(config, 4)
    assert not a.data.purchases["ts"].equals(other.data.purchases["ts"])


def test_written_directory_passes_the_contract(sim_effect_dir: Path) -> None:
    result = validate_dir(sim_effect_dir)
    assert result.exit_code == 0, result.summary()
    assert (sim_effect_dir / "experiments.yaml").is_file()
    assert (sim_effect_dir / "truth.json").is_file()
    parts = sorted(p.parent.name for p in (sim_effect_dir / "exposures").rglob("*.parquet"))
    assert parts[0] == "date=2025-03-03" and len(parts) == 14


def test_feeds_hold_distinct_skus(sim_effect_tiny) -> None:
    feeds = sim_effect_tiny.data.exposures["sku_ids"]
    assert all(len(set(f)) == len(f) == 10 for f in feeds)


def test_truth_matches_realised_means() -> None:
    # Over 2,000 agents, realised mean GMV and returned value per arm sit within 4 standard
    # errors of the truth's expectation for the very same agents.
    config = scenario("effect", "small")
    world, events = simulate_arrays(config, 11)
    sim = simulate_experiment(config, 11)
    table = fast_outcomes(config, world, events).merge(sim.truth, on=["agent_id", "variant"])
    for variant in config.variants:
        mine = table[table["variant"] == variant]
        for col in ("gmv", "returned_value"):
            se = mine[col].std() / np.sqrt(len(mine))
            assert abs(mine[col].mean() - mine[f"{col}_{variant}"].mean()) < 4 * se, (variant, col)


def test_true_effects_follow_the_arm_effects() -> None:
    config = scenario("effect", "tiny", effects=(ArmEffect(), ArmEffect(purchase_lift=1.25)))
    truth = simulate_experiment(config, 0).truth
    effects = true_effects(truth, "A", "B")
    assert effects["gmv_per_agent"]["rel_effect"] == pytest.approx(0.25)
    assert effects["net_gmv_per_agent"]["rel_effect"] == pytest.approx(0.25)
    assert effects["return_rate"]["effect"] == pytest.approx(0.0, abs=1e-15)
    halved = scenario("effect", "tiny", effects=(ArmEffect(), ArmEffect(return_mult=0.5)))
    rate = true_effects(simulate_experiment(halved, 0).truth, "A", "B")["return_rate"]
    assert rate["rel_effect"] == pytest.approx(-0.5, abs=0.01)  # min(1, rho x 0.5) rarely caps


def test_fast_path_equals_the_report_path() -> None:
    config = scenario("effect", "tiny")
    world, events = simulate_arrays(config, 5, sales_only=True)  # the fast path's draws
    sim = simulate_experiment(config, 5)
    settings = OutcomeSettings(start=pd.Timestamp(config.start, tz="UTC"))
    full = build_outcomes(sim.data, sim.experiment, settings).table.set_index("agent_id")
    fast = fast_outcomes(config, world, events).set_index("agent_id")
    assert list(fast.index) == list(full.index)
    assert (fast["variant"] == full["variant"]).all()
    assert_allclose(fast[SALES].to_numpy(), full[SALES].to_numpy(), rtol=1e-12, atol=1e-9)
    rows = pd.concat([run_fast(config, [5]), run_full(config, [5])], ignore_index=True)
    numbers = rows.drop(columns="seed").astype(float)
    assert_allclose(numbers.iloc[0].to_numpy(), numbers.iloc[1].to_numpy(), rtol=1e-9)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="at least two arms"):
        ABSimConfig(variants=("A",), weights=(1.0,))
    with pytest.raises(ValueError, match="one value per variant \\(2\\), got \\(1.0,\\)"):
        ABSimConfig(weights=(1.0,))
    with pytest.raises(ValueError, match="effects has 3 arms"):
        ABSimConfig(effects=(ArmEffect(),) * 3)
    with pytest.raises(ValueError, match="scenario must be one of aa, effect, broken"):
        scenario("bb")
    with pytest.raises(ValueError, match="scale must be one of tiny, small, medium"):
        scenario("aa", "huge")
