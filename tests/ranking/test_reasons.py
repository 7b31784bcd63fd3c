"""Every reason a pick carries is true, and its number is recomputed here from the raw logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.columns import Columns
from recsys.ranking.reasons import ReasonConfig, pick_reasons, reason_values, reasons_frame
from recsys.reasons import reason_id, render_reason
from tests.ranking.conftest import Fitted

C = Columns


@pytest.fixture(scope="module")
def explained(tiny_ranked: Fitted) -> pd.DataFrame:
    users = tiny_ranked.split.truth("agent")[C.AGENT_ID].unique()[:40]
    return tiny_ranked.model.explain(tiny_ranked.model.recommend(users, k=20))


def _before(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    return frame[pd.to_datetime(frame[C.TS], utc=True) < cutoff]


def _with(explained: pd.DataFrame, code: str) -> pd.DataFrame:
    """Picks carrying `code`, with its parameter as `param`."""
    rows = []
    for j in (1, 2, 3):
        hit = explained[explained[f"reason_{j}"] == code]
        rows.append(hit.assign(param=hit[f"param_{j}"]))
    return pd.concat(rows)


def test_every_pick_has_one_to_three_reasons(explained: pd.DataFrame) -> None:
    assert explained["reason_1"].notna().all()
    codes = explained[["reason_1", "reason_2", "reason_3"]]
    # left-packed: no gap before a reason
    assert not (codes["reason_2"].isna() & codes["reason_3"].notna()).any()
    assert (explained["reason_1"] == "picked_for_you").sum() < len(explained) / 2
    for code in explained["reason_1"].unique():
        assert render_reason(code, 3)  # every code renders in plain words


def test_customers_rebuy_counts_her_customers_from_the_log(
    tiny_ranked: Fitted, explained: pd.DataFrame
) -> None:
    cutoff = tiny_ranked.split.cutoff
    customers = tiny_ranked.tables["customers"]
    joined = customers[pd.to_datetime(customers[C.JOINED_AT], utc=True) < cutoff]
    bought = _before(tiny_ranked.tables["purchases"], cutoff)
    mine = bought.merge(
        joined[[C.CUSTOMER_ID, C.AGENT_ID]].rename(columns={C.AGENT_ID: "owner"}),
        on=C.CUSTOMER_ID,
    )
    counts = mine.groupby(["owner", C.SKU_ID])[C.CUSTOMER_ID].nunique()
    picks = _with(explained, "customers_rebuy")
    assert len(picks) > 20
    want = counts.reindex(pd.MultiIndex.from_arrays([picks[C.AGENT_ID], picks[C.SKU_ID]]))
    assert (want.to_numpy() == picks["param"].to_numpy()).all()


def test_low_return_rate_is_its_share_of_returned_lines(
    tiny_ranked: Fitted, explained: pd.DataFrame
) -> None:
    cutoff = tiny_ranked.split.cutoff
    lines = _before(tiny_ranked.tables["purchases"], cutoff)
    rets = _before(tiny_ranked.tables["returns"], cutoff)
    lines = lines.assign(returned=lines[C.PURCHASE_ID].isin(rets[C.PURCHASE_ID]))
    lines = lines.merge(tiny_ranked.tables["skus"][[C.SKU_ID, C.CATEGORY]], on=C.SKU_ID)
    per_sku = lines.groupby(C.SKU_ID)["returned"].agg(["size", "mean"])
    per_cat = lines.groupby(C.CATEGORY)["returned"].mean()
    picks = _with(explained, "low_return_rate")
    assert len(picks) > 5
    stats = per_sku.loc[picks[C.SKU_ID]]
    assert (stats["size"] >= ReasonConfig().min_lines).all()
    assert (np.rint(100 * stats["mean"]).to_numpy() == picks["param"].to_numpy()).all()
    category = tiny_ranked.tables["skus"].set_index(C.SKU_ID).loc[picks[C.SKU_ID], C.CATEGORY]
    assert (stats["mean"].to_numpy() < 0.75 * per_cat.loc[category].to_numpy()).all()


def test_popular_and_trending_in_region_match_the_log(
    tiny_ranked: Fitted, explained: pd.DataFrame
) -> None:
    cutoff = tiny_ranked.split.cutoff
    tables = tiny_ranked.tables
    bought = _before(tables["purchases"], cutoff)
    ts = pd.to_datetime(bought[C.TS], utc=True)
    region_of_agent = tables["agents"].set_index(C.AGENT_ID)[C.REGION]
    region_of_customer = tables["customers"].set_index(C.CUSTOMER_ID)[C.REGION]

    recent = bought[ts >= cutoff - pd.Timedelta(days=28)]
    recent = recent.assign(region=region_of_customer.loc[recent[C.CUSTOMER_ID]].to_numpy())
    buyers = recent.groupby(["region", C.SKU_ID])[C.CUSTOMER_ID].nunique()
    picks = _with(explained, "popular_in_region")
    assert len(picks) > 5
    keys = pd.MultiIndex.from_arrays(
        [region_of_agent.loc[picks[C.AGENT_ID]].to_numpy(), picks[C.SKU_ID]]
    )
    assert (buyers.reindex(keys).to_numpy() == picks["param"].to_numpy()).all()

    by_agent_region = bought.assign(region=region_of_agent.loc[bought[C.AGENT_ID]].to_numpy())
    age = (cutoff - ts).dt.total_seconds() / 86_400
    week = by_agent_region[age < 7].groupby(["region", C.SKU_ID])[C.QTY].sum()
    prev = by_agent_region[(age >= 7) & (age < 14)].groupby(["region", C.SKU_ID])[C.QTY].sum()
    picks = _with(explained, "trending_region")
    assert len(picks) > 5
    keys = pd.MultiIndex.from_arrays(
        [region_of_agent.loc[picks[C.AGENT_ID]].to_numpy(), picks[C.SKU_ID]]
    )
    this, last = week.reindex(keys).fillna(0).to_numpy(), prev.reindex(keys).fillna(0).to_numpy()
    assert (this >= 3).all() and (this > last).all()
    growth = np.where(last > 0, np.rint(100 * (this - last) / np.where(last > 0, last, 1)), 0)
    assert (growth == picks["param"].to_numpy()).all()


def test_price_band_series_and_similar_agents_hold(
    tiny_ranked: Fitted, explained: pd.DataFrame
) -> None:
    model = tiny_ranked.model
    cutoff = tiny_ranked.split.cutoff
    tables = tiny_ranked.tables
    skus = tables["skus"].set_index(C.SKU_ID)
    bought = _before(tables["purchases"], cutoff)
    log_price = np.log(skus[C.PRICE])
    rel = log_price - log_price.groupby(skus[C.CATEGORY]).transform("median")
    lines = bought.assign(rel=rel.loc[bought[C.SKU_ID]].to_numpy())
    band = lines.groupby(C.AGENT_ID)["rel"].quantile([0.1, 0.9]).unstack()
    picks = _with(explained, "fits_price_band")
    assert len(picks) > 5
    p_rel = rel.loc[picks[C.SKU_ID]].to_numpy()
    lo = band.loc[picks[C.AGENT_ID], 0.1].to_numpy()
    hi = band.loc[picks[C.AGENT_ID], 0.9].to_numpy()
    assert ((p_rel >= lo - 1e-9) & (p_rel <= hi + 1e-9)).all()

    # similar agents: her ALS neighbours who sold it (a unit kept) in the last 28 days
    picks = _with(explained, "similar_agents_sell")
    assert len(picks) > 5
    recent = bought[pd.to_datetime(bought[C.TS], utc=True) >= cutoff - pd.Timedelta(days=28)]
    rets = _before(tables["returns"], cutoff).groupby(C.PURCHASE_ID)[C.QTY].sum()
    kept = recent[C.QTY] - rets.reindex(recent[C.PURCHASE_ID]).fillna(0).to_numpy()
    sold = recent[kept.to_numpy() > 0].groupby(C.AGENT_ID)[C.SKU_ID].agg(set)
    for agent, sku, n in picks[[C.AGENT_ID, C.SKU_ID, "param"]].itertuples(index=False):
        nb = model.state_.neighbours[model.users_.to_index([agent])[0]]
        names = model.users_.to_external(nb[nb >= 0])
        assert n == sum(sku in sold.get(b, set()) for b in names) >= 2


def test_new_in_series_needs_a_new_sku_of_a_series_she_sold(tiny_ranked: Fitted) -> None:
    model = tiny_ranked.model
    state = model.state_
    cutoff = tiny_ranked.split.cutoff
    skus = tiny_ranked.tables["skus"].set_index(C.SKU_ID)
    launched = pd.to_datetime(skus[C.LAUNCHED_AT], utc=True)
    new = skus.index[(launched < cutoff) & (launched >= cutoff - pd.Timedelta(days=30))]
    bought = _before(tiny_ranked.tables["purchases"], cutoff)
    sold_series = bought.assign(series=skus.loc[bought[C.SKU_ID], C.SERIES].to_numpy())
    sold_series = sold_series.groupby(C.AGENT_ID)["series"].agg(set)
    agents = np.repeat(np.arange(state.n_agents), len(new))
    sku_idx = np.tile(model.skus_.to_index(new), state.n_agents)
    true, _ = reason_values(state, agents, sku_idx)["new_in_series"]
    assert true.any()
    names = model.users_.to_external(agents)
    series = skus.loc[model.skus_.to_external(sku_idx), C.SERIES].to_numpy()
    want = [
        pd.notna(x) and x in sold_series.get(a, set()) for a, x in zip(names, series, strict=True)
    ]
    assert (true == np.array(want)).all()


def test_pick_reasons_pack_at_most_three_in_order(tiny_ranked: Fitted) -> None:
    state = tiny_ranked.model.state_
    agents = np.repeat(np.arange(20), 30)
    skus = np.tile(np.arange(30), 20)
    ids, params = pick_reasons(state, agents, skus)
    assert ids.shape == (600, 3) and params.dtype == np.uint16
    assert (ids[:, 0] > 0).all()
    frame = reasons_frame(ids, params)
    assert set(frame["reason_1"]) <= {
        "customers_rebuy", "new_in_series", "trending_region", "similar_agents_sell",
        "low_return_rate", "fits_price_band", "popular_in_region", "picked_for_you",
    }  # fmt: skip
    # an unknown agent (-1) gets only what holds for the SKU itself
    ids_unknown, _ = pick_reasons(state, np.full(30, -1), np.arange(30))
    personal = {reason_id(c) for c in ("customers_rebuy", "fits_price_band", "new_in_series")}
    assert not set(ids_unknown.ravel()) & personal


def test_model_pick_reasons_handle_unknown_ids(tiny_ranked: Fitted) -> None:
    ids, params = tiny_ranked.model.pick_reasons(
        np.array(["nobody", "nobody"], dtype=object), np.array(["S00001", "no-sku"], dtype=object)
    )
    assert ids[1, 0] == reason_id("picked_for_you") and ids[1, 1] == 0
    assert ids[0, 0] > 0
