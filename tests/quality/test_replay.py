"""Replaying the breaker day by day, and scoring it against known incidents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recsys.columns import Columns
from recsys.quality.breaker import BreakerConfig, QualityLog, check_quality, suspensions
from recsys.quality.replay import detection_report, first_detections, replay
from tests.quality.builders import ONSET, build_tables, day

C = Columns


@pytest.fixture(scope="module")
def log() -> QualityLog:
    return QualityLog.from_tables(build_tables(), BreakerConfig().fault_reasons)


def test_replay_catches_the_incident_once_enough_returns_came_back(log: QualityLog) -> None:
    events = replay(log, day(20), day(60))
    first = first_detections(events)
    assert first[C.SKU_ID].tolist() == ["s00"]
    caught = first["detected_at"].iloc[0]
    # the check at the day before does not suspend it, the check at that day does
    day_before = suspensions(check_quality(log, caught - pd.Timedelta(days=1)))
    assert "s00" not in set(day_before[C.SKU_ID])
    assert ONSET < caught <= ONSET + pd.Timedelta(days=14)
    # once caught it stays over the bar every day to the end of the log
    assert (events[C.SKU_ID] == "s00").sum() == (day(60) - caught).days


def test_detection_report_counts_delays_and_false_suspensions() -> None:
    events = pd.DataFrame(
        {
            C.SKU_ID: ["a", "a", "b", "c", "d", "e"],
            "detected_at": [day(9), day(12), day(15), day(20), day(3), day(30)],
        }
    )
    incidents = pd.DataFrame(
        {
            C.SKU_ID: ["a", "b", "d", "e", "z", "old"],
            "onset_at": [day(10), day(12.5), day(5), day(1), day(20), day(-50)],
            "extra_return_rate": [0.5] * 6,
        }
    )
    report = detection_report(events, incidents, n_skus=400, start=day(0), end=day(40))
    per = report.per_incident.set_index(C.SKU_ID)
    # a: caught at 12 after onset 10 (its suspension at 9 came before the incident: false);
    # b: 2.5 days; d: caught only before its onset (false, missed); e: 29 days; z missed
    assert_allclose(per.loc[["a", "b", "e"], "delay_days"], [2.0, 2.5, 29.0])
    assert per.loc[["d", "z"], "detected_at"].isna().all()
    assert "old" not in per.index
    assert report.false_skus.tolist() == ["a", "c", "d"]
    assert report.false_per_1000_skus == pytest.approx(1000 * 3 / 400)
    summary = report.summary()
    assert summary["n_incidents"] == 5 and summary["n_detected"] == 3
    assert summary["delay_days_median"] == pytest.approx(2.5)
    assert summary["delay_days_max"] == pytest.approx(29.0)
    assert summary["replay_days"] == pytest.approx(40.0)


def test_detection_report_with_nothing_caught_has_no_delays() -> None:
    empty = pd.DataFrame(
        {
            C.SKU_ID: pd.Series([], dtype=object),
            "detected_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )
    incidents = pd.DataFrame({C.SKU_ID: ["a"], "onset_at": [day(3)]})
    report = detection_report(empty, incidents, 10, day(0), day(10))
    assert report.n_detected == 0 and np.isnan(report.summary()["delay_days_mean"])


def test_replay_rejects_bad_steps(log: QualityLog) -> None:
    with pytest.raises(ValueError, match="step_days"):
        replay(log, day(0), day(10), step_days=0)
    with pytest.raises(ValueError, match="must be after start"):
        replay(log, day(10), day(10))


def test_replay_with_no_suspension_returns_an_empty_frame(log: QualityLog) -> None:
    events = replay(log, day(10), day(20))
    assert events.empty and "detected_at" in events.columns
