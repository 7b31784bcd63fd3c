"""Events and exposures as Redis Stream entries: the intake's write script and the sink's decoding.

An event entry has three fields: `event_id`, `kind` and `data` (the checked event as a JSON
object, every column of its kind, timestamps ISO-8601 UTC). An exposure entry is what
serving/exposures.py writes (its module docstring lists the fields); its `event_id` in Parquet
is the stream entry id, the same on every redelivery.

The intake writes a batch with one script call: for each event, `SET <marker> NX EX ttl`, and
`XADD` only when the marker was new, so an event re-sent within the marker's lifetime is stored
once whatever it carries. Markers hash like the stream (`{<stream>}:seen:<event_id>`, or
`<stream>:seen:<event_id>` for a stream name that has a hash tag of its own), so the script
only touches one slot of a Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from recsys.columns import Columns
from recsys.events.kinds import EVENT_ID, KIND, KINDS, REQUEST_ID

DEFAULT_EVENT_STREAM = "events:v1:events"
DEFAULT_EXPOSURE_STREAM = "events:v1:exposures"
DEFAULT_GROUP = "parquet-sink"
DATA = "data"

# KEYS[1] the stream, KEYS[1 + i] the marker of event i; ARGV[1] MAXLEN (approximate),
# ARGV[2] marker TTL in seconds, then (event_id, kind, data) per event. Returns 1 per event
# stored, 0 per event already seen.
XADD_EVENTS = """
local out = {}
for i = 2, #KEYS do
  local at = 3 + (i - 2) * 3
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
               'event_id', ARGV[at], 'kind', ARGV[at + 1], 'data', ARGV[at + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


def hash_tag(key: str) -> str | None:
    """The part of `key` a Redis Cluster hashes when it is not the whole name: the text between
    the first `{` and the next `}`, if not empty (the cluster spec's hash tag rule)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else None


def seen_key(stream: str, event_id: str) -> str:
    """The marker that remembers `event_id` was stored (same cluster slot as the stream).

    Raises
    ------
    ValueError
        If the stream name holds a `}` outside a hash tag: no marker name could hash with it.
    """
    if hash_tag(stream) is not None:
        return f"{stream}:seen:{event_id}"  # the stream's own tag comes first in the marker
    if "}" in stream:
        raise ValueError(
            f"event stream name {stream!r} has a '}}' but no hash tag: use a name without "
            "braces, or one with a tag such as 'events:{intake}:events'"
        )
    return f"{{{stream}}}:seen:{event_id}"


def script_call(
    stream: str, records: list[tuple[str, dict[str, Any]]], *, maxlen: int, ttl_s: int
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of one `XADD_EVENTS` call for (kind, record) pairs of checked events."""
    keys = [stream]
    args: list[Any] = [maxlen, ttl_s]
    for kind, record in records:
        event_id = record[EVENT_ID]
        keys.append(seen_key(stream, event_id))
        args += [event_id, kind, orjson.dumps(record)]
    return keys, args


def text_fields(fields: Mapping[Any, Any]) -> dict[str, str]:
    """Stream entry fields as str (redis-py gives bytes unless decoding is on)."""
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode(errors="replace") if isinstance(v, bytes) else str(v)
        )
        for k, v in fields.items()
    }


def decode_event(fields: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """(kind, record) of an event entry.

    Raises
    ------
    ValueError
        If the entry has no known kind or its data is not a JSON object.
    """
    kind = fields.get(KIND)
    if kind not in KINDS:
        raise ValueError(f"{KIND} must be one of {', '.join(KINDS)}, got {kind!r}")
    try:
        record = orjson.loads(fields.get(DATA, ""))
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{DATA} is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{DATA} must be a JSON object, got {type(record).__name__}")
    return kind, record


def _json_list(fields: Mapping[str, str], name: str) -> list[Any]:
    try:
        value = orjson.loads(fields.get(name, ""))
    except orjson.JSONDecodeError:
        raise ValueError(f"{name} must be a JSON list, got {fields.get(name)!r}") from None
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a JSON list, got {fields.get(name)!r}")
    return value


def decode_exposure(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """The exposures-table row of one exposure entry; empty texts become nulls.

    Raises
    ------
    ValueError
        If a required field is missing or malformed (the reason names it).
    """
    required = [REQUEST_ID, Columns.TS, "target", "snapshot", "source"]
    missing = [name for name in required if not fields.get(name)]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    target = fields["target"]
    if target not in ("agent", "customer"):
        raise ValueError(f"target must be 'agent' or 'customer', got {target!r}")
    user_field = f"{target}_id"
    if not fields.get(user_field):
        raise ValueError(f"{user_field} is empty but required for target {target!r}")
    try:
        ms = int(fields[Columns.TS])
        ts = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"ts must be epoch milliseconds, got {fields[Columns.TS]!r}") from None
    skus = _json_list(fields, "sku_ids")
    positions = _json_list(fields, "positions")
    if not all(isinstance(s, str) and s for s in skus):
        raise ValueError("sku_ids must be a list of non-empty texts")
    if len(positions) != len(skus) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p < 2**31 for p in positions
    ):
        raise ValueError("positions must be 1-based ranks aligned with sku_ids")

    def text(name: str) -> str | None:
        return fields.get(name) or None

    return {
        EVENT_ID: entry_id,
        REQUEST_ID: fields[REQUEST_ID],
        Columns.TS: ts,
        "target": target,
        Columns.AGENT_ID: text(Columns.AGENT_ID),
        Columns.CUSTOMER_ID: text(Columns.CUSTOMER_ID),
        "experiment": text("experiment"),
        "variant": text("variant"),
        "snapshot": fields["snapshot"],
        "model_version": text("model_version"),
        "sku_ids": skus,
        "positions": positions,
        "source": fields["source"],
    }


def entry_ms(entry_id: str | bytes) -> int:
    """The millisecond time part of a stream entry id (`1719800000000-3` → 1719800000000)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])
