"""Import of the first rows of the real Online Retail II log, checked against the contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.columns import Columns as C
from recsys.columns import Tables
from recsys.contract.importers.online_retail import ImportReport, import_online_retail
from recsys.contract.validate import validate_dir

REAL_LOG = (
    Path(__file__).parents[2].parent
    / "shared/data/online-retail-ii-2009-2010/online_retail_ii_2009-12_2010-12.parquet"
)
N_ROWS = 20_000

pytestmark = pytest.mark.skipif(not REAL_LOG.is_file(), reason=f"{REAL_LOG} is absent")


@pytest.fixture(scope="module")
def real_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImportReport, Path]:
    tmp = tmp_path_factory.mktemp("real")
    head = next(pq.ParquetFile(REAL_LOG).iter_batches(batch_size=N_ROWS))
    source = tmp / "head.parquet"
    pq.write_table(pa.Table.from_batches([head]), source)
    return import_online_retail(source, tmp / "data"), tmp / "data"


def test_real_head_accounts_for_every_line(real_import: tuple[ImportReport, Path]) -> None:
    report, _ = real_import
    assert report.rows_read == N_ROWS
    assert report.lines_accounted == N_ROWS
    assert report.purchase_lines > 0.7 * N_ROWS
    assert report.return_lines > 0
    assert {"missing_buyer", "non_product_code", "stock_adjustment"} <= set(
        report.quarantined_lines
    )
    assert report.categories.get("other", 0) < 0.35 * report.table_rows[Tables.SKUS]


def test_real_head_returns_never_exceed_or_precede_purchases(
    real_import: tuple[ImportReport, Path],
) -> None:
    _, out = real_import
    purchases = pd.read_parquet(out / "purchases.parquet").set_index(C.PURCHASE_ID)
    returns = pd.read_parquet(out / "returns.parquet")
    bought = purchases.loc[returns[C.PURCHASE_ID]]
    assert (returns[C.TS].to_numpy() >= bought[C.TS].to_numpy()).all()
    returned = returns.groupby(C.PURCHASE_ID)[C.QTY].sum()
    assert (returned <= purchases.loc[returned.index, C.QTY]).all()


def test_real_head_passes_validation(real_import: tuple[ImportReport, Path]) -> None:
    report, out = real_import
    result = validate_dir(out)
    assert result.exit_code == 0
    assert result.quarantine.empty
    assert {name: len(t) for name, t in result.tables.items()} == report.table_rows
