"""Ground truth of a simulated experiment: each agent's expected outcomes in every arm.

An exposed agent's attribution window `[t0, t0 + window)` lies wholly after her first exposure,
so her purchase lines in it are Poisson with mean `lines_per_day x activity x lift x window`.
A line is bought from her first feed with probability `rec_line_share` (a uniform slot) and by
popularity otherwise, has `1 + Poisson(mean_extra_qty)` units, and is returned whole with
probability `min(1, return_prob x return_mult)` after a lognormal delay, counted when it comes
within `return_days`. Expected GMV and returned value follow in closed form; the true effect on a
per-agent mean is the average over the analysed agents of the difference of their expectations
(the sample average treatment effect), and on a ratio it is the difference of the ratios of the
summed expectations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from recsys.abtest.sim_config import ABSimConfig

if TYPE_CHECKING:
    from recsys.abtest.simulate import World


def agent_truth(config: ABSimConfig, world: World) -> pd.DataFrame:
    """Per exposed agent: arm, and expected GMV and returned value in each arm's window."""
    w = world
    exposed = np.nonzero(~np.isnan(w.first_ts))[0]
    q = config.rec_line_share
    e_qty = 1.0 + config.mean_extra_qty
    counted = stats.lognorm.cdf(
        config.return_days, s=config.return_delay_sigma, scale=config.return_delay_median_days
    )
    price, pop, rho = w.price, w.popularity, w.return_prob
    feed = w.first_feed[exposed]
    lines = config.lines_per_day * w.activity[exposed] * config.window_days
    out = pd.DataFrame(
        {
            "agent_id": [f"A{i:06d}" for i in exposed.tolist()],
            "variant": np.array(config.variants, dtype=object)[w.arm[exposed]],
        }
    )
    value = e_qty * (q * price[feed].mean(axis=1) + (1 - q) * (pop * price).sum())
    for i, name in enumerate(config.variants):
        effect = config.effect(i)
        p_ret = np.minimum(1.0, rho * effect.return_mult)
        ret = (
            e_qty
            * counted
            * (q * (price * p_ret)[feed].mean(axis=1) + (1 - q) * (pop * price * p_ret).sum())
        )
        n = lines * effect.purchase_lift
        out[f"gmv_{name}"] = n * value
        out[f"returned_value_{name}"] = n * ret
        out[f"net_gmv_{name}"] = n * (value - ret)
    return out


def true_effects(truth: pd.DataFrame, control: str, treatment: str) -> dict[str, dict[str, float]]:
    """True absolute and relative effects of `treatment` over `control` on the known metrics."""
    out: dict[str, dict[str, float]] = {}
    for metric, col in (("net_gmv_per_agent", "net_gmv"), ("gmv_per_agent", "gmv")):
        c, t = truth[f"{col}_{control}"], truth[f"{col}_{treatment}"]
        out[metric] = {
            "control": float(c.mean()),
            "treatment": float(t.mean()),
            "effect": float((t - c).mean()),
            "rel_effect": float(t.sum() / c.sum() - 1),
        }
    rate = {
        v: truth[f"returned_value_{v}"].sum() / truth[f"gmv_{v}"].sum()
        for v in (control, treatment)
    }
    out["return_rate"] = {
        "control": float(rate[control]),
        "treatment": float(rate[treatment]),
        "effect": float(rate[treatment] - rate[control]),
        "rel_effect": float(rate[treatment] / rate[control] - 1),
    }
    return out
