"""Configuration of a training run: read from TOML, overridden from the command line."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.data.dataset import TARGETS

PRIMARY_METRIC = "kept_ndcg_at_20"
ENGINES: tuple[str, ...] = ("local", "spark")
REGISTERED_NAMES: dict[str, str] = {"agent": "item-to-agent", "customer": "item-to-customer"}


class TrainConfig(BaseModel):
    """Everything that decides what a training run computes (logged flat to MLflow)."""

    model_config = ConfigDict(extra="forbid")

    # a local folder, or (Spark engine) any URI Spark reads: s3a://bucket/data, hdfs://...
    data: Path | str
    target: Literal["agent", "customer"] = "agent"
    model: str = "als"
    params: dict[str, Any] = Field(default_factory=dict)
    weights: dict[str, Any] = Field(default_factory=dict)
    holdout_days: int = Field(14, ge=1)
    # evaluate at most this many holdout users, a sample drawn with `seed` (None: all of them);
    # bounds the evaluation's time and memory on the driver at a platform's size
    eval_users: int | None = Field(None, ge=1)
    ks: tuple[int, ...] = (10, 20, 50)
    seed: int = 0
    refit_full: bool = False
    register_model: bool = True
    experiment: str | None = None
    primary_metric: str = PRIMARY_METRIC
    engine: Literal["local", "spark"] = "local"

    @field_validator("data", mode="before")
    @classmethod
    def _data_location(cls, data: object) -> object:
        # a URI stays text: Path("s3a://b/x") would collapse it to "s3a:/b/x"
        if isinstance(data, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", data):
            return data
        return Path(data) if isinstance(data, str) else data

    @field_validator("ks")
    @classmethod
    def _check_ks(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"ks must be positive integers, got {ks}")
        return tuple(sorted(set(ks)))

    @field_validator("target")
    @classmethod
    def _check_target(cls, target: str) -> str:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        return target

    @property
    def registered_name(self) -> str:
        """Registry name of the model this run trains (`item-to-agent` or `item-to-customer`)."""
        return REGISTERED_NAMES[self.target]

    @property
    def experiment_name(self) -> str:
        """MLflow experiment of the run (default: the registered name)."""
        return self.experiment or self.registered_name

    def flat(self) -> dict[str, str]:
        """Parameters as flat `section.key` strings for MLflow (`model.factors`, `weights.x`)."""
        out: dict[str, str] = {}
        for key, value in self.model_dump(mode="json").items():
            if isinstance(value, dict):
                section = "model" if key == "params" else key
                for sub, v in sorted(value.items()):
                    out[f"{section}.{sub}"] = str(v)
            else:
                out[key] = str(value)
        return out

    def digest(self) -> str:
        """A short stable hash of the configuration."""
        blob = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:16]


def parse_param(text: str) -> tuple[str, Any]:
    """Parse a `name=value` override, reading the value as TOML (numbers, bools) or a string."""
    if "=" not in text:
        raise ValueError(f"parameter override must look like name=value, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return name.strip(), value


def load_config(path: Path | None, **overrides: Any) -> TrainConfig:
    """A TrainConfig from an optional TOML file, with non-None keyword overrides on top."""
    base: dict[str, Any] = {}
    if path is not None:
        try:
            base = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
    params = dict(base.pop("params", {}))
    params.update(overrides.pop("params", None) or {})
    base.update({k: v for k, v in overrides.items() if v is not None})
    base["params"] = params
    return TrainConfig(**base)
