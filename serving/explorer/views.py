"""What the explorer's templates show: picks as cards, feeds, return-rate badges, profiles.

Plain data built from a served snapshot and the published records; the templates only lay it
out (and Jinja escapes every value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from recsys.columns import Columns
from serving.served import ServedSnapshot

C = Columns
# Share of units returned: below LOW the SKU is safe to push, from HIGH on the agent risks
# her group's trust (in fresh food one return eats the profit of about five orders).
RETURN_LOW = 0.05
RETURN_HIGH = 0.15
PRICE_KEYS = ("low", "median", "high")
PROFILE_FIELDS = (
    "region",
    "tier",
    "audience_size",
    "buyers",
    "units",
    "return_rate",
    "price_band",
    "top_categories",
)


@dataclass(frozen=True)
class Badge:
    """A return-rate badge: its words and its level (none, low, mid, high) for the colour."""

    text: str
    level: str


def return_badge(stats: Mapping[str, Any] | None, published: bool = True) -> Badge:
    """The badge of a SKU from its return figures (None: no sale, or none `published`)."""
    if not published:
        return Badge("return rate not published", "none")
    if not stats or not stats.get("units"):
        return Badge("no sales yet", "none")
    rate = float(stats.get("return_rate") or 0.0)
    level = "low" if rate < RETURN_LOW else "mid" if rate < RETURN_HIGH else "high"
    return Badge(f"{rate:.1%} returned (of {int(stats['units'])} sold)", level)


@dataclass
class Card:
    """One pick as the explorer shows it."""

    rank: int
    sku_id: str
    title: str
    category: str
    price: float | None
    score: float
    reasons: list[str]
    badge: Badge
    other_rank: int | None = None  # rank of the same SKU in the other feed (compare view)

    @property
    def overlap(self) -> bool:
        """True when the other feed of a comparison has this SKU too."""
        return self.other_rank is not None


@dataclass
class Feed:
    """A ranked list for one agent from one snapshot, with where it comes from."""

    label: str
    snapshot: str
    model_version: str | None
    source: str
    variant: str | None
    cards: list[Card] = field(default_factory=list)

    @property
    def sku_ids(self) -> list[str]:
        """SKU ids in rank order."""
        return [c.sku_id for c in self.cards]


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def build_cards(
    served: ServedSnapshot,
    picks: Sequence[Mapping[str, Any]],
    stats: Mapping[str, Mapping[str, Any]] | None,
) -> list[Card]:
    """Cards of a picks answer (sku_id, score, rank, reasons) on its snapshot's SKU table."""
    frame = served.snapshot.skus.frame
    cards = []
    for pick in picks:
        sku = str(pick["sku_id"])
        row = served.row_of.get(sku)
        values = frame.iloc[row] if row is not None else None
        price = float(values[C.PRICE]) if values is not None else None
        cards.append(
            Card(
                rank=int(pick["rank"]),
                sku_id=sku,
                title=_text(values[C.TITLE]) if values is not None else "",
                category=_text(values[C.CATEGORY]) if values is not None else "",
                price=None if price is None or math.isnan(price) else price,
                score=float(pick["score"]),
                reasons=[str(r["text"] or r["code"]) for r in pick.get("reasons", ())],
                badge=return_badge(stats.get(sku) if stats else None, stats is not None),
            )
        )
    return cards


def mark_overlap(left: Feed, right: Feed) -> set[str]:
    """Set each card's rank in the other feed; return the SKU ids both feeds hold."""
    rank_left = {c.sku_id: c.rank for c in left.cards}
    rank_right = {c.sku_id: c.rank for c in right.cards}
    for card in left.cards:
        card.other_rank = rank_right.get(card.sku_id)
    for card in right.cards:
        card.other_rank = rank_left.get(card.sku_id)
    return set(rank_left) & set(rank_right)


def mlflow_run_url(base: str, run_id: object) -> str | None:
    """Link to a run in the MLflow UI (its run page redirects to the experiment), or None."""
    if not run_id:
        return None
    return f"{base.rstrip('/')}/#/runs/{quote(str(run_id), safe='')}"


def when_text(value: object) -> str:
    """A moment as `YYYY-MM-DD HH:MM UTC` (epoch seconds or ISO text; other text as is)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return ""


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def profile_view(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A published profile with every field present (None when missing or malformed)."""
    if raw is None:
        return None
    out = {name: raw.get(name) for name in PROFILE_FIELDS}
    band = out["price_band"]
    if not (isinstance(band, Mapping) and all(_number(band.get(k)) for k in PRICE_KEYS)):
        out["price_band"] = None
    cats = out["top_categories"]
    out["top_categories"] = [
        c
        for c in (cats if isinstance(cats, list) else [])
        if isinstance(c, Mapping) and c.get("category") is not None and _number(c.get("share"))
    ]
    for name in ("audience_size", "buyers", "units", "return_rate"):
        if not _number(out[name]):
            out[name] = None
    return out
