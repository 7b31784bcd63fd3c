"""Fixtures of the training tests: a tiny simulated data set and a private MLflow store."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private MLflow store (sqlite + artifacts) for the whole session."""
    root = tmp_path_factory.mktemp("mlruns")
    saved = {k: os.environ.get(k) for k in ("RECSYS_MLRUNS", "MLFLOW_TRACKING_URI")}
    os.environ["RECSYS_MLRUNS"] = str(root)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
