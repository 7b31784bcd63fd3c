"""RankedRecommender end to end on the simulated tiny log: contract, rules, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from recsys.columns import Columns
from recsys.models import make_model
from recsys.ranking.state import NS_PER_DAY
from tests.ranking.conftest import FAST, Fitted

C = Columns
K = 20


@pytest.fixture(scope="module")
def reco(tiny_ranked: Fitted) -> pd.DataFrame:
    users = tiny_ranked.split.truth("agent")[C.AGENT_ID].unique()
    return tiny_ranked.model.recommend(users, k=K)


def test_ranked_lists_are_full_ranked_and_ordered(reco: pd.DataFrame) -> None:
    assert list(reco.columns) == [C.AGENT_ID, C.SKU_ID, C.SCORE, C.RANK]
    assert (reco.groupby(C.AGENT_ID).size() == K).all()
    assert not reco.duplicated([C.AGENT_ID, C.SKU_ID]).any()
    for _, group in reco.groupby(C.AGENT_ID):
        assert group[C.RANK].tolist() == list(range(1, K + 1))
        assert (np.diff(group[C.SCORE].to_numpy()) <= 0).all()


def test_ranked_picks_are_sellable_where_she_sells(tiny_ranked: Fitted, reco: pd.DataFrame) -> None:
    skus = tiny_ranked.tables["skus"].set_index(C.SKU_ID)
    agents = tiny_ranked.tables["agents"].set_index(C.AGENT_ID)
    picked = skus.loc[reco[C.SKU_ID]]
    assert (picked[C.STATUS] == "active").all()
    assert (pd.to_datetime(picked[C.LAUNCHED_AT], utc=True) < tiny_ranked.split.cutoff).all()
    region = agents.loc[reco[C.AGENT_ID], C.REGION].to_numpy()
    listed = picked[C.REGIONS].to_numpy()
    assert all(len(r) == 0 or g in set(r) for g, r in zip(region, listed, strict=True))


def test_ranked_never_proposes_a_suspended_sku(tiny_ranked: Fitted) -> None:
    model = tiny_ranked.model
    assert model.suspended_, "the tiny log has an incident caught before the cutoff"
    everyone = list(model.users_.external_ids) + ["nobody"]
    reco = model.recommend(everyone, k=50)
    assert not set(reco[C.SKU_ID]) & set(model.suspended_)


def test_ranked_uses_nothing_after_the_cutoff(tiny_ranked: Fitted, reco: pd.DataFrame) -> None:
    from features.dataset import build_dataset

    cut = build_dataset(
        tiny_ranked.split.train_tables, "agent", cutoff=tiny_ranked.split.cutoff, fingerprint="x"
    )
    again = make_model("ranked", **FAST).fit(cut)
    users = reco[C.AGENT_ID].unique()
    assert_frame_equal(again.recommend(users, k=K), reco)


def test_ranked_batch_equals_single(tiny_ranked: Fitted, reco: pd.DataFrame) -> None:
    model = tiny_ranked.model
    for agent in reco[C.AGENT_ID].unique()[:3]:
        single = model.recommend([agent], k=K)
        batch = reco[reco[C.AGENT_ID] == agent].reset_index(drop=True)
        assert_frame_equal(single, batch, check_exact=False, rtol=1e-5, atol=1e-6)


def test_ranked_parallel_batches_give_the_same_picks(
    tiny_ranked: Fitted, reco: pd.DataFrame
) -> None:
    model = tiny_ranked.model
    users = reco[C.AGENT_ID].unique()
    saved = model.batch_size, model.score_threads
    try:
        model.batch_size = 16  # several batches, so the pool has work to share
        model.score_threads = 1
        serial = model.recommend(users, k=K)
        for threads in (3, 0):
            model.score_threads = threads
            assert_frame_equal(model.recommend(users, k=K), serial)
        assert_frame_equal(serial, reco)
        # a model pickled before the parameter existed scores one batch at a time
        del model.score_threads
        assert model._score_workers() == 1
        assert_frame_equal(model.recommend(users, k=K), serial)
    finally:
        model.batch_size, model.score_threads = saved


def test_ranked_excludes_recent_shares_when_asked(tiny_ranked: Fitted) -> None:
    shares = tiny_ranked.tables["shares"]
    cutoff = tiny_ranked.split.cutoff
    ts = pd.to_datetime(shares[C.TS], utc=True)
    recent = shares[(ts < cutoff) & (ts >= cutoff - pd.Timedelta(days=7))]
    agents = recent[C.AGENT_ID].value_counts().index[:10].tolist()
    model = tiny_ranked.model
    rules = model.rule_config_
    try:
        from recsys.ranking.rules import RuleConfig

        model.rule_config_ = RuleConfig(exclude_shared_days=7)
        picks = model.recommend(agents, k=K)
    finally:
        model.rule_config_ = rules
    shared = set(zip(recent[C.AGENT_ID], recent[C.SKU_ID], strict=True))
    pairs = set(zip(picks[C.AGENT_ID], picks[C.SKU_ID], strict=True))
    assert pairs and not pairs & shared
    # and without the rule some of her recent shares do come back (the rule is what removes them)
    plain = model.recommend(agents, k=K)
    assert set(zip(plain[C.AGENT_ID], plain[C.SKU_ID], strict=True)) & shared


def test_ranked_tier_privileges_hold_new_skus_back(tiny_ranked: Fitted) -> None:
    from recsys.ranking.rules import RuleConfig

    model = tiny_ranked.model
    state = model.state_
    rules = model.rule_config_
    everyone = model.users_.external_ids
    try:
        model.rule_config_ = RuleConfig(privilege_days=60, privilege_min_tier=3)
        picks = model.recommend(everyone, k=K)
    finally:
        model.rule_config_ = rules
    sku = model.skus_.to_index(picks[C.SKU_ID].to_numpy())
    agent = model.users_.to_index(picks[C.AGENT_ID].to_numpy())
    age = (state.cutoff.value - state.sku.launched_ns[sku]) / NS_PER_DAY
    low_tier = state.agent.tier[agent] < 3
    assert not (low_tier & (age < 60)).any()
    assert (~low_tier & (age < 60)).any(), "higher tiers do get the new SKUs"


def test_ranked_agents_with_little_history_get_their_audience(tiny_ranked: Fitted) -> None:
    from recsys.ranking.candidates import SOURCES, generate

    model = tiny_ranked.model
    aud = model.state_.audience
    own = np.diff(tiny_ranked.dataset.interactions.indptr).astype(float)
    own[aud.n_active == 0] = np.inf
    newest = np.argsort(own, kind="stable")[:5]
    cands = generate(model.state_, newest, model.allowed_, model.candidate_config_)
    from_audience = (cands.sources & SOURCES["audience"]) > 0
    assert set(cands.rows[from_audience]) == set(range(len(newest)))
    rows, _, score, _ = model.score_candidates(newest)
    assert set(rows) == set(range(len(newest))) and np.isfinite(score).all()


def test_ranked_rejects_bad_parameters(tiny_ranked: Fitted) -> None:
    for params, match in [
        ({"value": "profit"}, "value must be one of"),
        ({"label": "clicked"}, "label must be one of"),
        ({"return_cost": -1.0}, "return_cost must be >= 0"),
        ({"share_weight": 2.0}, "share_weight must be in"),
        ({"label_lag_days": 30.0}, "label_lag_days must be in"),
        ({"return_unit": "unit"}, "return_unit must be"),
        ({"refine_top": 0}, "refine_top must be an integer >= 1 or None"),
        ({"return_iter": 0}, "return_iter must be an integer >= 1"),
        ({"score_threads": -1}, "score_threads must be an integer >= 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_model("ranked", **params).fit(tiny_ranked.dataset)


def test_ranked_save_load_round_trip(tiny_ranked: Fitted, reco: pd.DataFrame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from recsys.models.base import BaseRecommender

    loaded = BaseRecommender.load(tiny_ranked.model.save(tmp_path / "ranked"))
    users = reco[C.AGENT_ID].unique()[:5]
    assert_frame_equal(loaded.recommend(users, k=K), tiny_ranked.model.recommend(users, k=K))
