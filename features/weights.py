"""How much each share, purchase and return weighs in an interaction matrix (docs/features.md).

Per (user, SKU) pair the weight is a sum over that pair's events before the cutoff:

    w = share_weight · Σ_shares d(t_share)
      + Σ_lines (purchase_weight · qty − return_weight · returned
                 − fault_return_extra · fault) · d(t_line)

with d(t) = 0.5 ** ((cutoff − t) / half_life_days) (d = 1 without decay). A return is decayed with
its purchase line, so a fully returned line nets to exactly zero whenever it happened. Then
optionally w ← sign(w)·log1p(|w|) (`log_scale`) and w ← max(w, 0) (`clip_negative`); pairs whose
weight ends at zero are not stored in the matrix.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys.columns import Columns
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY

C = Columns
NS_PER_DAY = 86_400 * 10**9


class InteractionWeights(BaseModel):
    """The weights of shares, purchases and returns in an interaction matrix.

    Attributes
    ----------
    share_weight
        Weight of one share of a SKU by an agent (agent target only): a weak positive, since
        sharing shows intent but not that her customers want it.
    purchase_weight
        Weight per unit bought (by the customer, or by the agent's customers for agents).
    return_weight
        Weight subtracted per unit returned, whatever the reason; at the default (equal to
        `purchase_weight`) a returned unit cancels its purchase.
    fault_return_extra
        Extra weight subtracted per unit returned for `quality` or `not_as_described`: the product
        was at fault, which counts against the pair beyond cancelling the sale.
    half_life_days
        Recency decay: an event `half_life_days` before the cutoff weighs half. None = no decay.
    log_scale
        Dampen heavy pairs: w ← sign(w)·log1p(|w|) after summing the events of a pair.
    clip_negative
        Net-negative pairs become 0 and are dropped from the matrix (so a model neither learns
        them as positives nor treats them as "seen"); their lines stay in `Dataset.events`.
        False keeps negative weights (for models that read them as negative feedback).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    share_weight: float = Field(0.3, ge=0.0)
    purchase_weight: float = Field(1.0, ge=0.0)
    return_weight: float = Field(1.0, ge=0.0)
    fault_return_extra: float = Field(1.0, ge=0.0)
    half_life_days: float | None = Field(None, gt=0.0)
    log_scale: bool = False
    clip_negative: bool = True

    def flat(self) -> dict[str, str]:
        """Parameters as strings keyed `weights.<name>`, for logging."""
        return {f"weights.{k}": str(v) for k, v in self.model_dump().items()}


def as_weights(
    weights: InteractionWeights | Mapping[str, object] | None,
) -> InteractionWeights:
    """`weights` as an InteractionWeights (None = the defaults; a mapping is validated).

    Raises
    ------
    pydantic.ValidationError
        If a mapping has an unknown key or an invalid value (e.g. a negative weight).
    TypeError
        If `weights` is of another type.
    """
    if weights is None:
        return InteractionWeights()
    if isinstance(weights, InteractionWeights):
        return weights
    if isinstance(weights, Mapping):
        return InteractionWeights.model_validate(dict(weights))
    raise TypeError(
        f"weights must be an InteractionWeights, a dict or None, got {type(weights).__name__}"
    )


def decay(ts_ns: np.ndarray, cutoff: pd.Timestamp, half_life_days: float | None) -> np.ndarray:
    """Recency factor 0.5 ** (age_days / half_life_days) of each event (all ones without decay).

    `ts_ns` holds the event times as int64 nanoseconds since the epoch (UTC).
    """
    if half_life_days is None:
        return np.ones(len(ts_ns), dtype=np.float64)
    age_days = (cutoff.value - np.asarray(ts_ns, dtype=np.int64)) / NS_PER_DAY
    return np.exp2(-np.maximum(age_days, 0.0) / half_life_days)


def line_weights(
    lines: pd.DataFrame, weights: InteractionWeights, cutoff: pd.Timestamp
) -> np.ndarray:
    """Net float64 weight of each purchase line (units bought minus returned, decayed)."""
    net = (
        weights.purchase_weight * lines[C.QTY].to_numpy(dtype=np.float64)
        - weights.return_weight * lines[RETURNED_QTY].to_numpy(dtype=np.float64)
        - weights.fault_return_extra * lines[FAULT_RETURNED_QTY].to_numpy(dtype=np.float64)
    )
    ts_ns = lines[C.TS].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return net * decay(ts_ns, cutoff, weights.half_life_days)


def share_weights(
    ts_ns: np.ndarray, weights: InteractionWeights, cutoff: pd.Timestamp
) -> np.ndarray:
    """Float64 weight of each share made at `ts_ns` (int64 ns, UTC): decayed `share_weight`."""
    return weights.share_weight * decay(ts_ns, cutoff, weights.half_life_days)


def finish_pair_weights(values: np.ndarray, weights: InteractionWeights) -> np.ndarray:
    """Apply `log_scale` and `clip_negative` to summed pair weights (a new array)."""
    out = np.asarray(values, dtype=np.float64)
    if weights.log_scale:
        out = np.sign(out) * np.log1p(np.abs(out))
    if weights.clip_negative:
        out = np.maximum(out, 0.0)
    return out
