"""Drawing returns of purchase lines: whether, why, when and how many units."""

from __future__ import annotations

import numpy as np

from recsys.columns import RETURN_REASONS
from recsys.simulation.dynamics import (
    CAUSE_INCIDENT,
    CAUSE_MISMATCH,
    CAUSE_QUALITY,
    CAUSE_RANDOM,
    category_arrays,
)
from recsys.simulation.world import SECONDS_PER_DAY, World

_R = {name: i for i, name in enumerate(RETURN_REASONS)}


def draw_returns(
    world: World,
    rng: np.random.Generator,
    sku: np.ndarray,
    ts: np.ndarray,
    qty: np.ndarray,
    hazards: np.ndarray,
) -> dict[str, np.ndarray]:
    """Decide which lines come back and draw each return's cause, reason, ts and qty.

    Returns aligned arrays over the returned lines: `line` (index into the inputs), `cause`,
    `reason` (index into RETURN_REASONS), `ts` (seconds, after the purchase) and `qty`
    (1..purchased qty).
    """
    n = len(sku)
    p_return = 1.0 - np.prod(1.0 - hazards, axis=1)
    line = np.flatnonzero(rng.random(n) < p_return)
    h = hazards[line]
    # the cause is drawn in proportion to each cause's hazard
    cum = np.cumsum(h, axis=1)
    pick = rng.random(len(line)) * cum[:, -1]
    cause = np.minimum((pick[:, None] >= cum).sum(axis=1), h.shape[1] - 1).astype(np.int8)

    cfg, cats = world.config, category_arrays(world.config)
    cat = world.skus.category[sku[line]]
    u = rng.random(len(line))
    reason = np.select(
        [
            cause == CAUSE_QUALITY,
            cause == CAUSE_MISMATCH,
            cause == CAUSE_RANDOM,
            cause == CAUSE_INCIDENT,
        ],
        [
            np.where(u < cats.damaged_share[cat], _R["damaged"], _R["quality"]),
            np.where(u < cats.fit_share[cat], _R["fit"], _R["not_as_described"]),
            np.where(u < cfg.changed_mind_share, _R["changed_mind"], _R["other"]),
            np.where(u < cfg.incident_quality_share, _R["quality"], _R["not_as_described"]),
        ],
    ).astype(np.int8)

    delay = cats.delay_days[cat] * rng.lognormal(0.0, cfg.return_delay_sigma, len(line))
    delay = np.maximum(delay, cfg.min_return_delay_days)
    return_ts = ts[line] + (delay * SECONDS_PER_DAY).astype(np.int64)

    bought = qty[line]
    whole = (bought == 1) | (rng.random(len(line)) < cfg.full_return_share)
    partial = 1 + (rng.random(len(line)) * bought).astype(np.int64)
    return {
        "line": line,
        "cause": cause,
        "reason": reason,
        "ts": return_ts,
        "qty": np.where(whole, bought, np.minimum(partial, bought)),
    }
