"""Fixtures of the simulator tests: one `tiny` run written to disk and one kept in memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.columns import Tables
from recsys.contract.io import SOURCE_FILE, SOURCE_ROW, read_raw_table
from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import SimulationResult, simulate, write_simulation
from recsys.simulation.truth import Truth, load_truth

SEED = 0


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `tiny` data directory (Parquet) with its truth folder."""
    out = tmp_path_factory.mktemp("tiny")
    write_simulation(SimConfig.preset("tiny"), SEED, out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_tables(tiny_dir: Path) -> dict[str, pd.DataFrame]:
    """The six tables of `tiny_dir` as read back from disk."""
    return {
        name: read_raw_table(tiny_dir, name).drop(columns=[SOURCE_FILE, SOURCE_ROW])
        for name in Tables.ALL
    }


@pytest.fixture(scope="session")
def tiny_truth(tiny_dir: Path) -> Truth:
    """The ground truth of `tiny_dir`."""
    return load_truth(tiny_dir)


@pytest.fixture(scope="session")
def tiny_run() -> SimulationResult:
    """The same `tiny` run kept in memory (world, final state, tables)."""
    return simulate(SimConfig.preset("tiny"), SEED)
