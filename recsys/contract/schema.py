"""Schemas of the six tables of a data directory (see docs/data-contract.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from recsys.columns import RETURN_REASONS, SKU_STATUSES, TIERS, Columns, Tables

C = Columns
Kind = Literal["id", "str", "float", "int", "ts", "list"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its kind, whether it may be null, and the values it may take."""

    name: str
    kind: Kind
    nullable: bool = False
    min_value: float | None = None  # inclusive
    max_value: float | None = None  # inclusive
    gt_value: float | None = None  # exclusive lower bound (price > 0)
    allowed: tuple[str | int, ...] | None = None
    # The id of an event (a share, a line, an order, a return): millions of nearly distinct
    # values, kept as Arrow-backed `str` (docs/data-contract.md) rather than one Python object each.
    event_id: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """`column` must name an existing (and kept) row of `ref_table`."""

    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class TableSpec:
    """A table: its columns, primary key and references to other tables."""

    name: str
    columns: tuple[ColumnSpec, ...]
    primary_key: str
    foreign_keys: tuple[ForeignKey, ...] = field(default=())
    # timestamp column checked against a sane range
    time_column: str | None = None

    @property
    def column_names(self) -> list[str]:
        """Names of the columns in contract order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        """The spec of column `name`."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


SKUS = TableSpec(
    name=Tables.SKUS,
    columns=(
        ColumnSpec(C.SKU_ID, "id"),
        ColumnSpec(C.TITLE, "str"),
        ColumnSpec(C.CATEGORY, "str"),
        ColumnSpec(C.SERIES, "str", nullable=True),
        ColumnSpec(C.BRAND, "str"),
        ColumnSpec(C.PRICE, "float", gt_value=0.0),
        ColumnSpec(C.TAGS, "list"),
        ColumnSpec(C.LAUNCHED_AT, "ts"),
        ColumnSpec(C.REGIONS, "list"),
        ColumnSpec(C.STATUS, "str", allowed=SKU_STATUSES),
    ),
    primary_key=C.SKU_ID,
    time_column=C.LAUNCHED_AT,
)

AGENTS = TableSpec(
    name=Tables.AGENTS,
    columns=(
        ColumnSpec(C.AGENT_ID, "id"),
        ColumnSpec(C.REGION, "str"),
        ColumnSpec(C.TIER, "int", allowed=TIERS),
        ColumnSpec(C.JOINED_AT, "ts"),
    ),
    primary_key=C.AGENT_ID,
    time_column=C.JOINED_AT,
)

CUSTOMERS = TableSpec(
    name=Tables.CUSTOMERS,
    columns=(
        ColumnSpec(C.CUSTOMER_ID, "id"),
        ColumnSpec(C.REGION, "str"),
        ColumnSpec(C.AGENT_ID, "id"),
        ColumnSpec(C.JOINED_AT, "ts"),
    ),
    primary_key=C.CUSTOMER_ID,
    foreign_keys=(ForeignKey(C.AGENT_ID, Tables.AGENTS, C.AGENT_ID),),
    time_column=C.JOINED_AT,
)

SHARES = TableSpec(
    name=Tables.SHARES,
    columns=(
        ColumnSpec(C.SHARE_ID, "id", event_id=True),
        ColumnSpec(C.TS, "ts"),
        ColumnSpec(C.AGENT_ID, "id"),
        ColumnSpec(C.SKU_ID, "id"),
        ColumnSpec(C.CHANNEL, "str"),
        ColumnSpec(C.AUDIENCE_SIZE, "int", nullable=True, min_value=0),
    ),
    primary_key=C.SHARE_ID,
    foreign_keys=(
        ForeignKey(C.AGENT_ID, Tables.AGENTS, C.AGENT_ID),
        ForeignKey(C.SKU_ID, Tables.SKUS, C.SKU_ID),
    ),
    time_column=C.TS,
)

PURCHASES = TableSpec(
    name=Tables.PURCHASES,
    columns=(
        ColumnSpec(C.PURCHASE_ID, "id", event_id=True),
        ColumnSpec(C.ORDER_ID, "id", event_id=True),
        ColumnSpec(C.TS, "ts"),
        ColumnSpec(C.CUSTOMER_ID, "id"),
        ColumnSpec(C.AGENT_ID, "id"),
        ColumnSpec(C.SKU_ID, "id"),
        ColumnSpec(C.QTY, "int", min_value=1),
        ColumnSpec(C.UNIT_PRICE, "float", min_value=0.0),
        ColumnSpec(C.SHARE_ID, "id", nullable=True, event_id=True),
    ),
    primary_key=C.PURCHASE_ID,
    foreign_keys=(
        ForeignKey(C.CUSTOMER_ID, Tables.CUSTOMERS, C.CUSTOMER_ID),
        ForeignKey(C.AGENT_ID, Tables.AGENTS, C.AGENT_ID),
        ForeignKey(C.SKU_ID, Tables.SKUS, C.SKU_ID),
        ForeignKey(C.SHARE_ID, Tables.SHARES, C.SHARE_ID),
    ),
    time_column=C.TS,
)

RETURNS = TableSpec(
    name=Tables.RETURNS,
    columns=(
        ColumnSpec(C.RETURN_ID, "id", event_id=True),
        ColumnSpec(C.TS, "ts"),
        ColumnSpec(C.PURCHASE_ID, "id", event_id=True),
        ColumnSpec(C.QTY, "int", min_value=1),
        ColumnSpec(C.REASON, "str", allowed=RETURN_REASONS),
    ),
    primary_key=C.RETURN_ID,
    foreign_keys=(ForeignKey(C.PURCHASE_ID, Tables.PURCHASES, C.PURCHASE_ID),),
    time_column=C.TS,
)

SCHEMAS: dict[str, TableSpec] = {
    s.name: s for s in (SKUS, AGENTS, CUSTOMERS, SHARES, PURCHASES, RETURNS)
}


# pandas dtype of each column kind in a typed (validated) table; nullable ints use `Int64`.
KIND_DTYPES: dict[str, str] = {
    "id": "object",
    "str": "object",
    "float": "float64",
    "int": "int64",
    "ts": "datetime64[ns, UTC]",
    "list": "object",
}
# Event ids (`ColumnSpec.event_id`): pandas' Arrow-backed string dtype with NaN for missing values
# (pandas 3's default `str`): comparisons give plain bools, values stay in Arrow until read as str.
EVENT_ID_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)


def column_dtype(spec: ColumnSpec) -> str | pd.api.extensions.ExtensionDtype:
    """The pandas dtype of a typed column of this spec."""
    if spec.event_id:
        return EVENT_ID_DTYPE
    return "Int64" if spec.kind == "int" and spec.nullable else KIND_DTYPES[spec.kind]


def empty_table(table: str) -> pd.DataFrame:
    """A typed table with no rows: the contract's columns, in order, with their dtypes."""
    spec = SCHEMAS[table]
    return pd.DataFrame({c.name: pd.Series([], dtype=column_dtype(c)) for c in spec.columns})
