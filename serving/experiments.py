"""A/B experiments the service runs: from a file (deploy time) and from Redis (admin API).

An experiment stored in Redis overrides a file experiment of the same name, so a file
experiment can be changed or switched off (`enabled: false`) without a redeploy. At most one
enabled experiment applies per target: the first by name (the admin API refuses a second).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import yaml
from pydantic import ValidationError

from recsys.ab import Experiment, Variant, assign_index

EXPERIMENTS_HASH = "ab:v1:experiments"
Source = Literal["file", "redis"]


def load_experiments_file(path: Path) -> dict[str, Experiment]:
    """Experiments from a YAML or JSON file: a list, or a mapping with an `experiments` list.

    Raises
    ------
    ValueError
        If the file does not hold experiments, names repeat, or one is invalid (named).
    """
    text = Path(path).read_text()
    data: Any = orjson.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    if isinstance(data, Mapping):
        data = data.get("experiments", [])
    if not isinstance(data, list):
        raise ValueError(f"experiments_file {path} must hold a list of experiments")
    out: dict[str, Experiment] = {}
    for i, item in enumerate(data):
        try:
            exp = Experiment.model_validate(item)
        except ValidationError as exc:
            raise ValueError(f"experiments_file {path}: experiment #{i} is invalid: {exc}") from exc
        if exp.name in out:
            raise ValueError(f"experiments_file {path}: experiment name {exp.name!r} repeats")
        out[exp.name] = exp
    return out


def decode_stored(raw: Mapping[bytes, bytes]) -> dict[str, Experiment]:
    """Experiments from the Redis hash (invalid records are skipped, not fatal)."""
    out = {}
    for name, value in raw.items():
        try:
            out[name.decode()] = Experiment.model_validate_json(value)
        except ValidationError:
            continue
    return out


@dataclass
class ExperimentRegistry:
    """File and Redis experiments merged, with the active one per target precomputed."""

    from_file: dict[str, Experiment] = field(default_factory=dict)
    from_redis: dict[str, Experiment] = field(default_factory=dict)
    active: dict[str, Experiment] = field(default_factory=dict)
    _probabilities: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._recompute()

    def effective(self) -> dict[str, tuple[Experiment, Source]]:
        """Every experiment by name with where it comes from (Redis wins over the file)."""
        merged: dict[str, tuple[Experiment, Source]] = {
            n: (e, "file") for n, e in self.from_file.items()
        }
        merged.update({n: (e, "redis") for n, e in self.from_redis.items()})
        return dict(sorted(merged.items()))

    def _recompute(self) -> None:
        active: dict[str, Experiment] = {}
        for exp, _ in self.effective().values():
            if exp.enabled and exp.target not in active:
                active[exp.target] = exp
        self.active = active
        self._probabilities = {t: e.probabilities for t, e in active.items()}

    def assign(self, target: str, unit_id: str) -> tuple[Experiment, Variant] | None:
        """The target's active experiment and the unit's variant in it (`recsys.ab.assign`)."""
        exp = self.active.get(target)
        if exp is None:
            return None
        return exp, exp.variants[assign_index(exp.salt, unit_id, self._probabilities[target])]

    def set_redis(self, experiments: dict[str, Experiment]) -> bool:
        """Replace the Redis experiments; True when anything changed."""
        if experiments == self.from_redis:
            return False
        self.from_redis = experiments
        self._recompute()
        return True

    def channels(self, target: str) -> list[str]:
        """Snapshot channels the target's active experiment reads (always with "current")."""
        exp = self.active.get(target)
        names = {"current"} | ({v.channel for v in exp.variants} if exp else set())
        return sorted(names)

    def conflict(self, candidate: Experiment) -> str | None:
        """Name of another enabled experiment on the candidate's target, if any."""
        if not candidate.enabled:
            return None
        for name, (exp, _) in self.effective().items():
            if name != candidate.name and exp.enabled and exp.target == candidate.target:
                return name
        return None
