"""The holdout truth and segments are the same whether ids come as `str` or with Arrow twins."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.contract.io import write_table
from recsys.contract.loader import load_tables_cached
from recsys.evaluation.splitters import temporal_split
from tests.features.tiny import random_tables


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_truth_and_segments_do_not_depend_on_arrow_ids(seed: int, tmp_path: Path) -> None:
    for name, frame in random_tables(seed, n_purchases=80, n_shares=20).items():
        write_table(frame, tmp_path / f"{name}.parquet", name)
    loaded = load_tables_cached(tmp_path, now="2024-06-01", on_quarantine="raise")
    plain = temporal_split(loaded.tables, holdout_days=7)
    fast = temporal_split(loaded.tables, holdout_days=7, arrow_columns=loaded.arrow)
    new = []
    for target in ("agent", "customer"):
        truth = fast.truth(target)
        pd.testing.assert_frame_equal(truth, plain.truth(target))
        pd.testing.assert_frame_equal(fast.segments(target), plain.segments(target))
        new += truth["is_new"].tolist()
    assert any(new) and not all(new)  # both branches of "seen before" were exercised
