"""Request and response models: they document the API (OpenAPI) and validate admin bodies.

The picks routes do not pass their answers through these models (they return bytes built by
`serving.answer`); tests check that those bytes validate against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from recsys.ab import Variant

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_K = 100
MAX_EXCLUDE = 200
SafeId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]


class ReasonOut(BaseModel):
    """Why a SKU is picked: a stable code, plain words, and the number shown in them."""

    code: str = Field(examples=["customers_rebuy"])
    text: str = Field(examples=["3 of your customers bought this before"])
    params: dict[str, int] = Field(examples=[{"n": 3}])


class PickOut(BaseModel):
    """One picked SKU."""

    sku_id: str
    score: float
    rank: int = Field(ge=1)
    reasons: list[ReasonOut]


_SOURCE_DOC = "`personal`, or `fallback:<region|tier|global|degraded>`"


class _PicksBase(BaseModel):
    picks: list[PickOut]
    model_version: str | None
    snapshot: str = Field(description="Id of the published snapshot the picks come from")
    variant: str | None = Field(description="A/B variant of the caller, null outside experiments")
    request_id: str
    source: str = Field(description=_SOURCE_DOC, examples=["personal", "fallback:region"])


class AgentPicksOut(_PicksBase):
    """Ranked SKU picks for one agent's storefront feed."""

    agent_id: str


class CustomerPicksOut(_PicksBase):
    """Ranked SKU picks for one customer."""

    customer_id: str


class SimilarOut(BaseModel):
    """SKUs similar to one SKU (`source`: similar, fallback:category or fallback:global)."""

    sku_id: str
    similar: list[PickOut]
    model_version: str | None
    snapshot: str
    request_id: str
    source: str


class ErrorOut(BaseModel):
    """Every error answer."""

    error: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["k: Input should be less than or equal to 100"])
    field: str | None = Field(None, examples=["k"])
    request_id: str
    errors: list[dict[str, Any]] | None = None


class SuspensionIn(BaseModel):
    """Why a SKU is suspended: words, and the numbers behind them (e.g. complaints, rate)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, examples=["wave of complaints"])
    numbers: dict[
        Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)],
        Annotated[float, Field(allow_inf_nan=False)],
    ] = Field(
        default_factory=dict, max_length=32, examples=[{"complaints": 14, "return_rate": 0.3}]
    )


class SuspensionOut(BaseModel):
    """A suspended SKU and its record."""

    sku_id: str
    reason: str
    numbers: dict[str, float] = Field(default_factory=dict)
    suspended_at: float | str | None = Field(None, description="Epoch seconds (or ISO time)")
    by: str | None = Field(None, description="Id of the key that suspended it")


class SuspensionsOut(BaseModel):
    """Every suspended SKU."""

    suspensions: list[SuspensionOut]


class LiftedOut(BaseModel):
    """Result of lifting a suspension."""

    sku_id: str
    lifted: bool


class ExperimentIn(BaseModel):
    """An experiment's definition (its name is the path parameter)."""

    model_config = ConfigDict(extra="forbid")

    salt: str = Field(min_length=1, max_length=128)
    target: Literal["agent", "customer"] = "agent"
    variants: list[Variant] = Field(min_length=1, max_length=16)
    enabled: bool = True


class ExperimentOut(ExperimentIn):
    """An experiment as the service runs it, with where it is defined."""

    name: str
    source: Literal["file", "redis"]
    active: bool = Field(description="True when it is the experiment applied to its target")


class ExperimentsOut(BaseModel):
    """Every experiment."""

    experiments: list[ExperimentOut]


class HealthOut(BaseModel):
    """Liveness."""

    status: str


class ReadyOut(BaseModel):
    """Readiness: Redis reachable and a snapshot live."""

    status: str
    redis: bool
    snapshots: dict[str, str]
