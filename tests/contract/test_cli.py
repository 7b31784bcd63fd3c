"""`recsys validate`: summary, quarantine files and exit codes 0/1/2."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from recsys.columns import Tables as T
from recsys.contract.cli import register
from tests.contract.conftest import valid_tables, write_data_dir

NOW = ["--now", "2025-07-01T00:00:00Z"]


def _app() -> typer.Typer:
    """An app holding only this area's commands, so other areas' state cannot interfere."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test entry point."""

    register(app)
    return app


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), ["validate", *args])
    return result.exit_code, result.output


def test_validate_command_exits_0_when_clean(data_dir: Path) -> None:
    code, output = _invoke(str(data_dir), *NOW)
    assert code == 0, output
    assert "All 16 rows kept; nothing quarantined." in output
    assert "Rows per table" in output
    assert not (data_dir / "quarantine").exists()


def test_validate_command_exits_1_and_writes_quarantine(tmp_path: Path) -> None:
    tables = valid_tables()
    tables[T.PURCHASES].loc[1, "qty"] = 0
    data_dir = write_data_dir(tmp_path / "data", tables, "parquet")
    code, output = _invoke(str(data_dir), *NOW)
    assert code == 1, output
    assert "out_of_range" in output
    assert "qty must be >= 1, got 0" in output
    assert str(data_dir / "quarantine" / "purchases.csv") in output.replace("\n", "")
    written = pd.read_csv(data_dir / "quarantine" / "purchases.csv")
    assert written[["row", "reason_code"]].to_dict("records") == [
        {"row": 2, "reason_code": "out_of_range"}
    ]


def test_validate_command_writes_to_given_quarantine_dir(tmp_path: Path) -> None:
    tables = valid_tables()
    tables[T.SKUS].loc[0, "status"] = "gone"
    data_dir = write_data_dir(tmp_path / "data", tables, "csv")
    code, _ = _invoke(str(data_dir), "--quarantine", str(tmp_path / "q"), *NOW)
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == [
        "purchases.csv",
        "returns.csv",
        "shares.csv",
        "skus.csv",
    ]


def test_validate_command_exits_2_naming_missing_column(tmp_path: Path) -> None:
    data_dir = write_data_dir(tmp_path / "data", valid_tables(), "csv")
    frame = pd.read_csv(data_dir / "agents.csv").drop(columns="tier")
    frame.to_csv(data_dir / "agents.csv", index=False)
    code, output = _invoke(str(data_dir), *NOW)
    assert code == 2
    flat = output.replace("\n", "")
    assert f"{data_dir / 'agents.csv'}: missing required column(s) 'tier'" in flat
    assert "Traceback" not in output


def test_validate_command_exits_2_naming_unreadable_file(tmp_path: Path) -> None:
    data_dir = write_data_dir(tmp_path / "data", valid_tables(), "parquet")
    (data_dir / "shares.parquet").write_bytes(b"PAR1 not really parquet")
    code, output = _invoke(str(data_dir), *NOW)
    assert code == 2
    assert f"cannot read {data_dir / 'shares.parquet'}" in output.replace("\n", "")
    assert "Traceback" not in output


def test_validate_command_exits_2_when_table_missing(tmp_path: Path) -> None:
    data_dir = write_data_dir(tmp_path / "data", valid_tables(), "csv")
    (data_dir / "returns.csv").unlink()
    code, output = _invoke(str(data_dir), *NOW)
    assert code == 2
    assert "table 'returns' not found" in output


def _edit_csv(path: Path, edit: dict[int, dict[str, str]], extra: list[list[str]]) -> None:
    """Change cells of data rows (1-based) of a CSV file by hand and append raw lines."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
        fields = list(rows[0].keys())
    for row, changes in edit.items():
        rows[row - 1].update(changes)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows([r[f] for f in fields] for r in rows)
        writer.writerows(extra)


def test_validate_command_quarantines_every_row_of_a_hand_corrupted_copy(
    tmp_path: Path,
) -> None:
    clean = write_data_dir(tmp_path / "clean", valid_tables(), "csv")
    copy = tmp_path / "corrupted"
    shutil.copytree(clean, copy)
    _edit_csv(copy / "skus.csv", {2: {"price": "-59"}}, [])
    _edit_csv(copy / "customers.csv", {2: {"joined_at": "2025-02-30"}}, [])
    _edit_csv(
        copy / "purchases.csv",
        {1: {"qty": "two"}},
        [["P2", "O1", "2025-04-01T10:00:00+00:00", "C1", "A1", "S3", "1", "0.0", ""]],
    )
    _edit_csv(copy / "returns.csv", {}, [["R9", "2025-04-07T00:00:00Z", "P3", "1", "fit"]])
    assert _invoke(str(clean), *NOW)[0] == 0
    code, output = _invoke(str(copy), *NOW)
    assert code == 1, output
    quarantine = pd.concat(
        [pd.read_csv(p) for p in sorted((copy / "quarantine").glob("*.csv"))], ignore_index=True
    )
    expected = {
        ("skus", 2): "out_of_range",  # price -59
        ("customers", 2): "bad_type",  # 30 February
        ("shares", 2): "ref_quarantined",  # shares S2
        ("purchases", 1): "bad_type",  # qty 'two'
        ("purchases", 3): "ref_quarantined",  # buys S2
        ("purchases", 4): "ref_quarantined",  # bought by C2
        ("purchases", 5): "duplicate_id",  # P2 again
        ("returns", 1): "ref_quarantined",  # returns P1
        ("returns", 2): "ref_quarantined",  # returns P3
        ("returns", 3): "ref_quarantined",  # returns P3 too
    }
    found = dict(zip(zip(quarantine["table"], quarantine["row"], strict=True),
                     quarantine["reason_code"], strict=True))  # fmt: skip
    assert found == expected
    assert quarantine["reason"].str.len().gt(10).all()
    assert quarantine["source_file"].str.endswith(".csv").all()


def test_recsys_app_lists_validate_command() -> None:
    from recsys.cli import app

    result = CliRunner().invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "DATA_DIR" in result.output.upper()
    assert "--quarantine" in result.output


@pytest.mark.parametrize("now", ["soon", "2025-13-01"])
def test_validate_command_exits_2_on_bad_now(data_dir: Path, now: str) -> None:
    code, output = _invoke(str(data_dir), "--now", now)
    assert code == 2
    assert "now must be a timestamp" in output


def test_validate_command_exits_2_when_quarantine_cannot_be_written(tmp_path: Path) -> None:
    tables = valid_tables()
    tables[T.AGENTS].loc[0, "tier"] = 0
    data_dir = write_data_dir(tmp_path / "data", tables, "csv")
    blocker = tmp_path / "q"
    blocker.write_text("a file, not a folder")
    code, output = _invoke(str(data_dir), "--quarantine", str(blocker), *NOW)
    assert code == 2
    assert f"cannot write quarantine files to {blocker}" in output.replace("\n", "")
