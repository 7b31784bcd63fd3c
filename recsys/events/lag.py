"""How far the sink is behind a stream: entries not yet acknowledged, and how old they are.

Lag in entries is what the consumer group has not acknowledged: entries never delivered plus
entries delivered but not acknowledged (pending). Redis 7 reports the first number (`lag` in
XINFO GROUPS); on Redis 6.2 it is counted by paging through the undelivered entries, up to a cap
(the lag then reads as "at least" the cap). Lag in seconds compares the time parts of the
newest entry id and of the oldest unacknowledged one, which costs two O(1) calls on any Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from recsys.events.stream import entry_ms

LAG_SCAN_CAP = 100_000
_PAGE = 2_000


@dataclass(frozen=True)
class StreamLag:
    """The sink's lag on one stream."""

    stream: str
    entries: int
    seconds: float
    pending: int
    exact: bool = True

    def describe(self) -> str:
        """`1,234 entries (3.2 s)`, with `≥` when the count stopped at the cap."""
        at_least = "" if self.exact else "≥"
        return f"{at_least}{self.entries:,} entries ({self.seconds:.1f} s)"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def lag_seconds(last_generated: Any, oldest_unacked: Any) -> float:
    """Seconds between the newest entry and the oldest unacknowledged one (0 when none)."""
    if not oldest_unacked:
        return 0.0
    return max(0.0, (entry_ms(last_generated) - entry_ms(oldest_unacked)) / 1000.0)


def group_info(client: Any, stream: str, group: str) -> dict[str, Any] | None:
    """The XINFO GROUPS record of `group` on `stream`, or None when the group does not exist."""
    for info in client.xinfo_groups(stream):
        name = info.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == group:
            return info
    return None


def _undelivered(client: Any, stream: str, after: Any, cap: int) -> tuple[int, Any, bool]:
    """(count, first id, exact) of the entries after `after`, counting up to `cap`."""
    n, first, start = 0, None, f"({_text(after)}"
    while n < cap:
        page = client.xrange(stream, start, "+", count=min(_PAGE, cap - n))
        if not page:
            return n, first, True
        first = first or page[0][0]
        n += len(page)
        start = f"({_text(page[-1][0])}"
    return n, first, not client.xrange(stream, start, "+", count=1)


def measure_lag(client: Any, stream: str, group: str, cap: int = LAG_SCAN_CAP) -> StreamLag:
    """The lag of `group` on `stream` (a stream that does not exist yet has none)."""
    try:
        stream_info = client.xinfo_stream(stream)
        info = group_info(client, stream, group)
    except ResponseError:  # no such key: nothing written yet
        return StreamLag(stream, 0, 0.0, 0)
    last_generated = stream_info.get("last-generated-id")
    last_delivered = info.get("last-delivered-id") if info is not None else "0-0"
    pending = int(info.get("pending", 0)) if info is not None else 0
    reported = info.get("lag") if info is not None else None
    if last_delivered == last_generated:
        undelivered, first, exact = 0, None, True
    elif reported is not None:
        undelivered, exact = int(reported), True
        page = client.xrange(stream, f"({_text(last_delivered)}", "+", count=1)
        first = page[0][0] if page else None
    else:
        undelivered, first, exact = _undelivered(client, stream, last_delivered, cap)
    oldest = first
    if pending:
        oldest = client.xpending(stream, group).get("min") or first
    return StreamLag(
        stream, undelivered + pending, lag_seconds(last_generated, oldest), pending, exact
    )
