"""Checks across rows and tables: unique ids, references (with cascade), returns vs purchases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables as T
from recsys.contract.validate import validate_dir, validate_tables
from tests.contract.conftest import NOW, record


def _append(frame: pd.DataFrame, rows: list[dict[str, object]]) -> pd.DataFrame:
    """`frame` with `rows` appended, keeping its dtypes where they allow."""
    extra = pd.DataFrame(rows).astype({k: v for k, v in frame.dtypes.items() if k in rows[0]})
    return pd.concat([frame, extra], ignore_index=True)


def _return(return_id: str, ts: str, purchase_id: str, qty: int) -> dict[str, object]:
    return {
        C.RETURN_ID: return_id,
        C.TS: pd.Timestamp(ts),
        C.PURCHASE_ID: purchase_id,
        C.QTY: qty,
        C.REASON: "fit",
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_validate_dir_quarantines_later_duplicate_id(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path], fmt: str
) -> None:
    purchases = tables[T.PURCHASES]
    tables[T.PURCHASES] = pd.concat([purchases, purchases.iloc[[0]]], ignore_index=True)
    result = validate_dir(make_dir(tables, fmt), now=NOW)
    found = record(result, T.PURCHASES, 5)
    assert found["reason_code"] == "duplicate_id"
    assert found["reason"] == f"duplicate purchase_id 'P1' (first at purchases.{fmt} row 1)"
    assert found["source_file"] == f"purchases.{fmt}"
    assert result.tables[T.PURCHASES][C.PURCHASE_ID].tolist() == ["P1", "P2", "P3", "P4"]
    # the kept first occurrence still carries its return
    assert len(result.tables[T.RETURNS]) == 2


# (table, 1-based row, reference column, referenced table)
REFERENCES = [
    (T.CUSTOMERS, 2, C.AGENT_ID, T.AGENTS),
    (T.SHARES, 1, C.AGENT_ID, T.AGENTS),
    (T.SHARES, 2, C.SKU_ID, T.SKUS),
    (T.PURCHASES, 4, C.CUSTOMER_ID, T.CUSTOMERS),
    (T.PURCHASES, 2, C.AGENT_ID, T.AGENTS),
    (T.PURCHASES, 4, C.SKU_ID, T.SKUS),
    (T.PURCHASES, 2, C.SHARE_ID, T.SHARES),
    (T.RETURNS, 2, C.PURCHASE_ID, T.PURCHASES),
]


@pytest.mark.parametrize(("table", "row", "column", "ref_table"), REFERENCES)
def test_validate_dir_quarantines_missing_reference(
    tables: dict[str, pd.DataFrame],
    make_dir: Callable[..., Path],
    table: str,
    row: int,
    column: str,
    ref_table: str,
) -> None:
    tables[table].loc[row - 1, column] = "X404"
    result = validate_dir(make_dir(tables), now=NOW)
    found = record(result, table, row)
    assert found["reason_code"] == "missing_ref"
    assert found["column"] == column
    assert found["value"] == "X404"
    assert found["reason"] == f"{column} 'X404' not found in {ref_table}"
    assert result.rows_read[table] == len(result.tables[table]) + result.n_quarantined(table)


def test_validate_dir_cascades_a_quarantined_sku(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    tables[T.SKUS].loc[1, C.PRICE] = -1.0  # S2: shared in H2, bought in P3, returned in R2
    result = validate_dir(make_dir(tables, "csv"), now=NOW)
    sku_reason = "skus.csv row 2: price must be > 0, got -1.0"
    share = record(result, T.SHARES, 2)
    assert share["reason_code"] == "ref_quarantined"
    assert share["reason"] == f"sku_id 'S2' refers to a quarantined row of skus ({sku_reason})"
    purchase = record(result, T.PURCHASES, 3)
    assert purchase["column"] == C.SKU_ID
    assert purchase["reason"] == (
        f"sku_id 'S2' refers to a quarantined row of skus ({sku_reason}); "
        f"share_id 'H2' refers to a quarantined row of shares (shares.csv row 2: "
        f"sku_id 'S2' refers to a quarantined row of skus ({sku_reason}))"
    )
    returned = record(result, T.RETURNS, 2)
    assert returned["reason"].startswith(
        "purchase_id 'P3' refers to a quarantined row of purchases (purchases.csv row 3: "
        f"sku_id 'S2' refers to a quarantined row of skus ({sku_reason})"
    )
    assert result.summary().set_index("table")["quarantined"].to_dict() == {
        T.SKUS: 1,
        T.AGENTS: 0,
        T.CUSTOMERS: 0,
        T.SHARES: 1,
        T.PURCHASES: 1,
        T.RETURNS: 1,
    }
    assert result.tables[T.PURCHASES][C.PURCHASE_ID].tolist() == ["P1", "P2", "P4"]


def test_validate_dir_cascades_from_a_quarantined_agent(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    tables[T.AGENTS].loc[1, C.TIER] = 9  # A2: binds C3, shares H2, earns on P3
    result = validate_dir(make_dir(tables), now=NOW)
    assert record(result, T.CUSTOMERS, 3)["reason_code"] == "ref_quarantined"
    assert record(result, T.SHARES, 2)["reason_code"] == "ref_quarantined"
    assert record(result, T.PURCHASES, 3)["reason_code"] == "ref_quarantined"
    assert record(result, T.RETURNS, 2)["reason_code"] == "ref_quarantined"
    assert len(result.quarantine) == 5


def test_validate_tables_quarantines_return_before_its_purchase(
    raw: dict[str, pd.DataFrame],
) -> None:
    raw[T.RETURNS].loc[0, C.TS] = "2025-04-01T09:59:59Z"  # P1 was bought at 10:00
    raw[T.RETURNS].loc[1, C.TS] = "2025-04-03T12:00:00Z"  # same instant as P3: kept
    result = validate_tables(raw, now=NOW)
    found = record(result, T.RETURNS, 1)
    assert found["reason_code"] == "return_before_purchase"
    assert found["reason"] == (
        "return ts 2025-04-01T09:59:59+00:00 is before its purchase 'P1' ts "
        "2025-04-01T10:00:00+00:00"
    )
    assert result.tables[T.RETURNS][C.RETURN_ID].tolist() == ["R2"]


def test_validate_dir_quarantines_over_return_across_several_returns(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    # P3 bought 3; R2 (file row 2) returns 3 at 04-06. In ts then return_id order:
    # R0 (2 at 04-06, before R2 by id) kept -> R2 exceeds -> R7 (1 at 04-07) still fits -> R8 not.
    tables[T.RETURNS] = _append(
        tables[T.RETURNS],
        [
            _return("R8", "2025-04-09T00:00:00Z", "P3", 1),
            _return("R7", "2025-04-07T00:00:00Z", "P3", 1),
            _return("R0", "2025-04-06T10:00:00Z", "P3", 2),
        ],
    )
    result = validate_dir(make_dir(tables), now=NOW)
    over = result.quarantine[result.quarantine["reason_code"] == "over_return"]
    assert over["row"].tolist() == [2, 3]
    assert over["reason"].tolist() == [
        "returned qty 3 exceeds remaining 1 of purchase 'P3' (bought 3, already returned 2)",
        "returned qty 1 exceeds remaining 0 of purchase 'P3' (bought 3, already returned 3)",
    ]
    assert over["value"].tolist() == ["3", "1"]
    assert result.tables[T.RETURNS][C.RETURN_ID].tolist() == ["R1", "R7", "R0"]


def test_validate_dir_quarantines_single_return_above_bought_qty(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    tables[T.RETURNS].loc[0, C.QTY] = 3  # P1 bought 2
    result = validate_dir(make_dir(tables), now=NOW)
    assert record(result, T.RETURNS, 1)["reason"] == (
        "returned qty 3 exceeds remaining 2 of purchase 'P1' (bought 2, already returned 0)"
    )


def test_validate_dir_quarantined_return_does_not_use_up_the_line(
    tables: dict[str, pd.DataFrame], make_dir: Callable[..., Path]
) -> None:
    # A return that fails another check (bad reason) is not counted against P1's qty.
    tables[T.RETURNS] = _append(tables[T.RETURNS], [_return("R3", "2025-04-04T00:00:00Z", "P1", 2)])
    tables[T.RETURNS].loc[2, C.REASON] = "bored"
    result = validate_dir(make_dir(tables), now=NOW)
    assert result.quarantine["reason_code"].tolist() == ["not_allowed"]
    assert result.tables[T.RETURNS][C.RETURN_ID].tolist() == ["R1", "R2"]
