"""Written output: determinism, the data contract, and no ground truth in the visible tables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.columns import RETURN_REASONS, Columns, Tables
from recsys.contract.schema import SCHEMAS
from recsys.contract.validate import validate_dir
from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import write_simulation

C = Columns
SHORT = {"n_days": 20}


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_write_simulation_same_seed_same_bytes(tmp_path: Path) -> None:
    config = SimConfig.preset("tiny", **SHORT)
    write_simulation(config, 1, tmp_path / "a", progress=False)
    write_simulation(config, 1, tmp_path / "b", progress=False)
    write_simulation(config, 2, tmp_path / "c", progress=False)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert "truth/config.json" in a and "purchases.parquet" in a
    assert a == b
    assert a["purchases.parquet"] != c["purchases.parquet"]
    assert a["truth/skus.parquet"] != c["truth/skus.parquet"]


def test_write_simulation_writes_parts_past_chunk_rows(tmp_path: Path) -> None:
    config = SimConfig.preset("tiny", n_days=20, chunk_rows=1000)
    summary = write_simulation(config, 1, tmp_path, progress=False)
    parts = sorted((tmp_path / Tables.PURCHASES).glob("part-*.parquet"))
    assert len(parts) >= 2 and not (tmp_path / "purchases.parquet").exists()
    rows = sum(len(pd.read_parquet(p)) for p in parts)
    assert rows == summary.rows[Tables.PURCHASES]
    assert validate_dir(tmp_path, now="2026-01-01").quarantine.empty


def test_write_simulation_refuses_to_mix_with_previous_output(tmp_path: Path) -> None:
    config = SimConfig.preset("tiny", **SHORT)
    write_simulation(config, 1, tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="already holds truth"):
        write_simulation(config, 1, tmp_path, fmt="csv", progress=False)
    write_simulation(config, 1, tmp_path, fmt="csv", progress=False, overwrite=True)
    assert (tmp_path / "purchases.csv").exists() and not (tmp_path / "purchases.parquet").exists()
    assert validate_dir(tmp_path, now="2026-01-01").quarantine.empty


def test_tiny_output_passes_contract_validation(tiny_dir: Path) -> None:
    result = validate_dir(tiny_dir, now="2026-01-01")
    assert result.quarantine.empty, result.quarantine.head().to_string()
    assert result.rows_read[Tables.PURCHASES] > 10_000


def test_tables_have_exactly_the_contract_columns(tiny_tables: dict[str, pd.DataFrame]) -> None:
    for name, frame in tiny_tables.items():
        assert list(frame.columns) == SCHEMAS[name].column_names, name


def test_truth_stays_out_of_visible_tables(tiny_dir: Path) -> None:
    truth_words = ("latent", "quality", "taste", "appeal", "incident", "loyalty", "band", "cause")
    visible = [p for p in tiny_dir.rglob("*") if p.is_file() and "truth" not in p.parts]
    assert visible
    for path in visible:
        columns = pd.read_parquet(path).columns
        leaked = [c for c in columns if any(w in c for w in truth_words)]
        assert not leaked, f"{path.name} has truth columns {leaked}"
    assert (tiny_dir / "truth" / "skus.parquet").exists()
    assert "latent" in pd.read_parquet(tiny_dir / "truth" / "skus.parquet").columns


def test_events_respect_ranges_and_references(tiny_tables: dict[str, pd.DataFrame]) -> None:
    t = tiny_tables
    skus, purchases, returns = t[Tables.SKUS], t[Tables.PURCHASES], t[Tables.RETURNS]
    assert skus[C.SKU_ID].str.fullmatch(r"S\d{5}").all()
    assert t[Tables.AGENTS][C.AGENT_ID].str.fullmatch(r"A\d{6}").all()
    assert t[Tables.CUSTOMERS][C.CUSTOMER_ID].str.fullmatch(r"C\d{7}").all()
    assert (skus[C.PRICE] > 0).all() and t[Tables.AGENTS][C.TIER].between(1, 5).all()
    assert str(purchases[C.TS].dtype) == "datetime64[ns, UTC]"
    assert purchases[C.TS].min() >= pd.Timestamp("2025-01-01", tz="UTC")
    assert set(returns[C.REASON]) <= set(RETURN_REASONS)
    merged = returns.merge(purchases, on=C.PURCHASE_ID, suffixes=("_r", ""), validate="m:1")
    assert (merged["ts_r"] > merged[C.TS]).all()
    returned = merged.groupby(C.PURCHASE_ID)["qty_r"].sum()
    bought = purchases.set_index(C.PURCHASE_ID)[C.QTY]
    assert (returned <= bought.loc[returned.index]).all()
    assert purchases[C.SHARE_ID].dropna().isin(t[Tables.SHARES][C.SHARE_ID]).all()


def test_events_follow_launches_joins_and_regions(tiny_tables: dict[str, pd.DataFrame]) -> None:
    t = tiny_tables
    skus = t[Tables.SKUS].set_index(C.SKU_ID)
    for table in (Tables.SHARES, Tables.PURCHASES):
        launched = skus.loc[t[table][C.SKU_ID], C.LAUNCHED_AT].to_numpy()
        assert (t[table][C.TS].to_numpy() >= launched).all(), table
    agents = t[Tables.AGENTS].set_index(C.AGENT_ID)
    shares = t[Tables.SHARES]
    assert (shares[C.TS].to_numpy() >= agents.loc[shares[C.AGENT_ID], C.JOINED_AT].to_numpy()).all()
    customers = t[Tables.CUSTOMERS].set_index(C.CUSTOMER_ID)
    purchases = t[Tables.PURCHASES]
    buyer = customers.loc[purchases[C.CUSTOMER_ID]]
    assert (purchases[C.TS].to_numpy() >= buyer[C.JOINED_AT].to_numpy()).all()
    regions = skus.loc[purchases[C.SKU_ID], C.REGIONS].to_numpy()
    sold_there = [len(r) == 0 or g in r for r, g in zip(regions, buyer[C.REGION], strict=True)]
    assert all(sold_there)
    assert (skus[C.REGIONS].map(len) > 0).any()  # some SKUs are regional
    assert np.isin(["active", "discontinued"], skus[C.STATUS]).all()
