"""A ranked model fitted once on the simulated tiny log (split 14 days before its end)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.data.dataset import Dataset
from recsys.evaluation.splitters import Split

# Small, fast settings: tiny has 130 agents and 600 SKUs.
FAST: dict[str, Any] = {
    "als_factors": 16,
    "audience_factors": 8,
    "ranker_iter": 40,
    "max_train_agents": 200,
}


@dataclass
class Fitted:
    """Everything the ranking tests read: the log, its split, the dataset, the model."""

    tables: dict[str, pd.DataFrame]
    split: Split
    dataset: Dataset
    model: Any


@pytest.fixture(scope="session")
def tiny_ranked(sim_tiny_dir: Path) -> Fitted:
    from features.dataset import build_dataset
    from recsys.contract.loader import load_tables
    from recsys.evaluation.splitters import temporal_split
    from recsys.models import make_model

    tables = load_tables(sim_tiny_dir, on_quarantine="ignore")
    split = temporal_split(tables, holdout_days=14)
    dataset = build_dataset(split.tables, "agent", cutoff=split.cutoff, fingerprint="tiny")
    model = make_model("ranked", **FAST).fit(dataset)
    return Fitted(tables, split, dataset, model)
