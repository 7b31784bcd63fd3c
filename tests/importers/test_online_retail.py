"""End-to-end rules of the Online Retail import on a handmade log with exact expected outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from recsys.columns import Columns as C
from recsys.columns import Tables
from recsys.contract.importers.online_retail import (
    QUARANTINE_FILE,
    ImportReport,
    QuarantineColumns,
    import_online_retail,
)
from recsys.contract.schema import SCHEMAS
from recsys.exceptions import SchemaError
from tests.importers.sample_log import COLUMNS_I, EXPECTED_QUARANTINE, sample_log

Q = QuarantineColumns


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImportReport, Path]:
    tmp_path = tmp_path_factory.mktemp("import")
    source = tmp_path / "log.parquet"
    sample_log().to_parquet(source)
    out = tmp_path / "data"
    return import_online_retail(source, out), out


def read(out: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{table}.parquet")


def test_import_purchases_are_the_valid_positive_lines(imported: tuple[ImportReport, Path]) -> None:
    _, out = imported
    got = read(out, Tables.PURCHASES)
    assert list(got.columns) == SCHEMAS[Tables.PURCHASES].column_names
    expected = pd.DataFrame(
        {
            C.PURCHASE_ID: ["500001-1", "500001-2", "500002-1", "500003-1", "500010-1",
                            "500011-1", "500011-2"],
            C.ORDER_ID: ["500001", "500001", "500002", "500003", "500010", "500011", "500011"],
            # UK local time to UTC: GMT in winter (same), BST from 2010-03-28 to 2010-10-31 (-1 h).
            C.TS: [utc("2010-03-01 10:00"), utc("2010-03-01 10:00"), utc("2010-03-26 12:00"),
                   utc("2010-03-29 11:00"), utc("2010-10-30 11:00"), utc("2010-11-01 12:00"),
                   utc("2010-11-01 12:00")],
            C.CUSTOMER_ID: ["100", "100", "100", "200", "300", "300", "300"],
            C.AGENT_ID: ["100", "100", "100", "200", "300", "300", "300"],
            C.SKU_ID: ["85123A", "22423", "85123A", "85123B", "84879", "84879", "85123A"],
            C.QTY: [6, 2, 4, 3, 8, 8, 1],
            C.UNIT_PRICE: [2.55, 12.75, 2.95, 2.95, 1.69, 1.69, 2.55],
        }
    )  # fmt: skip
    assert_frame_equal(got.drop(columns=C.SHARE_ID), expected, check_dtype=False)
    assert got[C.SHARE_ID].isna().all()


def test_import_returns_take_from_most_recent_earlier_purchase_and_split(
    imported: tuple[ImportReport, Path],
) -> None:
    _, out = imported
    got = read(out, Tables.RETURNS)
    expected = pd.DataFrame(
        {
            C.RETURN_ID: ["C500004-1-1", "C500004-1-2", "C500004-2-1", "C500005-1-1"],
            C.TS: [utc("2010-04-01 08:00")] * 3 + [utc("2010-04-02 09:00")],
            # 5 returned: 4 from the most recent purchase (500002-1), then 1 from the one before;
            # the later 10 find only the 5 left on 500001-1.
            C.PURCHASE_ID: ["500002-1", "500001-1", "500001-2", "500001-1"],
            C.QTY: [4, 1, 1, 5],
            C.REASON: ["other"] * 4,
        }
    )
    assert_frame_equal(got, expected, check_dtype=False)


def test_import_quarantines_each_rule_with_its_reason(imported: tuple[ImportReport, Path]) -> None:
    report, out = imported
    got = pd.read_csv(out / QUARANTINE_FILE, dtype={Q.CUSTOMER_ID: str, Q.INVOICE: str})
    assert list(got.columns) == list(Q.ALL)
    assert list(zip(got[Q.SOURCE_ROW], got[Q.REASON_CODE], got[Q.QUANTITY], strict=True)) == (
        EXPECTED_QUARANTINE
    )
    assert got[Q.REASON].notna().all()
    assert got.loc[got[Q.SOURCE_ROW] == 9, Q.CUSTOMER_ID].item() == "200"
    assert report.quarantine_path == out / QUARANTINE_FILE


def test_import_report_accounts_for_every_line(imported: tuple[ImportReport, Path]) -> None:
    report, _ = imported
    assert report.rows_read == 18
    assert report.purchase_lines == 7
    assert report.return_lines == 3  # rows 6, 7 and 8 (8 only in part)
    assert report.partly_unmatched_lines == 1
    assert report.quarantined_lines == {
        "duplicate_line": 1,
        "invalid_value": 1,
        "missing_buyer": 1,
        "non_product_code": 1,
        "nonpositive_price": 1,
        "positive_return_qty": 1,
        "stock_adjustment": 1,
        "unmatched_return": 1,
    }
    assert report.lines_accounted == 7 + 3 + 8 == report.rows_read
    assert report.table_rows == {
        "skus": 4, "agents": 3, "customers": 3, "shares": 0, "purchases": 7, "returns": 4,
    }  # fmt: skip


def test_import_skus_from_purchases(imported: tuple[ImportReport, Path]) -> None:
    _, out = imported
    got = read(out, Tables.SKUS).set_index(C.SKU_ID)
    assert list(got.index) == ["22423", "84879", "85123A", "85123B"]
    assert got[C.TITLE].tolist() == [
        "REGENCY CAKESTAND 3 TIER",
        "ASSORTED COLOUR BIRD ORNAMENT",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "RED HANGING HEART T-LIGHT HOLDER",
    ]
    assert got[C.CATEGORY].tolist() == [
        "kitchen_baking", "home_decor", "candles_lights", "candles_lights",
    ]  # fmt: skip
    assert got[C.SERIES].tolist() == [None, None, "85123", "85123"]
    # median positive price of the imported lines: 85123A sold at 2.55, 2.95, 2.55
    assert got[C.PRICE].tolist() == [12.75, 1.69, 2.55, 2.95]
    assert [list(t) for t in got[C.TAGS]] == [["regency"], ["bird"], ["white", "heart"],
                                              ["red", "heart"]]  # fmt: skip
    assert got[C.LAUNCHED_AT].tolist() == [
        utc("2010-03-01 10:00"), utc("2010-10-30 11:00"), utc("2010-03-01 10:00"),
        utc("2010-03-29 11:00"),
    ]  # fmt: skip
    assert [list(r) for r in got[C.REGIONS]] == [[], [], [], []]
    assert set(got[C.BRAND]) == {"unbranded"} and set(got[C.STATUS]) == {"active"}


def test_import_buyers_are_agents_and_customers(imported: tuple[ImportReport, Path]) -> None:
    _, out = imported
    agents = read(out, Tables.AGENTS)
    # Net spend: 100 bought 52.60 and returned 39.85 -> 12.75; 200: 8.85; 300: 29.59.
    # Ranked 200 < 100 < 300, tiers 1 + floor(5 * rank / 3) = 1, 2, 4.
    expected = pd.DataFrame(
        {
            C.AGENT_ID: ["100", "200", "300"],
            C.REGION: ["United Kingdom", "France", "United Kingdom"],
            C.TIER: [2, 1, 4],
            C.JOINED_AT: [utc("2010-03-01 10:00"), utc("2010-03-29 11:00"),
                          utc("2010-10-30 11:00")],
        }
    )  # fmt: skip
    assert_frame_equal(agents, expected, check_dtype=False)
    customers = read(out, Tables.CUSTOMERS)
    ids = ["100", "200", "300"]
    assert customers[C.CUSTOMER_ID].tolist() == customers[C.AGENT_ID].tolist() == ids
    assert customers[C.REGION].tolist() == expected[C.REGION].tolist()
    assert customers[C.JOINED_AT].tolist() == expected[C.JOINED_AT].tolist()


def test_import_shares_is_empty_with_contract_columns(imported: tuple[ImportReport, Path]) -> None:
    _, out = imported
    shares = read(out, Tables.SHARES)
    assert len(shares) == 0
    assert list(shares.columns) == SCHEMAS[Tables.SHARES].column_names
    assert isinstance(shares[C.TS].dtype, pd.DatetimeTZDtype)


def test_import_older_column_names_from_csv_give_same_tables(
    tmp_path: Path, imported: tuple[ImportReport, Path]
) -> None:
    report, out = imported
    source = tmp_path / "old.csv"
    sample_log(COLUMNS_I).to_csv(source, index=False)  # ids written as floats: "100.0"
    other = import_online_retail(source, tmp_path / "from_csv")
    assert other.table_rows == report.table_rows
    assert other.quarantined_lines == report.quarantined_lines
    for table in Tables.ALL:
        assert_frame_equal(read(tmp_path / "from_csv", table), read(out, table))


def test_import_missing_columns_named(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    sample_log().drop(columns=["Price", "Customer ID"]).to_csv(source, index=False)
    with pytest.raises(SchemaError, match=r"missing column\(s\) 'Price' \(or 'UnitPrice'\), "
                       r"'Customer ID' \(or 'CustomerID'\)"):  # fmt: skip
        import_online_retail(source, tmp_path / "out")


def test_import_refuses_out_dir_with_table_in_other_form(tmp_path: Path) -> None:
    source = tmp_path / "log.parquet"
    sample_log().to_parquet(source)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "skus.csv").write_text("sku_id\n")
    with pytest.raises(ValueError, match="already holds 'skus.csv'"):
        import_online_retail(source, tmp_path / "out")


def test_import_unsupported_suffix_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "log.json"
    source.write_text("{}")
    with pytest.raises(SchemaError, match=r"unsupported suffix '\.json'"):
        import_online_retail(source, tmp_path / "out")


def test_check_accounted_refuses_lost_or_double_counted_lines() -> None:
    from recsys.contract.importers.online_retail import _check_accounted

    quarantine = pd.DataFrame({Q.SOURCE_ROW: [3, 4]})
    partly = np.array([False, True])  # row 4 is a partly matched return line, counted as return
    _check_accounted(4, np.array([1, 2]), np.array([4, 4]), quarantine, partly)
    with pytest.raises(RuntimeError, match="read 5, accounted for 4"):
        _check_accounted(5, np.array([1, 2]), np.array([4]), quarantine, partly)
    with pytest.raises(RuntimeError, match="3 distinct"):
        _check_accounted(4, np.array([1, 3]), np.array([4]), quarantine, partly)
