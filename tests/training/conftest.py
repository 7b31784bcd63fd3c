"""Fixtures of the training tests: a tiny simulated data set and the session's MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import write_simulation

SEED = 3


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `tiny` simulated data directory (with its truth folder)."""
    out = tmp_path_factory.mktemp("tiny-train")
    write_simulation(SimConfig.preset("tiny"), SEED, out, progress=False)
    return out


@pytest.fixture(scope="session")
def mlflow_store() -> Path:
    """The session's private MLflow store (set up by the root conftest)."""
    return Path(os.environ["RECSYS_MLRUNS"])
