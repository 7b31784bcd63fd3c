"""Fixtures of the A/B report tests: a hand-built tiny experiment and simulated data directories.

The tiny experiment `exp1` (salt `s0`, which puts A1 in A and A2 in B) is small enough to
compute every outcome by hand; test_outcomes.py spells the arithmetic out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.ab import Experiment, Variant
from recsys.abtest.data import ExperimentData
from recsys.abtest.sim_config import scenario
from recsys.abtest.sim_write import write_experiment
from recsys.abtest.simulate import SimulatedExperiment, simulate_experiment


def ts(text: str) -> pd.Timestamp:
    """A UTC timestamp."""
    return pd.Timestamp(text, tz="UTC")


def _frame(
    rows: list[tuple], columns: list[str], ts_cols: tuple[str, ...] = ("ts",)
) -> pd.DataFrame:
    """A frame with UTC timestamp columns."""
    frame = pd.DataFrame(rows, columns=columns)
    for col in ts_cols:
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
    return frame


TINY_EXPERIMENT = Experiment(
    name="exp1",
    salt="s0",
    variants=[
        Variant(name="A", weight=1, model_uri="models:/item-to-agent/1"),
        Variant(name="B", weight=1, model_uri="models:/item-to-agent/2"),
    ],
)


def tiny_data() -> ExperimentData:
    """Two analysed agents (A1 in A, A2 in B), one in both arms (A3), one in an unknown arm (A4)."""
    served = [
        # event_id, ts, agent_id, experiment, variant, model_version, sku_ids
        ("E1", "2025-03-10 10:00", "A1", "exp1", "A", "1", ["S1", "S2"]),
        ("E2", "2025-03-12 09:00", "A1", "exp1", "A", "1", ["S2", "S3"]),
        ("E3", "2025-03-20 09:00", "A1", "exp1", "A", "1", ["S4"]),
        ("E4", "2025-03-11 00:00", "A2", "exp1", "B", "2", ["S2", "S6"]),
        ("E5", "2025-03-11 00:00", "A3", "exp1", "A", "1", ["S1"]),
        ("E6", "2025-03-12 00:00", "A3", "exp1", "B", "2", ["S1"]),
        ("E7", "2025-03-12 00:00", "A4", "exp1", "Z", "9", ["S1"]),
        ("E8", "2025-03-05 00:00", "A1", "other", "A", "7", ["S8"]),
    ]
    exposures = _frame(
        [
            (e, f"Q{e[1:]}", t, "agent", a, None, x, v, f"snap-{v}", m, s, positions, "model")
            for e, t, a, x, v, m, s in served
            for positions in [list(range(1, len(s) + 1))]
        ],
        ["event_id", "request_id", "ts", "target", "agent_id", "customer_id", "experiment",
         "variant", "snapshot", "model_version", "sku_ids", "positions", "source"],
    )  # fmt: skip
    clicks = _frame(
        [
            ("K1", "2025-03-11 00:00", "A1", "C4", "S1", None),  # C4 reached in A1's window
            ("K2", "2025-03-11 01:00", "A1", "C2", "S1", None),  # C2 reached (bought too)
            ("K3", "2025-03-16 00:00", "A1", "C3", "S1", None),  # C3 joined after the window
            ("K4", "2025-02-01 00:00", "A1", "C4", "S1", None),  # before the pre-period
        ],
        ["event_id", "ts", "agent_id", "customer_id", "sku_id", "request_id"],
    )
    shares = _frame(
        [
            ("H1", "2025-03-10 12:00", "A1", "S1"),  # shared after served: counts
            ("H2", "2025-03-11 00:00", "A1", "S3"),  # before S3 was served
            ("H3", "2025-03-13 00:00", "A1", "S3"),  # counts
            ("H4", "2025-03-11 00:00", "A1", "S9"),  # never served
            ("H5", "2025-03-18 00:00", "A1", "S2"),  # after the window
            ("H6", "2025-03-01 00:00", "A1", "S7"),  # pre-period
        ],
        ["share_id", "ts", "agent_id", "sku_id"],
    )
    purchases = _frame(
        [
            ("P0", "O0", "2025-01-01 00:00", "C9", "A2", "S2", 1, 99.0),  # before the pre-period
            ("P9", "O9", "2025-02-20 00:00", "C2", "A1", "S5", 2, 15.0),  # pre
            ("P1", "O1", "2025-03-09 00:00", "C1", "A1", "S1", 1, 10.0),  # pre
            ("P2", "O2", "2025-03-10 11:00", "C1", "A1", "S1", 2, 10.0),
            ("P3", "O3", "2025-03-12 08:00", "C1", "A1", "S3", 1, 30.0),  # before S3 was served
            ("P4", "O4", "2025-03-15 00:00", "C2", "A1", "S5", 1, 50.0),
            ("P5", "O5", "2025-03-16 00:00", "C9", "A1", "S2", 1, 40.0),  # A2's customer
            ("P6", "O6", "2025-03-18 00:00", "C1", "A1", "S1", 1, 10.0),  # after the window
            ("P7", "O7", "2025-03-14 00:00", "C1", "A2", "S6", 1, 25.0),  # A1's customer via A2
            ("P8", "O8", "2025-03-12 00:00", "C9", "A2", "S2", 3, 40.0),
        ],
        ["purchase_id", "order_id", "ts", "customer_id", "agent_id", "sku_id", "qty", "unit_price"],
    )
    returns = _frame(
        [
            ("R1", "2025-03-20 00:00", "P2", 1),  # 10 days after: counts
            ("R2", "2025-04-20 00:00", "P4", 1),  # 36 days after: too late
            ("R3", "2025-03-13 00:00", "P8", 2),
            ("R4", "2025-03-09 23:00", "P1", 1),  # pre-period return seen before the start
            ("R5", "2025-03-12 00:00", "P9", 1),  # pre-period line, returned after the start
        ],
        ["return_id", "ts", "purchase_id", "qty"],
    )
    customers = _frame(
        [
            ("C1", "A1", "2024-01-01"),
            ("C2", "A1", "2024-01-01"),
            ("C3", "A1", "2025-03-20"),
            ("C4", "A1", "2024-06-01"),
            ("C9", "A2", "2024-01-01"),
        ],
        ["customer_id", "agent_id", "joined_at"],
        ts_cols=("joined_at",),
    )
    return ExperimentData(exposures, clicks, shares, purchases, returns, customers)


@pytest.fixture()
def tiny() -> ExperimentData:
    """The hand-built experiment's frames (fresh per test)."""
    return tiny_data()


@pytest.fixture(scope="session")
def sim_effect_tiny() -> SimulatedExperiment:
    """A simulated `tiny` experiment where B is better (seed 1), in memory."""
    return simulate_experiment(scenario("effect", "tiny"), 1)


@pytest.fixture(scope="session")
def sim_effect_dir(
    sim_effect_tiny: SimulatedExperiment, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`sim_effect_tiny` written as a data directory (with experiments.yaml)."""
    return write_experiment(sim_effect_tiny, tmp_path_factory.mktemp("ab-effect") / "data")
