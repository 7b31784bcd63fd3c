"""The model registry: names, lazy lookup, make_model errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recsys.models import MODEL_NAMES, MODELS, make_model
from recsys.models.popular import PopularRecommender


def test_registry_names_are_the_cli_names() -> None:
    assert list(MODELS) == [
        "popular", "repeat", "itemknn", "als", "bpr", "lightfm", "blend", "ranked"
    ]  # fmt: skip
    assert tuple(MODELS) == MODEL_NAMES
    assert "popular" in MODELS and "svd" not in MODELS
    assert len(MODELS) == 8


def test_registry_make_model_passes_params() -> None:
    model = make_model("popular", window_days=7, by="region")
    assert isinstance(model, PopularRecommender)
    assert (model.window_days, model.by) == (7, "region")
    assert MODELS["popular"] is PopularRecommender


def test_registry_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'svd'; valid names: popular, repeat, "):
        make_model("svd")
    with pytest.raises(KeyError):
        MODELS["svd"]


def test_registry_bad_param_names_the_model() -> None:
    with pytest.raises(TypeError, match="bad parameters for model 'repeat'.*'factors'"):
        make_model("repeat", factors=3)


def test_registry_listing_names_imports_no_model_library() -> None:
    code = (
        "import sys, recsys.models as m; names = list(m.MODELS); "
        "print(any(k in sys.modules for k in ('implicit', 'lightfm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
