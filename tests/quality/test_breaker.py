"""The circuit breaker on a hand-built log (tests/quality/builders.py) and on simulated data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import betaincinv

from recsys.columns import Columns
from recsys.quality.bounds import wilson_lower
from recsys.quality.breaker import BreakerConfig, QualityLog, check_quality, suspensions
from tests.quality.builders import build_tables, day

C = Columns


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return build_tables()


def log_of(tables: dict[str, pd.DataFrame], config: BreakerConfig | None = None) -> QualityLog:
    return QualityLog.from_tables(tables, (config or BreakerConfig()).fault_reasons)


def row_of(frame: pd.DataFrame, sku: str) -> pd.Series:
    return frame.set_index(C.SKU_ID).loc[sku]


def test_check_quality_numbers_match_the_log(tables: dict[str, pd.DataFrame]) -> None:
    config = BreakerConfig()
    got = row_of(check_quality(log_of(tables), day(60), config), "s00")
    # window [day 46, day 60): 14 lines; those of days 46..58 came back before day 60 (13)
    assert (got["units"], got["fault_returns"]) == (14, 13)
    assert got["window_start"] == day(46)
    assert_allclose(got["rate"], 13 / 14)
    # category rate without s00: s01..s09 returned days 0, 20, 40 (27 of 540), x0 2 of 3;
    # the whole log: + s00's 21 of 60 and apparel's 30 of 300, smoothed with 200 units
    glob = (27 + 2 + 21 + 30) / (540 + 3 + 60 + 300)
    cat = (27 + 2 + 200 * glob) / (540 + 3 + 200)
    assert_allclose(got["category_rate"], cat)
    assert_allclose(got["threshold"], max(2 * cat, cat + 0.05))
    assert_allclose(got["bound"], betaincinv(cat * 10 + 13, (1 - cat) * 10 + 1, 0.01))


def test_check_quality_suspends_only_the_incident_sku(tables: dict[str, pd.DataFrame]) -> None:
    found = suspensions(check_quality(log_of(tables), day(60)))
    assert found[C.SKU_ID].tolist() == ["s00"]
    assert bool(found["suspend"].all())


def test_check_quality_ignores_returns_filed_after_at(tables: dict[str, pd.DataFrame]) -> None:
    # at day 59 the return of day 58's line (filed at day 59.5) is not known yet
    got = row_of(check_quality(log_of(tables), day(59)), "s00")
    assert (got["units"], got["fault_returns"]) == (14, 13)
    assert got["window_start"] == day(45)


def test_check_quality_before_the_onset_suspends_nothing(tables: dict[str, pd.DataFrame]) -> None:
    assert suspensions(check_quality(log_of(tables), day(40))).empty


def test_check_quality_counts_damaged_only_when_asked(tables: dict[str, pd.DataFrame]) -> None:
    plain = BreakerConfig()
    found = suspensions(check_quality(log_of(tables, plain), day(60), plain))
    assert found[C.SKU_ID].tolist() == ["s00"]
    damaged = BreakerConfig(include_damaged=True)
    found = suspensions(check_quality(log_of(tables, damaged), day(60), damaged))
    assert set(found[C.SKU_ID]) == {"s00", "s01"}
    assert row_of(found, "s01")["fault_returns"] == 13


def test_check_quality_needs_minimum_counts(tables: dict[str, pd.DataFrame]) -> None:
    # x0 sold 3 units and 2 came back for quality (67%): too few units to suspend
    got = row_of(check_quality(log_of(tables), day(60)), "x0")
    assert (got["units"], got["fault_returns"], bool(got["suspend"])) == (3, 2, False)
    loose = BreakerConfig(min_units=3, min_fault_returns=2, confidence=0.5, prior_strength=1.0)
    assert bool(row_of(check_quality(log_of(tables), day(60), loose), "x0")["suspend"])


def test_check_quality_after_a_lift_uses_only_new_evidence(
    tables: dict[str, pd.DataFrame],
) -> None:
    frame = check_quality(log_of(tables), day(60), lifted={"s00": day(52), "nope": day(1)})
    got = row_of(frame, "s00")
    assert got["window_start"] == day(52)
    assert (got["units"], got["fault_returns"], bool(got["suspend"])) == (8, 7, False)


def test_check_quality_wilson_bound(tables: dict[str, pd.DataFrame]) -> None:
    config = BreakerConfig(method="wilson", confidence=0.95)
    got = row_of(check_quality(log_of(tables), day(60), config), "s00")
    assert_allclose(got["bound"], wilson_lower(13, 14, 0.95))


def test_check_quality_worst_first_and_columns(tables: dict[str, pd.DataFrame]) -> None:
    frame = check_quality(log_of(tables), day(60))
    gap = (frame["bound"] - frame["threshold"]).to_numpy()
    assert (np.diff(gap) <= 0).all()
    assert frame[C.SKU_ID].iloc[0] == "s00"
    assert set(frame[C.SKU_ID]) == {
        *(f"s{i:02d}" for i in range(10)),
        *(f"t{i}" for i in range(5)),
        "x0",
    }


def test_quality_log_caps_returns_at_the_line_quantity(tables: dict[str, pd.DataFrame]) -> None:
    doubled = dict(tables)
    rets = tables["returns"]
    extra = rets[rets[C.PURCHASE_ID] == "p-s00-50"].assign(**{C.RETURN_ID: "r-again"})
    doubled["returns"] = pd.concat([rets, extra], ignore_index=True)
    got = row_of(check_quality(log_of(doubled), day(60)), "s00")
    assert got["fault_returns"] == 13


def test_breaker_config_rejects_a_history_shorter_than_the_window() -> None:
    with pytest.raises(ValueError, match="history_days"):
        BreakerConfig(window_days=30, history_days=14)


def test_quality_log_requires_the_tables(tables: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="missing table"):
        QualityLog.from_tables({"skus": tables["skus"]}, ("quality",))


def test_check_quality_rejects_a_bad_time(tables: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="at must be a valid time"):
        check_quality(log_of(tables), "not a time")


def test_check_quality_suspends_a_simulated_incident(sim_tiny_dir: Path) -> None:
    from recsys.contract.loader import load_tables
    from recsys.simulation.truth import load_truth

    tables = load_tables(sim_tiny_dir, on_quarantine="ignore")
    incidents = load_truth(sim_tiny_dir).incidents()
    log = QualityLog.from_tables(tables, BreakerConfig().fault_reasons)
    before = suspensions(check_quality(log, incidents["onset_at"].min()))
    caught = set()
    for onset in incidents["onset_at"]:
        caught |= set(suspensions(check_quality(log, onset + pd.Timedelta(days=21)))[C.SKU_ID])
    assert caught & set(incidents[C.SKU_ID])
    # before any incident starts nothing in the catalogue looks like one
    assert before.empty
