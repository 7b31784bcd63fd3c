"""Index-level event rows one simulated day produces (ids are ints; see `output` for strings)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Self

import numpy as np

CHANNEL_GROUP, CHANNEL_MOMENTS = 0, 1
CHANNEL_NAMES: tuple[str, ...] = ("group", "moments")

# where a purchase line came from (kept in memory for analysis; not written to the tables)
SOURCE_SHARE, SOURCE_FORWARD, SOURCE_STOREFRONT, SOURCE_REPURCHASE = 0, 1, 2, 3
SOURCE_NAMES: tuple[str, ...] = ("share", "forward", "storefront", "repurchase")

NO_SHARE = -1  # share_id of a storefront purchase; audience of a moments share


class _Rows:
    """Aligned column arrays with concatenation and row selection."""

    def __len__(self) -> int:
        return len(getattr(self, dataclasses.fields(self)[0].name))  # type: ignore[arg-type]

    def take(self, rows: np.ndarray) -> Self:
        """The rows at `rows` (indices or a boolean mask)."""
        cls = type(self)
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return cls(**{f.name: getattr(self, f.name)[rows] for f in fields})

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        """All rows of `parts`, in order."""
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields})


@dataclass
class ShareRows(_Rows):
    """Shares: an agent posting a SKU to her group (or to moments)."""

    share_id: np.ndarray  # int64
    ts: np.ndarray  # int64 seconds since the Unix epoch
    agent: np.ndarray  # int32 agent index
    sku: np.ndarray  # int32 SKU index
    channel: np.ndarray  # int8, CHANNEL_*
    audience: np.ndarray  # int64, group size at posting; NO_SHARE for moments


@dataclass
class PurchaseRows(_Rows):
    """Order lines; `agent` gets the commission, `share_id` is NO_SHARE for storefront buys."""

    purchase_id: np.ndarray  # int64
    order_id: np.ndarray  # int64
    ts: np.ndarray  # int64 seconds
    customer: np.ndarray  # int32 customer index
    agent: np.ndarray  # int32 agent index
    sku: np.ndarray  # int32 SKU index
    qty: np.ndarray  # int64
    unit_price: np.ndarray  # float64
    share_id: np.ndarray  # int64
    source: np.ndarray  # int8, SOURCE_*


@dataclass
class ReturnRows(_Rows):
    """Returns of purchase lines, with the cause the simulator drew and the reason reported."""

    return_id: np.ndarray  # int64
    ts: np.ndarray  # int64 seconds
    purchase_id: np.ndarray  # int64
    qty: np.ndarray  # int64
    reason: np.ndarray  # int8 index into recsys.columns.RETURN_REASONS
    cause: np.ndarray  # int8, dynamics.CAUSE_* (truth only)


def empty_rows(cls: type[_Rows]) -> _Rows:
    """A rows object of `cls` with no rows."""
    return cls(**{f.name: np.empty(0, dtype=np.int64) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


@dataclass
class DayEvents:
    """Everything that happened on one day; every `ts` lies within that day."""

    day: int
    shares: ShareRows
    purchases: PurchaseRows
    returns: ReturnRows
