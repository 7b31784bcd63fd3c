"""Ground truth: storage round trip, expected kept purchases and oracle picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.columns import Columns, Tables
from recsys.simulation.dynamics import category_arrays
from recsys.simulation.simulate import SimulationResult
from recsys.simulation.truth import (
    Truth,
    expected_kept_purchases,
    expected_kept_purchases_customer,
    load_truth,
    oracle_picks,
)

C = Columns


def test_load_truth_round_trips_the_world(tiny_truth: Truth, tiny_run: SimulationResult) -> None:
    disk, memory = tiny_truth.world, tiny_run.world
    np.testing.assert_array_equal(disk.skus.latent, memory.skus.latent)
    np.testing.assert_array_equal(disk.skus.incident_onset, memory.skus.incident_onset)
    np.testing.assert_array_equal(disk.customers.taste, memory.customers.taste)
    np.testing.assert_array_equal(disk.agents.customer_start, memory.agents.customer_start)
    assert list(disk.agents.ids) == list(memory.agents.ids)
    assert (disk.mismatch_mu, disk.config) == (memory.mismatch_mu, memory.config)
    np.testing.assert_array_equal(tiny_truth.owned_keys, tiny_run.truth.owned_keys)
    pd.testing.assert_frame_equal(tiny_truth.tier_history, tiny_run.truth.tier_history)


def test_load_truth_needs_a_truth_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has no truth/config.json"):
        load_truth(tmp_path)


def test_oracle_picks_beat_random_picks(tiny_truth: Truth) -> None:
    agents = tiny_truth.world.agents.ids
    picks = oracle_picks(tiny_truth, agents, 10)
    rng = np.random.default_rng(0)
    random_skus = rng.choice(tiny_truth.world.skus.ids, len(picks))
    oracle_value = expected_kept_purchases(tiny_truth, picks[C.AGENT_ID], picks[C.SKU_ID]).sum()
    random_value = expected_kept_purchases(tiny_truth, picks[C.AGENT_ID], random_skus).sum()
    assert oracle_value > 5 * random_value > 0


def test_oracle_picks_are_ranked_available_and_scored_truly(tiny_truth: Truth) -> None:
    world = tiny_truth.world
    agents = world.agents.ids[:40]
    picks = oracle_picks(tiny_truth, agents, 5)
    assert list(picks.columns) == [C.AGENT_ID, C.SKU_ID, C.SCORE, C.RANK]
    assert (
        picks.groupby(C.AGENT_ID)[C.RANK].agg(list)
        == pd.Series([[1, 2, 3, 4, 5]] * 40, index=agents)
    ).all()
    assert (picks.groupby(C.AGENT_ID)[C.SCORE].diff().dropna() <= 0).all()
    value = expected_kept_purchases(tiny_truth, picks[C.AGENT_ID], picks[C.SKU_ID])
    np.testing.assert_allclose(value, picks[C.SCORE], rtol=1e-4)
    sku = tiny_truth.sku_index(picks[C.SKU_ID])
    region = world.agents.region[tiny_truth.agent_index(picks[C.AGENT_ID])]
    assert ((world.skus.region_mask[sku] >> region) & 1).all()
    assert (world.skus.launch_day[sku] <= world.config.n_days).all()
    assert (world.skus.end_day[sku] > world.config.n_days).all()


def test_oracle_picks_for_customers_beat_random(tiny_truth: Truth) -> None:
    customers = tiny_truth.world.customers.ids[:300]
    picks = oracle_picks(tiny_truth, customers, 3, target="customer")
    assert set(picks[C.CUSTOMER_ID]) == set(customers)
    value = expected_kept_purchases_customer(tiny_truth, picks[C.CUSTOMER_ID], picks[C.SKU_ID])
    np.testing.assert_allclose(value, picks[C.SCORE], rtol=1e-4)
    rng = np.random.default_rng(1)
    random_value = expected_kept_purchases_customer(
        tiny_truth, picks[C.CUSTOMER_ID], rng.choice(tiny_truth.world.skus.ids, len(picks))
    )
    assert value.sum() > 5 * random_value.sum()


def test_agent_value_is_the_sum_of_her_customers_values(tiny_truth: Truth) -> None:
    world = tiny_truth.world
    agent = int(np.argmax(world.agents.customer_stop - world.agents.customer_start))
    members = world.customers.ids[
        world.agents.customer_start[agent] : world.agents.customer_stop[agent]
    ]
    skus = oracle_picks(tiny_truth, [world.agents.ids[agent]], 4)[C.SKU_ID]
    for sku in skus:
        per_customer = expected_kept_purchases_customer(tiny_truth, members, [sku] * len(members))
        total = expected_kept_purchases(tiny_truth, [world.agents.ids[agent]], [sku])
        np.testing.assert_allclose(total, per_customer.sum(), rtol=1e-5)


def test_value_is_zero_before_launch_and_outside_her_region(tiny_truth: Truth) -> None:
    world = tiny_truth.world
    late = int(np.argmax(world.skus.launch_day))
    launched = world.start + pd.Timedelta(days=float(world.skus.launch_day[late]))
    agents = world.agents.ids[:20]
    before = expected_kept_purchases(
        tiny_truth, agents, [world.skus.ids[late]] * 20, at=launched - pd.Timedelta(days=1)
    )
    assert (before == 0).all()
    regional = np.flatnonzero(world.skus.region_mask != (1 << world.config.n_regions) - 1)
    sku = int(regional[0])
    outside = np.flatnonzero(((world.skus.region_mask[sku] >> world.agents.region) & 1) == 0)
    value = expected_kept_purchases(
        tiny_truth, world.agents.ids[outside], [world.skus.ids[sku]] * len(outside)
    )
    assert len(outside) and (value == 0).all()


def test_value_drops_once_an_incident_starts(tiny_truth: Truth) -> None:
    incident = tiny_truth.incidents().iloc[0]
    agents = tiny_truth.world.agents.ids
    skus = [incident["sku_id"]] * len(agents)
    before = expected_kept_purchases(
        tiny_truth, agents, skus, at=incident["onset_at"] - pd.Timedelta(days=1)
    )
    after = expected_kept_purchases(
        tiny_truth, agents, skus, at=incident["onset_at"] + pd.Timedelta(days=1)
    )
    rate = incident["extra_return_rate"]
    assert after.sum() < (1 - 0.8 * rate) * before.sum()


def test_owned_non_consumable_is_worth_nothing_to_her(
    tiny_truth: Truth, tiny_tables: dict[str, pd.DataFrame]
) -> None:
    world = tiny_truth.world
    purchases = tiny_tables[Tables.PURCHASES]
    durable = ~category_arrays(world.config).consumable[
        world.skus.category[tiny_truth.sku_index(purchases[C.SKU_ID])]
    ]
    line = purchases[durable].iloc[0]
    args = ([line[C.CUSTOMER_ID]], [line[C.SKU_ID]])
    assert (
        expected_kept_purchases_customer(tiny_truth, *args, at=line[C.TS] - pd.Timedelta(days=1))[0]
        > 0
    )
    assert (
        expected_kept_purchases_customer(tiny_truth, *args, at=line[C.TS] + pd.Timedelta(days=1))[0]
        == 0
    )


def test_expected_value_matches_simulated_share_outcomes(tiny_run: SimulationResult) -> None:
    """Kept units bought right through group shares equal what the truth expects of them."""
    truth, tables = tiny_run.truth, tiny_run.tables
    shares = tables[Tables.SHARES]
    start = truth.world.start
    window = (shares[C.TS] >= start + pd.Timedelta(days=10)) & (
        shares[C.TS] < start + pd.Timedelta(days=50)
    )
    shares = shares[window & (shares[C.CHANNEL] == "group")]
    # a one-day horizon leaves only the purchases made right through the share; `at` is taken
    # at midday of the share's day
    midday = shares[C.TS].dt.floor("D") + pd.Timedelta(hours=12)
    expected = sum(
        expected_kept_purchases(truth, g[C.AGENT_ID], g[C.SKU_ID], horizon_days=1, at=ts).sum()
        for ts, g in shares.groupby(midday)
    )
    purchases = tables[Tables.PURCHASES]
    bound = tables[Tables.CUSTOMERS].set_index(C.CUSTOMER_ID)[C.AGENT_ID]
    lines = purchases[purchases[C.SHARE_ID].isin(shares[C.SHARE_ID])]
    lines = lines[bound.loc[lines[C.CUSTOMER_ID]].to_numpy() == lines[C.AGENT_ID].to_numpy()]
    returned = tables[Tables.RETURNS].groupby(C.PURCHASE_ID)[C.QTY].sum()
    kept = lines[C.QTY] - lines[C.PURCHASE_ID].map(returned).fillna(0)
    assert len(lines) > 2000
    assert 0.9 < kept.sum() / expected < 1.1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: oracle_picks(t, t.world.agents.ids[:2], 0), ValueError, "k must be >= 1, got 0"),
        (
            lambda t: oracle_picks(t, t.world.agents.ids[:2], 3, target="shop"),
            ValueError,
            "target must be",
        ),
        (
            lambda t: expected_kept_purchases(t, ["A999999"], ["S00001"]),
            KeyError,
            "unknown agent_id 'A999999'",
        ),
        (
            lambda t: expected_kept_purchases(t, t.world.agents.ids[:2], ["S00001"]),
            ValueError,
            "must align",
        ),
        (
            lambda t: expected_kept_purchases_customer(
                t, t.world.customers.ids[:1], ["S00001"], horizon_days=0
            ),
            ValueError,
            "horizon_days must be > 0, got 0",
        ),
    ],
)
def test_truth_functions_reject_bad_input(tiny_truth: Truth, call, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call(tiny_truth)
