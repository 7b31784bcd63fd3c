"""Reading the log: column namings, ids, and UK local time to UTC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.contract.importers.source import (
    RetailColumns,
    canonical_columns,
    id_text,
    parse_times,
)
from recsys.exceptions import SchemaError
from tests.importers.sample_log import COLUMNS_I, COLUMNS_II, sample_log


def test_canonical_columns_accepts_both_namings_and_loose_spelling() -> None:
    assert list(canonical_columns(sample_log(COLUMNS_I)).columns) == list(RetailColumns.ALL)
    loose = sample_log([c.lower().replace(" ", "_") for c in COLUMNS_II])  # customer_id, ...
    assert list(canonical_columns(loose).columns) == list(RetailColumns.ALL)


def test_canonical_columns_rejects_a_column_given_twice() -> None:
    frame = sample_log().assign(InvoiceNo="1")
    with pytest.raises(SchemaError, match="column 'Invoice' appears twice"):
        canonical_columns(frame)


def test_canonical_columns_names_every_missing_column() -> None:
    frame = sample_log().drop(columns=["Invoice", "Country"])
    with pytest.raises(SchemaError, match=r"'Invoice' \(or 'InvoiceNo'\), 'Country'"):
        canonical_columns(frame, "log.csv")


def test_id_text_drops_float_suffix_and_keeps_missing() -> None:
    assert id_text(pd.Series([13085.0, np.nan, 12346.0])).tolist() == ["13085", None, "12346"]
    mixed = pd.Series([489434, "C489449", " 13085.0 ", None, "", "nan"], dtype=object)
    assert id_text(mixed).tolist() == ["489434", "C489449", "13085", None, None, None]


@pytest.mark.parametrize(
    ("local", "expected_utc"),
    [
        ("2010-03-27 23:30:00", "2010-03-27 23:30"),  # GMT, the night before the change
        ("2010-03-28 00:30:00", "2010-03-28 00:30"),  # GMT
        ("2010-03-28 01:30:00", "2010-03-28 01:00"),  # skipped hour: moved on to 02:00 BST
        ("2010-03-28 02:30:00", "2010-03-28 01:30"),  # BST
        ("2010-06-01 12:00:00", "2010-06-01 11:00"),  # BST
        ("2010-10-31 01:30:00", "2010-10-31 00:30"),  # repeated hour: taken as BST
        ("2010-10-31 02:30:00", "2010-10-31 02:30"),  # GMT again
        ("2010-12-09 20:01:00", "2010-12-09 20:01"),
    ],
)
def test_parse_times_reads_uk_local_time_across_dst(local: str, expected_utc: str) -> None:
    got = parse_times(pd.Series([local]))
    assert got.iloc[0] == pd.Timestamp(expected_utc, tz="UTC")


def test_parse_times_other_formats_and_unreadable() -> None:
    # The older release writes month/day/year without seconds.
    got = parse_times(pd.Series(["12/1/2010 8:26", "6/15/2011 13:05", "garbage", None]))
    assert got.iloc[0] == pd.Timestamp("2010-12-01 08:26", tz="UTC")
    assert got.iloc[1] == pd.Timestamp("2011-06-15 12:05", tz="UTC")
    assert got.iloc[2:].isna().all()


def test_parse_times_accepts_datetime_columns() -> None:
    naive = pd.Series(pd.to_datetime(["2010-07-01 10:00"]))
    assert parse_times(naive).iloc[0] == pd.Timestamp("2010-07-01 09:00", tz="UTC")
    aware = naive.dt.tz_localize("Europe/London")
    assert parse_times(aware).iloc[0] == pd.Timestamp("2010-07-01 09:00", tz="UTC")
