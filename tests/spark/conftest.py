"""One local Spark session for every Spark test, the tiny data set, and a Spark-trained model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.contract.loader import load_tables

# Small enough for the tiny data; the same numbers for both engines where they are compared.
ALS_PARAMS: dict[str, Any] = {"factors": 16, "iterations": 10, "regularization": 0.05}
SPARK_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A `local[2]` session shared by the Spark tests (the jobs find it as the active one)."""
    from training.spark.session import spark_session

    session = spark_session("local[2]", SPARK_CONF, app_name="recsys-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_tables(spark: Any, sim_tiny_dir: Path) -> dict[str, Any]:
    """The tiny simulated tables read by Spark."""
    from training.spark.io import read_tables

    return read_tables(spark, str(sim_tiny_dir))


@pytest.fixture(scope="session")
def local_tables(sim_tiny_dir: Path) -> dict[str, pd.DataFrame]:
    """The same tables read by the local loader."""
    return load_tables(sim_tiny_dir)


@pytest.fixture(scope="session")
def spark_trained(spark: Any, sim_tiny_dir: Path) -> Any:
    """An item-to-agent ALS trained with Spark on the tiny data, logged and registered."""
    from training.config import load_config
    from training.spark.train import run_spark_training

    config = load_config(
        None, data=sim_tiny_dir, model="als", params=ALS_PARAMS, experiment="spark-tests"
    )
    return run_spark_training(config, master="local[2]")
