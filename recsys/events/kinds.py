"""Event kinds: the columns each one carries, the table it lands in, and its Parquet schema.

Shares, purchases and returns carry their contract table's columns (docs/data-contract.md) plus
`event_id`, the client-made idempotency key; clicks and exposures are tables of their own, next
to the contract's six in a data directory (the loader ignores them).
"""

from __future__ import annotations

import pyarrow as pa

from recsys.columns import Columns, Tables
from recsys.contract.schema import SCHEMAS, ColumnSpec, TableSpec

C = Columns
EVENT_ID = "event_id"
KIND = "kind"
REQUEST_ID = "request_id"
# Keeps the Redis keys that remember recent event ids small.
MAX_EVENT_ID_LENGTH = 128
MAX_BATCH = 1_000

CLICKS_TABLE = "clicks"
EXPOSURES_TABLE = "exposures"

# kind -> table it lands in
KIND_TABLES: dict[str, str] = {
    "share": Tables.SHARES,
    "purchase": Tables.PURCHASES,
    "return": Tables.RETURNS,
    "click": CLICKS_TABLE,
}
KINDS: tuple[str, ...] = tuple(KIND_TABLES)
# Tables the sink writes: the three contract event tables, then its own two.
EVENT_TABLES: tuple[str, ...] = (Tables.SHARES, Tables.PURCHASES, Tables.RETURNS)
SINK_TABLES: tuple[str, ...] = (*EVENT_TABLES, CLICKS_TABLE, EXPOSURES_TABLE)

CLICKS = TableSpec(
    name=CLICKS_TABLE,
    columns=(
        ColumnSpec(EVENT_ID, "id"),
        ColumnSpec(C.TS, "ts"),
        ColumnSpec(C.AGENT_ID, "id"),
        ColumnSpec(C.CUSTOMER_ID, "id", nullable=True),
        ColumnSpec(C.SKU_ID, "id"),
        ColumnSpec(REQUEST_ID, "id", nullable=True),
    ),
    primary_key=EVENT_ID,
    time_column=C.TS,
)


def _with_event_id(spec: TableSpec) -> TableSpec:
    """A contract table's spec with `event_id` after its own columns."""
    return TableSpec(
        name=spec.name,
        columns=(*spec.columns, ColumnSpec(EVENT_ID, "id")),
        primary_key=spec.primary_key,
        foreign_keys=spec.foreign_keys,
        time_column=spec.time_column,
    )


# The columns each kind's events carry, in the order they are written.
EVENT_SPECS: dict[str, TableSpec] = {
    kind: CLICKS if table == CLICKS_TABLE else _with_event_id(SCHEMAS[table])
    for kind, table in KIND_TABLES.items()
}

# Timestamps are kept to the microsecond: what Parquet readers everywhere agree on.
TS_TYPE = pa.timestamp("us", tz="UTC")
_ARROW_KINDS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "str": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "ts": TS_TYPE,
    "list": pa.list_(pa.string()),
}


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The Parquet schema of an event table, column by column from its spec."""
    return pa.schema([pa.field(c.name, _ARROW_KINDS[c.kind]) for c in spec.columns])


# Exposures: one served feed per row (fields of serving/exposures.py; docs/events.md). `event_id`
# is the stream entry id: unique in the stream and the same on every redelivery.
EXPOSURE_SCHEMA = pa.schema(
    [
        pa.field(EVENT_ID, pa.string()),
        pa.field(REQUEST_ID, pa.string()),
        pa.field(C.TS, TS_TYPE),
        pa.field("target", pa.string()),
        pa.field(C.AGENT_ID, pa.string()),
        pa.field(C.CUSTOMER_ID, pa.string()),
        pa.field("experiment", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("snapshot", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("sku_ids", pa.list_(pa.string())),
        pa.field("positions", pa.list_(pa.int32())),
        pa.field("source", pa.string()),
    ]
)

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    **{KIND_TABLES[kind]: arrow_schema(spec) for kind, spec in EVENT_SPECS.items()},
    EXPOSURES_TABLE: EXPOSURE_SCHEMA,
}
