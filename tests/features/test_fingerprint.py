"""The data fingerprint: stable under row order and dtype, sensitive to every value."""

from __future__ import annotations

import pandas as pd
import pytest

from features.fingerprint import fingerprint_tables, flat_fingerprint
from recsys.columns import Columns, Tables
from tests.features.tiny import random_tables, shuffled, tiny_tables

C = Columns


def test_fingerprint_same_for_reordered_rows() -> None:
    tables = random_tables(3)
    assert fingerprint_tables(tables) == fingerprint_tables(shuffled(tables, 5))


def test_fingerprint_ignores_dtype_and_extra_columns() -> None:
    tables = tiny_tables()
    other = tiny_tables()
    other[Tables.AGENTS][C.AGENT_ID] = other[Tables.AGENTS][C.AGENT_ID].astype("string")
    other[Tables.AGENTS][C.TIER] = other[Tables.AGENTS][C.TIER].astype("Int64")
    other[Tables.PURCHASES]["_source_row"] = range(len(other[Tables.PURCHASES]))
    assert fingerprint_tables(other)["digest"] == fingerprint_tables(tables)["digest"]


@pytest.mark.parametrize(
    ("table", "column", "row", "value"),
    [
        (Tables.PURCHASES, C.QTY, 2, 5),
        (Tables.PURCHASES, C.TS, 0, pd.Timestamp("2024-02-02 00:00:01", tz="UTC")),
        (Tables.PURCHASES, C.SHARE_ID, 4, "sh1"),  # a null becomes a value
        (Tables.SKUS, C.TAGS, 1, ["organic", "gift"]),  # list order is content
        (Tables.SKUS, C.SERIES, 1, ""),  # an empty string is not a null
        (Tables.RETURNS, C.REASON, 0, "quality"),
        (Tables.AGENTS, C.TIER, 0, 3),
    ],
)
def test_fingerprint_changes_when_a_value_changes(
    table: str, column: str, row: int, value: object
) -> None:
    before = fingerprint_tables(tiny_tables())
    tables = tiny_tables()
    tables[table].at[row, column] = value
    after = fingerprint_tables(tables)
    assert after["digest"] != before["digest"]
    assert after[table]["hash"] != before[table]["hash"]
    unchanged = [t for t in Tables.ALL if t != table]
    assert all(after[t] == before[t] for t in unchanged)


def test_fingerprint_changes_when_a_row_is_dropped_or_duplicated() -> None:
    tables = tiny_tables()
    base = fingerprint_tables(tables)[Tables.RETURNS]
    dropped = dict(tables, returns=tables[Tables.RETURNS].iloc[1:])
    doubled = dict(
        tables, returns=pd.concat([tables[Tables.RETURNS], tables[Tables.RETURNS].iloc[:1]])
    )
    for other in (dropped, doubled):
        assert fingerprint_tables(other)[Tables.RETURNS]["hash"] != base["hash"]


def test_fingerprint_counts_rows_and_time_range() -> None:
    fp = fingerprint_tables(tiny_tables())
    assert set(fp) == {"digest", *Tables.ALL}
    purchases = fp[Tables.PURCHASES]
    assert purchases["rows"] == 7
    assert purchases["min_ts"] == "2024-02-02T00:00:00+00:00"
    assert purchases["max_ts"] == "2024-03-03T00:00:00+00:00"
    assert fp[Tables.SKUS]["max_ts"] == "2024-03-10T00:00:00+00:00"  # launched_at
    flat = flat_fingerprint(fp)
    assert flat["data.digest"] == fp["digest"]
    assert flat["data.purchases.rows"] == "7"


def test_fingerprint_of_empty_tables() -> None:
    empty = {k: v.iloc[:0] for k, v in tiny_tables().items()}
    fp = fingerprint_tables(empty)
    assert fp[Tables.PURCHASES] == {
        "hash": fp[Tables.PURCHASES]["hash"],
        "rows": 0,
        "min_ts": None,
        "max_ts": None,
    }
    assert fp["digest"] != fingerprint_tables(tiny_tables())["digest"]


def test_fingerprint_rejects_a_table_named_digest() -> None:
    with pytest.raises(ValueError, match="may not be named 'digest'"):
        fingerprint_tables({"digest": tiny_tables()[Tables.SKUS]})
