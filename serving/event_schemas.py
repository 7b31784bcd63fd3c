"""Request and response models of `POST /v1/events`.

The event shapes are built from the data contract's column specs (`recsys.events.kinds`), so the
documentation cannot drift from what the loader accepts. They document the API only: events are
checked one by one by `recsys.events.check` (a bad event must not fail the whole batch), so the
request model takes any list and the route judges each item.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator
from pydantic_core import PydanticCustomError

from recsys.contract.schema import ColumnSpec
from recsys.events.kinds import EVENT_ID, EVENT_SPECS, KIND, MAX_BATCH, MAX_EVENT_ID_LENGTH

_DOC_TYPES: dict[str, Any] = {"id": str, "str": str, "float": float, "int": int, "list": list[str]}
_TS_DOC = "ISO-8601; a value without offset is UTC; kept to the microsecond"


def _field(spec: ColumnSpec) -> tuple[Any, Any]:
    """(type, Field) documenting one column the way the contract reads it."""
    kind: Any = _DOC_TYPES.get(spec.kind, str)
    if spec.allowed is not None:
        kind = Literal[spec.allowed]  # type: ignore[valid-type]
    extra: dict[str, Any] = {}
    if spec.kind == "ts":
        extra = {"json_schema_extra": {"format": "date-time"}, "description": _TS_DOC}
    elif spec.name == EVENT_ID:
        extra = {"max_length": MAX_EVENT_ID_LENGTH, "description": "Client-made unique id"}
    for bound, key in ((spec.min_value, "ge"), (spec.gt_value, "gt")):
        if bound is not None:
            extra[key] = bound
    if spec.nullable:
        return kind | None, Field(None, **extra)
    return kind, Field(..., **extra)


def _event_model(kind: str) -> type[BaseModel]:
    """The documented shape of one kind of event: `kind`, `event_id` and its columns."""
    spec = EVENT_SPECS[kind]
    fields: dict[str, Any] = {KIND: (Literal[kind], ...)}  # type: ignore[valid-type]
    fields.update({c.name: _field(c) for c in spec.columns})
    name = f"{kind.capitalize()}Event"
    return create_model(name, __doc__=f"A {kind} event.", **fields)


EVENT_MODELS: dict[str, type[BaseModel]] = {kind: _event_model(kind) for kind in EVENT_SPECS}


class EventsIn(BaseModel):
    """A batch of events, each one of the documented kinds."""

    events: list[Any] = Field(
        description=f"Up to {MAX_BATCH} events; each is checked on its own",
        json_schema_extra={
            "items": {"oneOf": [m.model_json_schema() for m in EVENT_MODELS.values()]},
            "maxItems": MAX_BATCH,
        },
    )

    @field_validator("events")
    @classmethod
    def _at_most_max_batch(cls, events: list[Any]) -> list[Any]:
        if len(events) > MAX_BATCH:
            raise PydanticCustomError(
                "too_many_events",
                "a batch holds at most {limit} events, got {n}: split it into several calls",
                {"limit": MAX_BATCH, "n": len(events)},
            )
        return events


class RejectedOut(BaseModel):
    """An event refused: its position in the batch (0-based), its id, and every reason."""

    index: int = Field(ge=0)
    event_id: str | None
    reason: str = Field(examples=["qty must be >= 1, got 0"])


class EventsOut(BaseModel):
    """What became of a batch: events kept (stored now or earlier), and the refused ones."""

    accepted: int = Field(ge=0, description="Events that passed the checks")
    duplicates: int = Field(
        ge=0, description="Accepted events whose event_id was already stored (not stored again)"
    )
    rejected: list[RejectedOut]
    request_id: str
