"""Replay the circuit breaker day by day over a log, and score it against known incidents.

On simulated data the truth names the SKUs with a quality incident and its onset
(`recsys.simulation.truth.load_truth(dir).incidents()`); replaying the check every day tells how
many days after the onset each incident is caught, and how many SKUs are suspended without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.columns import Columns
from recsys.quality.breaker import (
    BreakerConfig,
    QualityLog,
    TimeLike,
    check_quality,
    suspensions,
    to_utc,
)

C = Columns
DETECTED_AT = "detected_at"
ONSET_AT = "onset_at"
DELAY_DAYS = "delay_days"
SECONDS_PER_DAY = 86_400.0


def replay(
    log: QualityLog,
    start: TimeLike,
    end: TimeLike,
    config: BreakerConfig | None = None,
    step_days: float = 1.0,
) -> pd.DataFrame:
    """Every suspension the breaker would raise checking at start, start + step, ... < end.

    Returns one row per (check moment, suspended SKU): the `check_quality` columns plus
    `detected_at` (the check moment). A SKU stays suspended once caught, so the first row of
    each SKU is when it would have been stopped.

    Raises
    ------
    ValueError
        If `step_days` is not positive or `end` is not after `start`.
    """
    if not step_days > 0:
        raise ValueError(f"step_days must be > 0, got {step_days!r}")
    lo, hi = to_utc(start), to_utc(end)
    if not hi > lo:
        raise ValueError(f"end ({hi}) must be after start ({lo})")
    frames = []
    for at in pd.date_range(lo, hi, freq=pd.Timedelta(days=step_days), inclusive="left"):
        found = suspensions(check_quality(log, at, config))
        if len(found):
            frames.append(found.assign(**{DETECTED_AT: at}))
    if not frames:
        empty = suspensions(check_quality(log, lo, config)).iloc[:0]
        return empty.assign(**{DETECTED_AT: pd.Series(dtype="datetime64[ns, UTC]")})
    return pd.concat(frames, ignore_index=True)


def first_detections(events: pd.DataFrame) -> pd.DataFrame:
    """The first suspension of each SKU in a `replay` frame, sorted by SKU."""
    first = events.sort_values([C.SKU_ID, DETECTED_AT], kind="stable")
    return first.drop_duplicates(C.SKU_ID, keep="first").reset_index(drop=True)


@dataclass(frozen=True)
class DetectionReport:
    """How the breaker did against the known incidents over a replay.

    `per_incident` has one row per incident SKU: onset, first detection at or after the onset
    (NaT if missed) and the delay in days. `false_skus` are SKUs suspended without an incident,
    or before their incident's onset.
    """

    per_incident: pd.DataFrame
    false_skus: np.ndarray
    n_skus: int
    days: float

    @property
    def n_detected(self) -> int:
        """Incidents caught during the replay."""
        return int(self.per_incident[DETECTED_AT].notna().sum())

    @property
    def false_per_1000_skus(self) -> float:
        """Distinct falsely suspended SKUs per 1,000 SKUs of the catalogue, over the replay."""
        return 1000.0 * len(self.false_skus) / max(self.n_skus, 1)

    def summary(self) -> dict[str, float]:
        """Flat numbers: incidents, detected, delay mean/median/max, false per 1,000 SKUs."""
        delays = self.per_incident[DELAY_DAYS].dropna().to_numpy(dtype=np.float64)
        return {
            "n_incidents": float(len(self.per_incident)),
            "n_detected": float(self.n_detected),
            "delay_days_mean": float(delays.mean()) if len(delays) else float("nan"),
            "delay_days_median": float(np.median(delays)) if len(delays) else float("nan"),
            "delay_days_max": float(delays.max()) if len(delays) else float("nan"),
            "n_false": float(len(self.false_skus)),
            "false_per_1000_skus": self.false_per_1000_skus,
            "replay_days": self.days,
        }


def detection_report(
    events: pd.DataFrame,
    incidents: pd.DataFrame,
    n_skus: int,
    start: TimeLike,
    end: TimeLike,
) -> DetectionReport:
    """Score a `replay` frame against incidents (`sku_id`, `onset_at`) over [start, end).

    Incidents with an onset outside [start, end) get no delay row; their SKUs suspended after
    the onset are not counted as false either.
    """
    lo, hi = to_utc(start), to_utc(end)
    every = pd.DataFrame(
        {
            C.SKU_ID: incidents[C.SKU_ID].to_numpy(dtype=object),
            ONSET_AT: pd.to_datetime(incidents[ONSET_AT], utc=True),
        }
    )
    merged = events[[C.SKU_ID, DETECTED_AT]].merge(every, on=C.SKU_ID, how="left")
    after = (merged[ONSET_AT].notna() & (merged[DETECTED_AT] >= merged[ONSET_AT])).to_numpy()
    caught = merged.loc[after].groupby(C.SKU_ID)[DETECTED_AT].min()
    inc = every.loc[((every[ONSET_AT] >= lo) & (every[ONSET_AT] < hi)).to_numpy()]
    per = inc.assign(**{DETECTED_AT: inc[C.SKU_ID].map(caught)})
    per[DETECTED_AT] = pd.to_datetime(per[DETECTED_AT], utc=True)
    per[DELAY_DAYS] = (per[DETECTED_AT] - per[ONSET_AT]).dt.total_seconds() / SECONDS_PER_DAY
    # a SKU caught before its onset was stopped for something the incident did not cause
    false_rows = merged.loc[~after]
    false_skus = np.sort(pd.unique(false_rows[C.SKU_ID].to_numpy(dtype=object)))
    days = (hi - lo).total_seconds() / SECONDS_PER_DAY
    return DetectionReport(
        per_incident=per.sort_values(C.SKU_ID).reset_index(drop=True),
        false_skus=false_skus,
        n_skus=n_skus,
        days=days,
    )
