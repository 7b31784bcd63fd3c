"""A/B experiments: their configuration and the deterministic assignment of agents to variants.

Assignment hashes (salt, unit id) to a point in [0, 1) and walks the cumulative variant weights,
so the same agent always sees the same variant, without storing anything per agent. Serving and
the A/B report share this one function.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SCALE = float(2**64)


class Variant(BaseModel):
    """One arm: its share of traffic and the published snapshot channel it serves from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    weight: float = Field(gt=0)
    # Which live pointer of the target this arm reads: "current" or a named channel
    # (e.g. "challenger") published with `recsys publish --channel challenger`.
    channel: str = Field("current", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    model_uri: str | None = None


class Experiment(BaseModel):
    """An experiment: name, salt and variants with weights; agents are the unit."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    salt: str = Field(min_length=1, max_length=128)
    target: Literal["agent", "customer"] = "agent"
    variants: list[Variant] = Field(min_length=1)
    enabled: bool = True

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        return variants

    @model_validator(mode="after")
    def _weights_positive(self) -> Experiment:
        if sum(v.weight for v in self.variants) <= 0:
            raise ValueError("variant weights must sum to > 0")
        return self

    @property
    def probabilities(self) -> np.ndarray:
        """Normalised variant weights, in variant order."""
        w = np.array([v.weight for v in self.variants], dtype=float)
        return w / w.sum()

    def assign(self, unit_id: str) -> Variant:
        """The variant `unit_id` is in (deterministic)."""
        return self.variants[assign_index(self.salt, unit_id, self.probabilities)]


def unit_point(salt: str, unit_id: str) -> float:
    """A uniform point in [0, 1) from sha256(salt:unit_id)."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign_index(salt: str, unit_id: str, probabilities: np.ndarray) -> int:
    """Index of the variant whose cumulative-weight interval holds the unit's point."""
    cumulative = np.cumsum(probabilities)
    point = unit_point(salt, unit_id)
    return int(min(np.searchsorted(cumulative, point, side="right"), len(cumulative) - 1))


def assign_many(experiment: Experiment, unit_ids: list[str]) -> list[str]:
    """Variant names for many units (the same answer as `Experiment.assign` for each)."""
    cumulative = np.cumsum(experiment.probabilities)
    points = np.array([unit_point(experiment.salt, u) for u in unit_ids])
    idx = np.minimum(np.searchsorted(cumulative, points, side="right"), len(cumulative) - 1)
    names = [v.name for v in experiment.variants]
    return [names[i] for i in idx]
