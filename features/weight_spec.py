"""The interaction-weight rules as data, plus one formula any engine evaluates (issue 7, 1).

`WeightRules.from_weights` turns `InteractionWeights` into plain rules: per purchase line, a sum of
coefficients times count columns (units bought, returned, returned for a fault); per share, a
constant; both decayed by age; then per (user, SKU) pair an optional log scale and a clip at zero.
`line_weight`, `share_weight` and `finish_pair` write that formula once, over an `Ops` namespace:
numpy arrays (`NUMPY_OPS`) or Spark column expressions (`features.spark_interactions`) go through
the same code, so the local and Spark engines cannot drift apart. `from_weights` refuses an
`InteractionWeights` field it does not know, so a new knob cannot be silently ignored by an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from features.weights import InteractionWeights, as_weights
from recsys.columns import Columns
from recsys.data.dataset import FAULT_RETURNED_QTY, RETURNED_QTY

C = Columns
NS_PER_DAY = 86_400 * 10**9
# Every InteractionWeights field and where the rules below use it.
KNOWN_FIELDS: frozenset[str] = frozenset(
    {
        "share_weight",
        "purchase_weight",
        "return_weight",
        "fault_return_extra",
        "half_life_days",
        "log_scale",
        "clip_negative",
    }
)

T = TypeVar("T")


class Ops(Protocol[T]):
    """The few element-wise functions the formula needs beyond + − × ÷ (numpy or Spark)."""

    def exp2(self, x: T) -> T:
        """2 ** x."""
        ...

    def maximum(self, x: T, floor: float) -> T:
        """max(x, floor)."""
        ...

    def signed_log1p(self, x: T) -> T:
        """sign(x) · log1p(|x|)."""
        ...


class NumpyOps:
    """`Ops` over numpy float64 arrays."""

    def exp2(self, x: np.ndarray) -> np.ndarray:
        """2 ** x."""
        return np.exp2(x)

    def maximum(self, x: np.ndarray, floor: float) -> np.ndarray:
        """max(x, floor)."""
        return np.maximum(x, floor)

    def signed_log1p(self, x: np.ndarray) -> np.ndarray:
        """sign(x) · log1p(|x|)."""
        return np.sign(x) * np.log1p(np.abs(x))


NUMPY_OPS = NumpyOps()


@dataclass(frozen=True)
class WeightRules:
    """Interaction weights as rules an engine interprets.

    Attributes
    ----------
    line_terms
        (column of a purchase line, coefficient): a line's net weight is the sum of
        coefficient × column before decay.
    share_value
        Weight of one share before decay (0: shares are left out).
    half_life_days
        Age at which an event weighs half (None: no decay).
    log_scale, clip_negative
        Per-pair finishing: sign(w)·log1p(|w|), then max(w, 0).
    """

    line_terms: tuple[tuple[str, float], ...]
    share_value: float
    half_life_days: float | None
    log_scale: bool
    clip_negative: bool

    @classmethod
    def from_weights(
        cls, weights: InteractionWeights | Mapping[str, object] | None = None
    ) -> WeightRules:
        """The rules of `weights` (None = the defaults).

        Raises
        ------
        NotImplementedError
            If InteractionWeights has a field these rules do not interpret.
        """
        w = as_weights(weights)
        unknown = set(type(w).model_fields) - KNOWN_FIELDS
        if unknown:
            raise NotImplementedError(
                f"InteractionWeights field(s) {sorted(unknown)} are not in "
                "features/weight_spec.py: add them to WeightRules so every engine applies them"
            )
        return cls(
            line_terms=(
                (C.QTY, w.purchase_weight),
                (RETURNED_QTY, -w.return_weight),
                (FAULT_RETURNED_QTY, -w.fault_return_extra),
            ),
            share_value=w.share_weight,
            half_life_days=w.half_life_days,
            log_scale=w.log_scale,
            clip_negative=w.clip_negative,
        )

    @property
    def line_columns(self) -> tuple[str, ...]:
        """The purchase-line columns the line weight reads."""
        return tuple(col for col, _ in self.line_terms)


def age_days(ts_ns: Any, cutoff_ns: int) -> Any:
    """Age in days at `cutoff_ns` of events at `ts_ns` (int64 ns since the epoch, UTC)."""
    return (cutoff_ns - ts_ns) / NS_PER_DAY


def decay(age: T, rules: WeightRules, ops: Ops[T]) -> T | float:
    """Recency factor 0.5 ** (max(age, 0) / half_life) (1.0 without decay)."""
    if rules.half_life_days is None:
        return 1.0
    return ops.exp2(-ops.maximum(age, 0.0) / rules.half_life_days)  # type: ignore[operator]


def line_weight(columns: Mapping[str, T], age: T, rules: WeightRules, ops: Ops[T]) -> T:
    """Net weight of each purchase line: Σ coefficient · column, decayed by its age."""
    net: Any = 0.0
    for col, coefficient in rules.line_terms:
        net = net + coefficient * columns[col]  # type: ignore[operator]
    return net * decay(age, rules, ops)  # type: ignore[no-any-return]


def share_weight(age: T, rules: WeightRules, ops: Ops[T]) -> T | float:
    """Weight of each share: the share value decayed by its age."""
    return rules.share_value * decay(age, rules, ops)  # type: ignore[operator,no-any-return]


def finish_pair(value: T, rules: WeightRules, ops: Ops[T]) -> T:
    """A pair's summed weight after `log_scale` and `clip_negative`."""
    out = value
    if rules.log_scale:
        out = ops.signed_log1p(out)
    if rules.clip_negative:
        out = ops.maximum(out, 0.0)
    return out
