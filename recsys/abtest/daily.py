"""Daily cumulative metrics per variant: how the picture built up over the experiment.

For each day and variant: agents exposed so far, and the GMV and counted refunds of their window
purchases so far, giving net GMV per exposed agent and the return rate as they stood that day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.abtest.outcomes import Outcomes

DAY = pd.Timedelta(days=1)


def _cumulative(
    ts: pd.Series, start: pd.Timestamp, n_days: int, weights: pd.Series | None = None
) -> np.ndarray:
    """Count (or sum of `weights`) of events up to the end of each day since `start`."""
    idx = ((ts - start) // DAY).to_numpy(dtype=np.int64).clip(0, n_days - 1)
    w = None if weights is None else weights.to_numpy(dtype=float)
    return np.cumsum(np.bincount(idx, weights=w, minlength=n_days))


def daily_cumulative(outcomes: Outcomes) -> pd.DataFrame:
    """One row per (day, variant): date, agents, gmv, refunds, net_gmv_per_agent, return_rate.

    Days run from the experiment's start to the last counted purchase or refund.
    """
    table = outcomes.table
    start = outcomes.start.floor("D")
    last = max(
        [table["first_exposure"].max()]
        + [frame["ts"].max() for frame in (outcomes.lines, outcomes.refunds) if len(frame)]
    )
    n_days = int((last.floor("D") - start) / DAY) + 1
    variant_of = table.set_index("agent_id")["variant"]
    dates = [(start + i * DAY).strftime("%Y-%m-%d") for i in range(n_days)]
    frames = []
    for variant, agents in table.groupby("variant", sort=True):
        lines = outcomes.lines[outcomes.lines["agent_id"].map(variant_of) == variant]
        refunds = outcomes.refunds[outcomes.refunds["agent_id"].map(variant_of) == variant]
        n_agents = _cumulative(agents["first_exposure"], start, n_days)
        gmv = _cumulative(lines["ts"], start, n_days, lines["value"])
        refunded = _cumulative(refunds["ts"], start, n_days, refunds["value"])
        with np.errstate(divide="ignore", invalid="ignore"):
            net = np.where(n_agents > 0, (gmv - refunded) / n_agents, np.nan)
            rate = np.where(gmv > 0, refunded / gmv, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "date": dates,
                    "variant": variant,
                    "agents": n_agents.astype(np.int64),
                    "gmv": gmv,
                    "refunds": refunded,
                    "net_gmv_per_agent": net,
                    "return_rate": rate,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
