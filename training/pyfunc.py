"""The MLflow pyfunc wrapper: `load_model("models:/item-to-agent@champion").predict(frame)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature, infer_signature

from recsys.columns import Columns
from recsys.data.dataset import user_column
from recsys.models.base import BaseRecommender

MODEL_ARTIFACT = "recommender"
DEFAULT_PARAMS: dict[str, Any] = {"k": 20, "exclude_seen": False}


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """Predicts top-k picks for a frame with one id column (`agent_id` or `customer_id`)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the saved recommender from the model's artifacts."""
        self.model = BaseRecommender.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Reco table (id, sku_id, score, rank) for the ids in `model_input`."""
        params = {**DEFAULT_PARAMS, **(params or {})}
        col = user_column(self.model.target_)
        if col not in model_input.columns:
            raise ValueError(f"model input needs a column {col!r}, got {list(model_input.columns)}")
        ids = model_input[col].astype(str).tolist()
        return self.model.recommend(
            ids, k=int(params["k"]), exclude_seen=bool(params["exclude_seen"])
        )


def signature_for(target: str) -> ModelSignature:
    """Input: one id column; output: the reco table; params: `k`, `exclude_seen`."""
    col = user_column(target)
    example_in = pd.DataFrame({col: ["id"]})
    example_out = pd.DataFrame(
        {col: ["id"], Columns.SKU_ID: ["sku"], Columns.SCORE: [1.0], Columns.RANK: [1]}
    ).astype({Columns.SCORE: "float32", Columns.RANK: "int32"})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return infer_signature(example_in, example_out, params=DEFAULT_PARAMS)
