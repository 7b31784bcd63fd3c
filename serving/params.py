"""Hand-parsed, bounded inputs of the picks routes, and their OpenAPI description.

FastAPI's per-parameter validation was over half the CPU of a cached picks answer
(docs/benchmarks-serving.md), so the hot routes take the raw query string and check it here —
same limits, same 422 wording naming the field — and describe the parameters to OpenAPI by hand.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from serving.errors import ApiError
from serving.schemas import ID_PATTERN, MAX_EXCLUDE, MAX_K

_ID = re.compile(ID_PATTERN)
MAX_ID = 64
MAX_EXCLUDE_CHARS = MAX_EXCLUDE * (MAX_ID + 1)
MAX_TIER = 99


class PicksQuery(NamedTuple):
    """The checked query of a picks request."""

    k: int
    category: str | None
    exclude: tuple[str, ...]
    region: str | None
    tier: str | None


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, f"{field}: {message}", field=field)


def check_id(field: str, value: str) -> str:
    """`value` if it is a safe id (pattern and length), else a 422 naming `field`."""
    if len(value) > MAX_ID:
        raise _invalid(field, f"String should have at most {MAX_ID} characters")
    if not _ID.match(value):
        raise _invalid(field, f"String should match pattern '{ID_PATTERN}'")
    return value


def check_int(field: str, raw: str, low: int, high: int) -> int:
    """`raw` as an integer in low..high, else a 422 naming `field`."""
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(
            field, "Input should be a valid integer, unable to parse string as an integer"
        ) from None
    if value < low:
        raise _invalid(field, f"Input should be greater than or equal to {low}")
    if value > high:
        raise _invalid(field, f"Input should be less than or equal to {high}")
    return value


def parse_exclude(raw: str) -> tuple[str, ...]:
    """The `exclude` ids: comma-separated, at most MAX_EXCLUDE, each a safe id."""
    if len(raw) > MAX_EXCLUDE_CHARS:
        raise _invalid("exclude", f"String should have at most {MAX_EXCLUDE_CHARS} characters")
    ids = tuple(s for s in raw.split(",") if s)
    if len(ids) > MAX_EXCLUDE:
        raise _invalid("exclude", f"at most {MAX_EXCLUDE} ids, got {len(ids)}")
    for sku in ids:
        if len(sku) > MAX_ID or not _ID.match(sku):
            raise _invalid("exclude", f"{sku[:80]!r} is not a valid SKU id ({ID_PATTERN})")
    return ids


def parse_picks_query(raw: bytes, default_k: int, *, filters: bool = True) -> PicksQuery:
    """Check k, category, exclude, region and tier (unknown parameters are ignored).

    An empty value counts as absent; a repeated parameter keeps its last value.
    """
    k, category, exclude, region, tier = default_k, None, (), None, None
    if raw:
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if not value:
                continue
            if name == "k":
                k = check_int("k", value, 1, MAX_K)
            elif name == "region":
                region = check_id("region", value)
            elif not filters:
                continue
            elif name == "category":
                category = check_id("category", value)
            elif name == "exclude":
                exclude = parse_exclude(value)
            elif name == "tier":
                tier = str(check_int("tier", value, 0, MAX_TIER))
    return PicksQuery(k, category, exclude, region, tier)


# ---- OpenAPI description of the same parameters ---------------------------------------------
def _param(name: str, where: str, schema: dict[str, Any], doc: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": doc,
    }


_ID_SCHEMA = {"type": "string", "pattern": ID_PATTERN, "maxLength": MAX_ID}


def path_id(name: str, doc: str) -> dict[str, Any]:
    """A path parameter holding a safe id."""
    return _param(name, "path", _ID_SCHEMA, doc)


def k_param(default: int) -> dict[str, Any]:
    """The `k` query parameter."""
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": default}
    return _param("k", "query", schema, "Number of picks")


REGION = _param(
    "region",
    "query",
    _ID_SCHEMA,
    "The caller's region: drops SKUs not sold there and picks the region fallback",
)
FILTERS = [
    _param("category", "query", _ID_SCHEMA, "Only SKUs of this category"),
    _param(
        "exclude",
        "query",
        {"type": "string", "maxLength": MAX_EXCLUDE_CHARS, "pattern": r"^[A-Za-z0-9_.:,-]*$"},
        f"Comma-separated SKU ids to leave out (at most {MAX_EXCLUDE})",
    ),
    REGION,
    _param(
        "tier",
        "query",
        {"type": "integer", "minimum": 0, "maximum": MAX_TIER},
        "The agent's tier: picks the tier fallback",
    ),
]
