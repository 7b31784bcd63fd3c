"""`recsys simulate` end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from recsys.cli import app
from recsys.simulation.cli import parse_overrides

runner = CliRunner()


def test_simulate_command_writes_tables_and_truth(tmp_path: Path) -> None:
    args = [
        "simulate",
        "--out",
        str(tmp_path),
        "--scale",
        "tiny",
        "--seed",
        "3",
        "--set",
        "n_days=15",
    ]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    for table in ("skus", "agents", "customers", "shares", "purchases", "returns"):
        assert (tmp_path / f"{table}.parquet").is_file(), table
    assert (tmp_path / "truth" / "config.json").is_file()
    assert len(pd.read_parquet(tmp_path / "purchases.parquet")) > 0

    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.output

    csv = runner.invoke(app, [*args, "--format", "csv", "--overwrite"])
    assert csv.exit_code == 0, csv.output
    assert "purchases" in csv.output and (tmp_path / "purchases.csv").is_file()
    assert not (tmp_path / "purchases.parquet").exists()


def test_simulate_command_rejects_unknown_override(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path), "--set", "n_dayz=3"])
    assert result.exit_code == 2
    assert "unknown SimConfig field(s): n_dayz" in result.output


def test_parse_overrides_reads_json_values() -> None:
    parsed = parse_overrides(
        ["n_days=30", "homophily=0.5", "start=2024-06-01", "push_mix=[0.5,0.5,0]"]
    )
    assert parsed == {
        "n_days": 30,
        "homophily": 0.5,
        "start": "2024-06-01",
        "push_mix": (0.5, 0.5, 0),
    }
