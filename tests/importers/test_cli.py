"""`recsys import online-retail` through the real CLI app."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli import app
from tests.importers.sample_log import sample_log

runner = CliRunner()


def test_cli_import_help() -> None:
    result = runner.invoke(app, ["import", "--help"])
    assert result.exit_code == 0
    assert "online-retail" in result.output
    result = runner.invoke(app, ["import", "online-retail", "--help"])
    assert result.exit_code == 0
    assert "--out" in result.output


def test_cli_import_writes_tables_and_prints_summary(tmp_path: Path) -> None:
    source = tmp_path / "log.parquet"
    sample_log().to_parquet(source)
    out = tmp_path / "data"
    result = runner.invoke(app, ["import", "online-retail", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "agents.parquet", "customers.parquet", "purchases.parquet", "returns.parquet",
        "shares.parquet", "skus.parquet",
    ]  # fmt: skip
    assert (out / "quarantine" / "import.csv").is_file()
    text = " ".join(result.output.split())
    assert "OK read 18 = 7 purchase + 3 return + 8 quarantined lines" in text
    assert "quarantined: stock_adjustment" in text


def test_cli_import_missing_columns_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "log.csv"
    sample_log().drop(columns=["Quantity"]).to_csv(source, index=False)
    result = runner.invoke(app, ["import", "online-retail", str(source), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "missing column(s) 'Quantity'" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_cli_import_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["import", "online-retail", str(tmp_path / "nope.parquet"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "is not a file" in result.output


@pytest.mark.skipif(
    importlib.util.find_spec("openpyxl") is not None, reason="openpyxl is installed"
)
def test_cli_import_xlsx_without_openpyxl_says_so(tmp_path: Path) -> None:
    source = tmp_path / "log.xlsx"
    source.write_bytes(b"PK")
    result = runner.invoke(app, ["import", "online-retail", str(source), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "needs the package openpyxl" in result.output
