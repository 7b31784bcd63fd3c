"""The simulated logs look like social commerce and carry the signals a recommender must learn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.columns import Columns, Tables
from recsys.simulation.simulate import SimulationResult
from recsys.simulation.truth import Truth

C = Columns


def _returned_lines(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Purchases with a `returned` flag and the return reasons."""
    purchases = tables[Tables.PURCHASES]
    returns = tables[Tables.RETURNS].drop_duplicates(C.PURCHASE_ID)
    out = purchases.merge(returns[[C.PURCHASE_ID, C.REASON]], on=C.PURCHASE_ID, how="left")
    out["returned"] = out[C.REASON].notna()
    return out.merge(tables[Tables.SKUS][[C.SKU_ID, C.CATEGORY]], on=C.SKU_ID)


def test_agent_group_sizes_are_heavy_tailed(tiny_tables: dict[str, pd.DataFrame]) -> None:
    sizes = tiny_tables[Tables.CUSTOMERS][C.AGENT_ID].value_counts()
    assert len(sizes) == len(tiny_tables[Tables.AGENTS])  # every agent has a group
    assert sizes.max() / sizes.median() > 10
    top_decile = sizes.nlargest(len(sizes) // 10).sum() / sizes.sum()
    assert top_decile > 0.35


def test_return_rates_per_category_land_in_configured_bands(
    tiny_tables: dict[str, pd.DataFrame], tiny_truth: Truth
) -> None:
    lines = _returned_lines(tiny_tables)
    rates = lines.groupby(C.CATEGORY)["returned"].agg(["mean", "size"])
    checked = 0
    for spec in tiny_truth.world.config.categories:
        if spec.name not in rates.index or rates.loc[spec.name, "size"] < 300:
            continue
        lo, hi = spec.return_band
        assert lo <= rates.loc[spec.name, "mean"] <= hi, (spec.name, rates.loc[spec.name])
        checked += 1
    assert checked >= 8
    assert rates.loc["apparel", "mean"] > 2 * rates.loc["fresh_food", "mean"]


def test_return_reasons_follow_their_cause(tiny_tables: dict[str, pd.DataFrame]) -> None:
    lines = _returned_lines(tiny_tables)
    reasons = lines[lines["returned"]].groupby(C.CATEGORY)[C.REASON].value_counts(normalize=True)
    assert reasons.loc[("apparel", "fit")] > 0.3  # sizes
    assert reasons.loc[("fresh_food", "damaged")] > 0.3  # transit
    assert reasons.get(("fresh_food", "fit"), 0.0) == 0.0


def test_consumables_are_bought_again(
    tiny_tables: dict[str, pd.DataFrame], tiny_truth: Truth
) -> None:
    lines = _returned_lines(tiny_tables)
    consumable = {c.name for c in tiny_truth.world.config.categories if c.consumable}
    lines["consumable"] = lines[C.CATEGORY].isin(consumable)
    counts = lines.groupby([C.CUSTOMER_ID, C.SKU_ID, "consumable"]).size().rename("n").reset_index()
    repeat = counts.assign(again=counts["n"] > 1).groupby("consumable")["again"].mean()
    assert repeat.loc[True] > 0.15
    assert repeat.loc[True] > 3 * repeat.loc[False]
    # repurchases go through her agent's storefront: no share behind them
    again = lines[lines.duplicated([C.CUSTOMER_ID, C.SKU_ID]) & lines["consumable"]]
    assert again[C.SHARE_ID].isna().mean() > 0.5


def test_purchases_come_mostly_through_shares(tiny_tables: dict[str, pd.DataFrame]) -> None:
    purchases = tiny_tables[Tables.PURCHASES]
    via_share = purchases[C.SHARE_ID].notna().mean()
    assert 0.5 < via_share < 0.8
    bound = tiny_tables[Tables.CUSTOMERS].set_index(C.CUSTOMER_ID)[C.AGENT_ID]
    to_bound_agent = (
        bound.loc[purchases[C.CUSTOMER_ID]].to_numpy() == purchases[C.AGENT_ID]
    ).mean()
    assert 0.9 < to_bound_agent < 1.0  # forwarded shares credit another agent now and then


def test_incident_skus_show_a_return_wave_after_onset(
    tiny_tables: dict[str, pd.DataFrame], tiny_truth: Truth
) -> None:
    lines = _returned_lines(tiny_tables)
    incidents = tiny_truth.incidents()
    assert len(incidents) >= 3
    hit = lines.merge(incidents, on=C.SKU_ID)
    after = hit[C.TS] >= hit["onset_at"]
    assert after.sum() >= 30 and (~after).sum() >= 30
    rate = hit.groupby(after)["returned"].mean()
    assert rate[True] > 2 * rate[False] and rate[True] - rate[False] > 0.2
    # the wave is made of quality / not_as_described returns
    fault = hit["returned"] & hit[C.REASON].isin(["quality", "not_as_described"])
    fault_rate = fault.groupby(after).mean()
    assert fault_rate[True] > 4 * fault_rate[False]


def test_tiers_move_up_and_down(tiny_truth: Truth) -> None:
    history = tiny_truth.tier_history.sort_values(["agent_id", "effective_at"])
    step = history.groupby("agent_id")["tier"].diff().dropna()
    assert (step > 0).sum() > 0 and (step < 0).sum() > 0
    assert step.abs().max() == 1  # one tier per month at most
    assert history["tier"].between(1, 5).all()


def test_new_agents_and_skus_arrive_during_the_period(tiny_tables: dict[str, pd.DataFrame]) -> None:
    start = pd.Timestamp("2025-01-01", tz="UTC")
    agents, skus = tiny_tables[Tables.AGENTS], tiny_tables[Tables.SKUS]
    assert 0.1 < (agents[C.JOINED_AT] >= start).mean() < 0.5
    assert 0.2 < (skus[C.LAUNCHED_AT] >= start).mean() < 0.6
    new_skus = skus.loc[skus[C.LAUNCHED_AT] >= start, C.SKU_ID]
    assert tiny_tables[Tables.PURCHASES][C.SKU_ID].isin(new_skus).mean() > 0.05


def test_agents_future_purchases_follow_their_past(tiny_tables: dict[str, pd.DataFrame]) -> None:
    """The learnable signal: an agent's customers keep buying what they bought before."""
    lines = _returned_lines(tiny_tables)
    cut = lines[C.TS].min() + (lines[C.TS].max() - lines[C.TS].min()) / 2
    past, future = lines[lines[C.TS] < cut], lines[lines[C.TS] >= cut]
    mix_past = pd.crosstab(past[C.AGENT_ID], past[C.CATEGORY], normalize="index")
    mix_future = pd.crosstab(future[C.AGENT_ID], future[C.CATEGORY], normalize="index")
    agents = mix_past.index.intersection(mix_future.index)
    agents = agents[(past[C.AGENT_ID].value_counts().loc[agents] >= 20).to_numpy()]
    a = mix_past.loc[agents].reindex(columns=mix_future.columns, fill_value=0).to_numpy()
    b = mix_future.loc[agents].to_numpy()
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    shuffled = np.roll(b, 1, axis=0)
    cos_other = (a * shuffled).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(shuffled, axis=1)
    assert len(agents) >= 30
    assert cos.mean() > cos_other.mean() + 0.1

    # SKU level: share of her future lines on SKUs her customers bought before, vs another agent's
    seen = past.groupby(C.AGENT_ID)[C.SKU_ID].agg(set)
    fut = future[future[C.AGENT_ID].isin(agents)]
    own = np.mean([s in seen[a] for a, s in zip(fut[C.AGENT_ID], fut[C.SKU_ID], strict=True)])
    order = list(agents)
    other_of = dict(zip(order, order[1:] + order[:1], strict=True))
    other = np.mean(
        [s in seen[other_of[a]] for a, s in zip(fut[C.AGENT_ID], fut[C.SKU_ID], strict=True)]
    )
    assert own > 1.5 * other


def test_in_memory_run_matches_written_tables(
    tiny_run: SimulationResult, tiny_tables: dict[str, pd.DataFrame]
) -> None:
    for name in Tables.ALL:
        assert len(tiny_run.tables[name]) == len(tiny_tables[name]), name
    pd.testing.assert_series_equal(
        tiny_run.tables[Tables.PURCHASES][C.PURCHASE_ID],
        tiny_tables[Tables.PURCHASES][C.PURCHASE_ID],
    )
