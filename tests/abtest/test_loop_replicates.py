"""Closed-loop replicates in process: assignment, feeds, streams, and the counterfactual truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.ab import assign_many
from recsys.abtest.loop import LoopSettings
from recsys.abtest.loop_replicates import (
    ArmPicks,
    ClosedLoopProof,
    model_picks,
    play,
    summarize,
)
from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import write_simulation

# 60 agents, 40 days of history; 3 experiment days and 10 more for windows and returns.
WORLD = {"n_agents": 60, "n_days": 40, "n_skus": 300, "max_customers_per_agent": 60}
SETTINGS = LoopSettings(days=3, tail_days=10, seed=5)
K = 10


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated history, as `recsys simulate` writes it."""
    out = tmp_path_factory.mktemp("loop-history")
    write_simulation(SimConfig.preset("tiny", **WORLD), 4, out, progress=False)
    return out


def _picks(n_agents: int, n_skus: int, seed: int) -> np.ndarray:
    """Each agent's K distinct random SKUs (a stand-in model whose picks differ by seed)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n_skus, K, replace=False) for _ in range(n_agents)])


@pytest.fixture(scope="module")
def proof(history: Path) -> ClosedLoopProof:
    """A proof whose arms serve different fixed picks."""
    made = ClosedLoopProof(history, ArmPicks({}), SETTINGS, window_days=3.0, return_days=7.0)
    n_agents, n_skus = len(made.base.world.agents), len(made.base.world.skus)
    made.picks = ArmPicks({"A": _picks(n_agents, n_skus, 1), "B": _picks(n_agents, n_skus, 2)})
    return made


def test_exposures_follow_the_experiment_and_serve_the_arm_picks(proof: ClosedLoopProof) -> None:
    experiment = proof.experiment(3)
    played = play(proof.base, proof.picks, experiment, SETTINGS, 3)
    exp = played.exposures
    assert len(exp) > 0
    assert set(exp["variant"]) == {"A", "B"}
    assert (exp["variant"].to_numpy() == assign_many(experiment, exp["agent_id"].tolist())).all()
    ids = pd.Index(proof.base.world.agents.ids)
    skus = np.asarray(proof.base.world.skus.ids)
    for row in exp.itertuples():
        served = proof.picks.picks[row.variant][ids.get_loc(row.agent_id)]
        assert row.sku_ids == skus[served].tolist()
    # feeds open only on the experiment's days, in the first half hour of each
    first = pd.Timestamp(proof.base.day_start(proof.base.next_day), unit="s", tz="UTC")
    assert exp["ts"].min() >= first
    assert exp["ts"].max() < first + pd.Timedelta(days=SETTINGS.days)
    assert (exp["ts"].dt.hour == 0).all()
    # the base world is left as it was: a second play starts from the same state
    again = play(proof.base, proof.picks, experiment, SETTINGS, 3)
    pd.testing.assert_frame_equal(played.purchases, again.purchases)


def test_replicates_have_their_own_streams(proof: ClosedLoopProof) -> None:
    experiment = proof.experiment(1)
    one = play(proof.base, proof.picks, experiment, SETTINGS, 1, only="A")
    two = play(proof.base, proof.picks, experiment, SETTINGS, 2, only="A")
    assert len(one.purchases) > 0 and len(two.purchases) > 0
    assert not one.exposures["agent_id"].equals(two.exposures["agent_id"])
    # new ids continue the history's
    assert one.purchases["purchase_id"].min() > proof.history.purchases["purchase_id"].max()


def test_counterfactual_runs_share_the_exposed_agents(proof: ClosedLoopProof) -> None:
    on_a = play(proof.base, proof.picks, proof.experiment(4), SETTINGS, 4, only="A")
    on_b = play(proof.base, proof.picks, proof.experiment(4), SETTINGS, 4, only="B")
    assert set(on_a.exposures["variant"]) == {"A"} and set(on_b.exposures["variant"]) == {"B"}
    cols = ["agent_id", "ts"]
    pd.testing.assert_frame_equal(on_a.exposures[cols], on_b.exposures[cols])
    # different picks, different sales
    assert not on_a.purchases["sku_id"].equals(on_b.purchases["sku_id"])


def test_identical_arms_have_a_true_effect_of_exactly_zero(history: Path) -> None:
    same = ClosedLoopProof(history, ArmPicks({}), SETTINGS, window_days=3.0, return_days=7.0)
    picks = _picks(len(same.base.world.agents), len(same.base.world.skus), 1)
    same.picks = ArmPicks({"A": picks, "B": picks.copy()})
    row, agents = same.experiment_row(1)
    truth = same.truth_row(1, agents)
    assert truth["net_gmv_per_agent.effect"] == 0.0
    assert truth["return_rate.effect"] == 0.0
    assert truth["net_gmv_per_agent.control"] > 0
    assert row["agents_A"] + row["agents_B"] == len(agents)


def test_truth_is_measured_on_the_experiment_agents(proof: ClosedLoopProof) -> None:
    row, agents = proof.experiment_row(2)
    truth = proof.truth(2, agents)
    assert set(truth["agent_id"]) <= set(agents)
    assert len(truth) >= 0.9 * len(agents)
    assert {"net_gmv_A", "net_gmv_B", "gmv_A", "returned_value_B"} <= set(truth.columns)
    assert (truth["net_gmv_A"] == truth["gmv_A"] - truth["returned_value_A"]).all()
    assert 0.0 <= row["srm_pvalue"] <= 1.0
    lo, hi = row["net_gmv_per_agent.ci_lower"], row["net_gmv_per_agent.ci_upper"]
    assert lo <= row["net_gmv_per_agent.effect"] <= hi


def test_model_picks_are_the_models_top_k(history: Path, proof: ClosedLoopProof) -> None:
    from features.dataset import build_dataset
    from recsys.contract.loader import load_tables
    from recsys.models import make_model

    model = make_model("popular").fit(build_dataset(load_tables(history), "agent"))
    world = proof.base.world
    agents = np.asarray(world.agents.ids[:7], dtype=object)
    skus = np.asarray(world.skus.ids, dtype=object)
    got = model_picks(model, skus, agents, 5)
    assert got.shape == (7, 5)
    reco = model.recommend(agents, k=5)
    first = reco[reco["agent_id"] == agents[0]].sort_values("rank")["sku_id"].tolist()
    assert skus[got[0]].tolist() == first
    with pytest.raises(ValueError, match="k must be >= 1"):
        model_picks(model, skus, agents, 0)


def test_summarize_counts_coverage_and_detection_against_the_mean_truth() -> None:
    experiments = pd.DataFrame(
        {
            "net_gmv_per_agent.effect": [10.0, 2.0, -1.0],
            "net_gmv_per_agent.ci_lower": [5.0, -1.0, -3.0],
            "net_gmv_per_agent.ci_upper": [15.0, 5.0, 1.0],
            "net_gmv_per_agent.pvalue": [0.001, 0.2, 0.5],
            "net_gmv_per_agent.variance_reduction": [0.5, 0.5, 0.5],
            "return_rate.effect": [-0.02, -0.01, 0.01],
            "return_rate.ci_lower": [-0.03, -0.015, 0.005],
            "return_rate.ci_upper": [-0.01, -0.005, 0.015],
            "return_rate.pvalue": [0.01, 0.04, 0.01],
            "return_rate.variance_reduction": [0.0, 0.0, 0.0],
        }
    )
    truths = pd.DataFrame(
        {
            "net_gmv_per_agent.effect": [5.0, 7.0],  # mean 6: covered by the first only
            "net_gmv_per_agent.rel_effect": [0.1, 0.1],
            "net_gmv_per_agent.control": [50.0, 70.0],
            "return_rate.effect": [-0.01, -0.01],
            "return_rate.rel_effect": [-0.2, -0.2],
            "return_rate.control": [0.05, 0.05],
        }
    )
    got = summarize(experiments, truths).set_index("metric")
    assert got.loc["net_gmv_per_agent", "true_effect"] == 6.0
    assert got.loc["net_gmv_per_agent", "true_effect_se"] == pytest.approx(1.0)
    assert got.loc["net_gmv_per_agent", "covered"] == 1
    assert got.loc["net_gmv_per_agent", "detected"] == 1
    assert got.loc["return_rate", "covered"] == 2  # -0.01 sits on the first interval's edge
    assert got.loc["return_rate", "detected"] == 2  # the third is significant the wrong way
    assert got.loc["return_rate", "mean_ci_width"] == pytest.approx(0.0133333, rel=1e-4)
