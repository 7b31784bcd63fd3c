"""The table cache: a cached load gives the very tables and quarantine of a fresh validation."""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables as T
from recsys.contract import loader, table_cache
from recsys.contract.io import write_table
from recsys.contract.loader import QuarantineWarning, load_tables, load_tables_cached
from recsys.contract.validate import validate_dir, validate_tables
from tests.contract.conftest import NOW, read_raw, valid_tables

DAY = pd.Timedelta(days=1)


def _dirty(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Rows breaking a range, a reference and a key (none of it depends on "now")."""
    tables[T.PURCHASES].loc[1, C.QTY] = 0  # P2
    tables[T.PURCHASES].loc[3, C.SKU_ID] = "S404"  # P4
    tables[T.SHARES].loc[1, C.SHARE_ID] = "H1"  # a second H1: P3 refers to H2 (so R2 goes too)
    return tables


def _two_parquet_parts(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """Purchases as two Parquet parts (same schema), the other tables as single files."""
    for name, frame in tables.items():
        if name == T.PURCHASES:
            write_table(frame.iloc[:2], path / name / "day=1" / "part-0.parquet", name)
            write_table(frame.iloc[2:], path / name / "day=2" / "part-0.parquet", name)
        else:
            write_table(frame, path / f"{name}.parquet", name)
    return path


@pytest.fixture(params=["parquet", "csv", "folder", "two-parquet-parts"])
def dirty_dir(
    request: pytest.FixtureRequest, make_dir: Callable[..., Path], tmp_path: Path
) -> Path:
    """A data directory with quarantined rows, in each file layout."""
    if request.param == "two-parquet-parts":
        return _two_parquet_parts(tmp_path / "parts", _dirty(valid_tables()))
    return make_dir(_dirty(valid_tables()), request.param)


def _load(data: Path, **kwargs: object):  # noqa: ANN202 - LoadedTables, and the warning text
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_tables_cached(data, now=NOW, **kwargs)  # type: ignore[arg-type]
    messages = [str(w.message) for w in caught if issubclass(w.category, QuarantineWarning)]
    return loaded, messages


def test_validate_dir_matches_validating_the_raw_tables(dirty_dir: Path) -> None:
    # validate_dir reads through Arrow (read_raw_arrow); the result must not depend on it.
    direct = validate_dir(dirty_dir, now=NOW)
    via_pandas = validate_tables(read_raw(dirty_dir), now=NOW)
    for name in T.ALL:
        pd.testing.assert_frame_equal(direct.tables[name], via_pandas.tables[name])
    compared = ["table", "row", "column", "reason_code", "value", "raw"]
    pd.testing.assert_frame_equal(direct.quarantine[compared], via_pandas.quarantine[compared])
    assert direct.rows_read == via_pandas.rows_read
    assert direct.quarantine["table"].tolist() == [T.SHARES] + [T.PURCHASES] * 3 + [T.RETURNS]


def test_cached_load_gives_the_tables_warning_and_quarantine_files_again(
    dirty_dir: Path, tmp_path: Path
) -> None:
    fresh = validate_dir(dirty_dir, now=NOW, quarantine_dir=tmp_path / "expected")
    first, first_warning = _load(dirty_dir)
    assert not first.from_cache and first.cache_entry is not None
    shutil.rmtree(dirty_dir / "quarantine")
    second, second_warning = _load(dirty_dir)
    assert second.from_cache and second.cache_entry == first.cache_entry
    for name in T.ALL:
        pd.testing.assert_frame_equal(second.tables[name], fresh.tables[name], check_exact=True)
    assert second_warning == first_warning and "5 rows of" in second_warning[0]
    for table in (T.SHARES, T.PURCHASES, T.RETURNS):
        written = (dirty_dir / "quarantine" / f"{table}.csv").read_text()
        assert written == (tmp_path / "expected" / f"{table}.csv").read_text()


def test_cached_load_hands_out_id_columns_in_arrow(dirty_dir: Path) -> None:
    for _ in range(2):  # fresh, then cached
        loaded, _ = _load(dirty_dir)
        purchases = loaded.tables[T.PURCHASES]
        for column in (C.PURCHASE_ID, C.SKU_ID, C.SHARE_ID):
            twin = loaded.arrow[T.PURCHASES].get(column)
            if twin is None:  # the pandas reading path (mixed part types) keeps none
                assert not loaded.from_cache
                continue
            assert len(twin) == len(purchases)
            values = twin.dictionary_decode() if hasattr(twin, "dictionary") else twin
            assert values.to_pylist() == purchases[column].tolist()


def test_changed_file_misses_the_cache(make_dir: Callable[..., Path]) -> None:
    data = make_dir(valid_tables(), "csv")
    assert not load_tables_cached(data, now=NOW).from_cache
    path = data / "purchases.csv"
    path.write_text(path.read_text().replace("A2,S2,3", "A2,S2,4"))  # same size, other qty
    loaded = load_tables_cached(data, now=NOW)
    assert not loaded.from_cache
    assert loaded.tables[T.PURCHASES][C.QTY].tolist() == [2, 1, 4, 1]
    assert load_tables_cached(data, now=NOW).from_cache
    assert len(list((data / ".recsys-cache").glob("tables-*"))) == 1  # the old entry is gone


def test_cache_follows_the_moment_of_loading(make_dir: Callable[..., Path]) -> None:
    data = make_dir(valid_tables(), "parquet")
    assert not load_tables_cached(data, now=NOW).from_cache
    assert load_tables_cached(data, now=NOW + 30 * DAY).from_cache  # later: same verdicts
    # earlier: a timestamp could now be "too late", so the tables are validated again
    assert not load_tables_cached(data, now=NOW - 20 * DAY).from_cache
    assert load_tables_cached(data, now=NOW).from_cache


def test_rows_rejected_for_being_late_are_judged_again(make_dir: Callable[..., Path]) -> None:
    tables = valid_tables()
    tables[T.RETURNS].loc[1, C.TS] = NOW + 10 * DAY
    data = make_dir(tables, "parquet")
    for _ in range(2):
        loaded, messages = _load(data)
        assert not loaded.from_cache
        assert messages and "returns 1/2" in messages[0]
    later = load_tables(data, now=NOW + 20 * DAY, on_quarantine="raise")
    assert len(later[T.RETURNS]) == 2


def test_cache_can_be_turned_off_or_moved(
    make_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dir(valid_tables(), "parquet")
    monkeypatch.setenv(table_cache.ENV_SWITCH, "off")
    assert load_tables_cached(data, now=NOW).cache_entry is None
    assert load_tables_cached(data, now=NOW, cache=True).cache_entry is not None
    shutil.rmtree(data / ".recsys-cache")
    monkeypatch.delenv(table_cache.ENV_SWITCH)
    monkeypatch.setenv(table_cache.ENV_DIR, str(tmp_path / "elsewhere"))
    load_tables_cached(data, now=NOW)
    assert load_tables_cached(data, now=NOW).from_cache
    assert not (data / ".recsys-cache").exists()
    assert len(list((tmp_path / "elsewhere").glob("*/tables-*"))) == 1


def test_unwritable_cache_only_costs_time(
    make_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(table_cache.ENV_DIR, str(blocker))
    data = make_dir(valid_tables(), "parquet")
    for _ in range(2):
        loaded = load_tables_cached(data, now=NOW)
        assert loaded.cache_entry is None and not loaded.from_cache
        pd.testing.assert_frame_equal(loaded.tables[T.SKUS], valid_tables()[T.SKUS])


def test_new_contract_code_misses_the_cache(
    make_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dir(valid_tables(), "parquet")
    load_tables_cached(data, now=NOW)
    monkeypatch.setattr(table_cache, "FORMAT", table_cache.FORMAT + 1)
    assert not load_tables_cached(data, now=NOW).from_cache


def test_derived_files_live_in_the_entry(make_dir: Callable[..., Path]) -> None:
    data = make_dir(valid_tables(), "parquet")
    entry = load_tables_cached(data, now=NOW).cache_entry
    assert entry is not None
    path = entry.derived("note.json")
    path.write_text("{}")
    assert path.parent.parent == entry.path


def test_file_changed_while_validating_is_not_cached(
    make_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dir(valid_tables(), "csv")
    real = loader.validate_dir

    def validate_then_edit(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        time.sleep(0.05)  # past the file clock's tick
        path = data / "agents.csv"
        path.write_text(path.read_text().replace("north", "south"))
        return result

    monkeypatch.setattr(loader, "validate_dir", validate_then_edit)
    assert load_tables_cached(data, now=NOW).cache_entry is None
    monkeypatch.setattr(loader, "validate_dir", real)
    loaded = load_tables_cached(data, now=NOW)
    assert not loaded.from_cache and loaded.cache_entry is not None
    assert loaded.tables[T.AGENTS][C.REGION].tolist() == ["east", "south"]
