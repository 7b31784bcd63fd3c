"""Reason codes attached to picks: a one-byte id, a stable code name and a plain-words template.

Ids are part of the cache encoding (`recsys.cache.codec`): once published, an id keeps its
meaning forever; new reasons take new ids. Each reason may carry one small integer parameter
(0..65535) that its template shows, e.g. `customers_rebuy` with n=3 reads "3 of your customers
bought this before". A parameter of 0 means "unknown" and selects the `plain` wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

NO_REASON = 0
MAX_PARAM = 0xFFFF


@dataclass(frozen=True)
class Reason:
    """One reason: id (1..255), code name, templates and the name of its parameter."""

    id: int
    code: str
    template: str
    param: str | None = None  # placeholder name in `template`, e.g. "n"
    plain: str | None = None  # wording when the parameter is 0 (unknown)
    singular: str | None = None  # wording when the parameter is 1

    def render(self, value: int = 0) -> str:
        """The reason in plain words for parameter `value`."""
        if self.param is None:
            return self.template
        if value == 0 and self.plain is not None:
            return self.plain
        if value == 1 and self.singular is not None:
            return self.singular
        return self.template.format(**{self.param: value})


_REASONS: dict[int, Reason] = {}
_BY_CODE: dict[str, Reason] = {}


def register_reason(reason: Reason) -> Reason:
    """Add a reason to the registry, refusing a reused id or code name.

    Raises
    ------
    ValueError
        If the id is outside 1..255, or the id or code is already registered.
    """
    if not 1 <= reason.id <= 255:
        raise ValueError(f"reason id must be in 1..255, got {reason.id} for {reason.code!r}")
    if reason.id in _REASONS:
        raise ValueError(f"reason id {reason.id} is taken by {_REASONS[reason.id].code!r}")
    if reason.code in _BY_CODE:
        raise ValueError(f"reason code {reason.code!r} is already registered")
    if reason.param is not None and "{" + reason.param not in reason.template:
        raise ValueError(f"template of {reason.code!r} does not use {{{reason.param}}}")
    _REASONS[reason.id] = reason
    _BY_CODE[reason.code] = reason
    return reason


for _reason in (
    Reason(1, "picked_for_you", "Picked for you"),
    Reason(
        2,
        "customers_rebuy",
        "{n} of your customers bought this before",
        param="n",
        plain="Your customers bought this before",
    ),
    Reason(
        3,
        "bought_before",
        "You bought this {n} times before",
        param="n",
        plain="You bought this before",
        singular="You bought this once before",
    ),
    Reason(
        4,
        "similar_agents_sell",
        "{n} agents like you sell this well",
        param="n",
        plain="Agents like you sell this well",
    ),
    Reason(
        5,
        "low_return_rate",
        "Only {pct}% of buyers returned it",
        param="pct",
        plain="Almost never returned",
    ),
    Reason(6, "fits_price_band", "Fits the price range your customers buy in"),
    Reason(7, "new_in_series", "New in a series you sell"),
    Reason(
        8,
        "trending_region",
        "Sales up {pct}% in your region this week",
        param="pct",
        plain="Trending in your region",
    ),
    Reason(
        9,
        "popular_in_region",
        "{n} buyers in your region bought this recently",
        param="n",
        plain="Popular in your region",
        singular="A buyer in your region bought this recently",
    ),
    Reason(
        10,
        "popular_with_tier",
        "Popular with tier {tier} agents",
        param="tier",
        plain="Popular with agents of your tier",
    ),
    Reason(
        11,
        "popular_overall",
        "{n} buyers bought this recently",
        param="n",
        plain="Popular right now",
        singular="A buyer bought this recently",
    ),
):
    register_reason(_reason)

REASONS = MappingProxyType(_REASONS)
"""Registered reasons by id (read-only view; add with `register_reason`)."""


def reason_id(code: str) -> int:
    """The id of reason `code`; raise KeyError naming the known codes if it is unknown."""
    try:
        return _BY_CODE[code].id
    except KeyError:
        raise KeyError(f"unknown reason code {code!r}; known: {', '.join(_BY_CODE)}") from None


def reason_code(rid: int) -> str:
    """The code name of reason id `rid`; raise KeyError if it is unknown."""
    try:
        return _REASONS[int(rid)].code
    except KeyError:
        raise KeyError(f"unknown reason id {rid!r}") from None


def render_reason(reason: int | str, value: int = 0) -> str:
    """Plain words for a reason given by id or code, with its parameter `value`."""
    rid = reason_id(reason) if isinstance(reason, str) else int(reason)
    if rid not in _REASONS:
        raise KeyError(f"unknown reason id {rid!r}")
    return _REASONS[rid].render(int(value))


def reason_table() -> list[dict[str, object]]:
    """All reasons as plain records (stored in each snapshot's meta for readers)."""
    return [
        {
            "id": r.id,
            "code": r.code,
            "template": r.template,
            "param": r.param,
            "plain": r.plain,
            "singular": r.singular,
        }
        for r in sorted(_REASONS.values(), key=lambda r: r.id)
    ]
