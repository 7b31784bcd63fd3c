"""Shared fixtures: a real Redis server (REDIS_URL, or one started for the session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from recsys.cache.server import RedisServer, start_redis_server

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Property tests check values, not speed: on a shared, loaded machine one example can take
# longer than hypothesis's 200 ms default deadline, which would fail a correct test.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")


@pytest.fixture(scope="session", autouse=True)
def _private_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test session writes MLflow runs to its own temporary store, never `./mlruns`."""
    saved = {k: os.environ.get(k) for k in ("RECSYS_MLRUNS", "MLFLOW_TRACKING_URI")}
    os.environ["RECSYS_MLRUNS"] = str(tmp_path_factory.mktemp("mlruns"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A private redis-server for the test session; None when REDIS_URL points at one."""
    if os.environ.get("REDIS_URL"):
        yield None
        return
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    """URL of the real Redis the tests talk to."""
    return os.environ.get("REDIS_URL") or redis_server.url  # type: ignore[union-attr]


@pytest.fixture()
def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    """A client on a clean database (flushed before each test)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sim_tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated `tiny` data directory (seed 0) with its truth/ folder, made once a session."""
    from recsys.simulation.config import SimConfig
    from recsys.simulation.simulate import write_simulation

    out = tmp_path_factory.mktemp("sim-tiny")
    write_simulation(SimConfig.preset("tiny"), 0, out, progress=False)
    return out
