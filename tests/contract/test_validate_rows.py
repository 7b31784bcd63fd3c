"""Row-level checks: types, nullability, ranges, allowed values, lists, timestamp range."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables as T
from recsys.contract.schema import EVENT_ID_DTYPE
from recsys.contract.validate import validate_tables
from tests.contract.conftest import NOW, record

EARLIEST = "2000-01-01T00:00:00+00:00"
LATEST = "2025-07-02T00:00:00+00:00 (now 2025-07-01T00:00:00+00:00 + 1 day)"
TS_EXAMPLE = "must be an ISO-8601 timestamp such as 2025-01-31T08:00:00+00:00"
LIST_RULE = "must be a list of non-empty texts ('|'-separated in CSV)"

# (table, 1-based row, column, bad raw text, reason_code, reason)
BAD_CELLS = [
    (T.SKUS, 1, C.PRICE, "abc", "bad_type", "price must be a number, got 'abc'"),
    (T.SKUS, 1, C.PRICE, "inf", "bad_type", "price must be a number, got 'inf'"),
    (T.PURCHASES, 4, C.TS, "2025-13-45", "bad_type", f"ts {TS_EXAMPLE}, got '2025-13-45'"),
    (T.PURCHASES, 2, C.QTY, "1.5", "bad_type", "qty must be a whole number, got '1.5'"),
    (
        T.SHARES,
        1,
        C.AUDIENCE_SIZE,
        "many",
        "bad_type",
        "audience_size must be a whole number, got 'many'",
    ),
    (T.SKUS, 2, C.TITLE, None, "null", "title is empty but required"),
    (T.PURCHASES, 2, C.CUSTOMER_ID, None, "null", "customer_id is empty but required"),
    (T.PURCHASES, 1, C.TS, None, "null", "ts is empty but required"),
    (T.SKUS, 3, C.PRICE, "-3.5", "out_of_range", "price must be > 0, got -3.5"),
    (T.SKUS, 3, C.PRICE, "0", "out_of_range", "price must be > 0, got 0"),
    (T.PURCHASES, 2, C.QTY, "0", "out_of_range", "qty must be >= 1, got 0"),
    (T.PURCHASES, 2, C.UNIT_PRICE, "-0.01", "out_of_range", "unit_price must be >= 0, got -0.01"),
    (T.SHARES, 2, C.AUDIENCE_SIZE, "-1", "out_of_range", "audience_size must be >= 0, got -1"),
    (T.RETURNS, 1, C.QTY, "0", "out_of_range", "qty must be >= 1, got 0"),
    (T.AGENTS, 1, C.TIER, "6", "not_allowed", "tier must be one of 1, 2, 3, 4, 5, got 6"),
    (
        T.SKUS,
        1,
        C.STATUS,
        "Active",
        "not_allowed",
        "status must be one of 'active', 'suspended', 'discontinued', got 'Active'",
    ),
    (
        T.RETURNS,
        1,
        C.REASON,
        "bored",
        "not_allowed",
        "reason must be one of 'quality', 'not_as_described', 'damaged', 'fit', 'changed_mind', "
        "'other', got 'bored'",
    ),
    (T.SKUS, 2, C.TAGS, "fresh||frozen", "bad_list", f"tags {LIST_RULE}, got 'fresh||frozen'"),
    (T.SKUS, 3, C.REGIONS, "|east", "bad_list", f"regions {LIST_RULE}, got '|east'"),
    (
        T.AGENTS,
        2,
        C.JOINED_AT,
        "1999-12-31T23:59:59Z",
        "ts_out_of_range",
        f"joined_at 1999-12-31T23:59:59Z is before the earliest accepted {EARLIEST}",
    ),
    (
        T.SHARES,
        1,
        C.TS,
        "2025-07-02T00:00:01Z",
        "ts_out_of_range",
        f"ts 2025-07-02T00:00:01Z is after the latest accepted {LATEST}",
    ),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "code", "reason"), BAD_CELLS)
def test_validate_tables_quarantines_bad_cell(
    raw: dict[str, pd.DataFrame],
    table: str,
    row: int,
    column: str,
    value: str | None,
    code: str,
    reason: str,
) -> None:
    raw[table].loc[row - 1, column] = value
    result = validate_tables(raw, now=NOW)
    found = record(result, table, row)
    assert found["reason_code"] == code
    assert found["column"] == column
    assert found["reason"] == reason
    assert found["value"] == ("" if value is None else value)
    assert found["source_file"].endswith(f"{table}.csv")
    kept_ids = result.tables[table].iloc[:, 0].tolist()
    assert raw[table].iloc[row - 1, 0] not in kept_ids
    assert result.rows_read[table] == len(result.tables[table]) + result.n_quarantined(table)
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("table", "row", "column", "value"),
    [
        (T.SKUS, 1, C.PRICE, "0.01"),
        (T.PURCHASES, 1, C.QTY, "1"),
        (T.PURCHASES, 1, C.UNIT_PRICE, "0"),
        (T.SHARES, 1, C.AUDIENCE_SIZE, "0"),
        (T.SHARES, 1, C.AUDIENCE_SIZE, None),
        (T.AGENTS, 1, C.TIER, "5"),
        (T.AGENTS, 1, C.TIER, "3.0"),
        (T.SKUS, 1, C.SERIES, None),
        (T.SKUS, 1, C.TAGS, None),
        (T.PURCHASES, 1, C.SHARE_ID, None),
        (T.AGENTS, 1, C.JOINED_AT, "2000-01-01"),
        (T.SHARES, 2, C.TS, "2025-07-02T00:00:00Z"),
        (T.SHARES, 2, C.TS, "2025-07-02T08:00:00+08:00"),
    ],
)
def test_validate_tables_keeps_value_on_the_boundary(
    raw: dict[str, pd.DataFrame], table: str, row: int, column: str, value: str | None
) -> None:
    raw[table].loc[row - 1, column] = value
    result = validate_tables(raw, now=NOW)
    assert result.quarantine.empty, result.quarantine.to_dict("records")
    assert result.exit_code == 0


def test_validate_tables_reports_every_problem_of_a_row(raw: dict[str, pd.DataFrame]) -> None:
    raw[T.PURCHASES].loc[3, [C.TS, C.QTY]] = ["2025-13-45", "0"]
    found = record(validate_tables(raw, now=NOW), T.PURCHASES, 4)
    assert found["reason_code"] == "bad_type"  # the first problem names the code
    assert found["reason"] == f"ts {TS_EXAMPLE}, got '2025-13-45'; qty must be >= 1, got 0"


def test_validate_tables_takes_naive_ts_as_utc(raw: dict[str, pd.DataFrame]) -> None:
    # An offset-carrying string followed by naive ones: each is parsed on its own terms.
    raw[T.PURCHASES][C.TS] = [
        "2025-04-01T10:00:00+02:00",
        "2025-04-01T10:00:00",
        "2025-04-03 12:00",
        "2025-05-01",
    ]
    kept = validate_tables(raw, now=NOW).tables[T.PURCHASES]
    expected = pd.Series(
        pd.to_datetime(
            ["2025-04-01T08:00Z", "2025-04-01T10:00Z", "2025-04-03T12:00Z", "2025-05-01T00:00Z"]
        ),
        name=C.TS,
    )
    pd.testing.assert_series_equal(kept[C.TS], expected.astype("datetime64[ns, UTC]"))


def test_validate_tables_reads_lists_from_text(raw: dict[str, pd.DataFrame]) -> None:
    raw[T.SKUS][C.TAGS] = ["frozen|seafood", None, "gift"]
    kept = validate_tables(raw, now=NOW).tables[T.SKUS]
    assert kept[C.TAGS].tolist() == [["frozen", "seafood"], [], ["gift"]]
    assert kept[C.REGIONS].tolist() == [[], ["north", "east"], ["east"]]


def test_validate_tables_types_every_column(raw: dict[str, pd.DataFrame]) -> None:
    result = validate_tables(raw, now=NOW)
    skus = result.tables[T.SKUS]
    assert list(skus.columns) == [
        C.SKU_ID, C.TITLE, C.CATEGORY, C.SERIES, C.BRAND, C.PRICE, C.TAGS, C.LAUNCHED_AT,
        C.REGIONS, C.STATUS,
    ]  # fmt: skip
    assert skus[C.SKU_ID].map(type).eq(str).all()
    assert skus[C.SERIES].tolist() == ["sea", None, "glow"]
    assert skus[C.PRICE].dtype == "float64"
    assert str(skus[C.LAUNCHED_AT].dtype) == "datetime64[ns, UTC]"
    assert skus[C.LAUNCHED_AT].iloc[2] == pd.Timestamp("2025-03-15T00:30:00Z")
    assert result.tables[T.AGENTS][C.TIER].dtype == "int64"
    assert result.tables[T.SHARES][C.AUDIENCE_SIZE].dtype == "Int64"
    assert result.tables[T.SHARES][C.AUDIENCE_SIZE].isna().tolist() == [False, True]
    purchases = result.tables[T.PURCHASES]
    assert purchases[C.QTY].tolist() == [2, 1, 3, 1]
    assert purchases[C.SHARE_ID].dtype == EVENT_ID_DTYPE
    assert purchases[C.SHARE_ID].fillna("-").tolist() == ["H1", "-", "H2", "-"]
    for frame in result.tables.values():
        assert not any(c.startswith("_source") for c in frame.columns)
        assert frame.index.equals(pd.RangeIndex(len(frame)))


def test_validate_tables_converts_numeric_ids_to_strings(raw: dict[str, pd.DataFrame]) -> None:
    # As Parquet would hold them: int ids, and float ids where a nullable column had nulls.
    raw[T.SKUS][C.SKU_ID] = [13085, 2, 3]
    raw[T.SHARES][C.SKU_ID] = [13085, 2]
    raw[T.PURCHASES][C.SKU_ID] = [13085.0, 3.0, 2.0, 13085.0]
    result = validate_tables(raw, now=NOW)
    assert result.quarantine.empty
    assert result.tables[T.SKUS][C.SKU_ID].tolist() == ["13085", "2", "3"]
    assert result.tables[T.PURCHASES][C.SKU_ID].tolist() == ["13085", "3", "2", "13085"]


def test_validate_tables_rejects_fractional_numeric_id(raw: dict[str, pd.DataFrame]) -> None:
    raw[T.PURCHASES][C.ORDER_ID] = [1.0, 1.0, 2.5, None]
    result = validate_tables(raw, now=NOW)
    assert record(result, T.PURCHASES, 3)["reason"] == (
        "order_id must be an id (text or a whole number), got 2.5"
    )
    assert record(result, T.PURCHASES, 4)["reason_code"] == "null"
    assert result.tables[T.PURCHASES][C.ORDER_ID].tolist() == ["1", "1"]
