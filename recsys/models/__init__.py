"""Recommenders behind one interface, registered by their CLI name.

`MODELS` maps each name to its class; a class's module is imported only when it is first looked
up, so listing the names (e.g. for `--model` choices) does not import implicit or LightFM.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from recsys.models.base import BaseRecommender

# CLI name -> (module, class); the order is the order of `--model` choices.
_REGISTRY: dict[str, tuple[str, str]] = {
    "popular": ("recsys.models.popular", "PopularRecommender"),
    "repeat": ("recsys.models.repeat", "RepeatRecommender"),
    "itemknn": ("recsys.models.itemknn", "ItemKNNRecommender"),
    "als": ("recsys.models.implicit_models", "ALSRecommender"),
    "bpr": ("recsys.models.implicit_models", "BPRRecommender"),
    "lightfm": ("recsys.models.lightfm_hybrid", "LightFMRecommender"),
    "blend": ("recsys.models.blend", "BlendRecommender"),
    "ranked": ("recsys.models.ranked", "RankedRecommender"),
}
MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


class _ModelRegistry(Mapping[str, type[BaseRecommender]]):
    """A read-only name -> class mapping that imports each model's module on first lookup."""

    def __getitem__(self, name: str) -> type[BaseRecommender]:
        module_name, class_name = _REGISTRY[name]
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, BaseRecommender)):
            raise TypeError(f"{module_name}.{class_name} is not a BaseRecommender subclass")
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __repr__(self) -> str:
        return f"MODELS({', '.join(_REGISTRY)})"


MODELS: Mapping[str, type[BaseRecommender]] = _ModelRegistry()


def make_model(name: str, **params: Any) -> BaseRecommender:
    """A new, unfitted model registered as `name`, built with constructor `params`.

    Raises
    ------
    ValueError
        If `name` is not a registered model (the message lists the valid names).
    TypeError
        If `params` holds an argument the model's constructor does not take.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    cls = MODELS[name]
    try:
        return cls(**params)
    except TypeError as exc:
        raise TypeError(f"bad parameters for model {name!r} ({cls.__name__}): {exc}") from exc


__all__ = ["MODELS", "MODEL_NAMES", "BaseRecommender", "make_model"]
