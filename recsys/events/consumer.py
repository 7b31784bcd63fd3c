"""Reading several streams as one consumer of a consumer group, at least once.

An entry stays in the group's pending list until it is acknowledged, so a consumer that dies
between reading and acknowledging gets it again: its own pending entries on restart (read from
id `0`), or, under another consumer name, once they have been idle for `claim_idle_ms`
(XAUTOCLAIM moves them over). Entries trimmed from the stream while pending come back with no
fields; they are acknowledged and counted, as nothing of them is left to write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.exceptions import ResponseError

from recsys.events.stream import text_fields

# (entry id, fields); fields are empty for an entry trimmed away while pending.
Entry = tuple[str, dict[str, str]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GroupReader:
    """One consumer (`consumer`) of `group` on `streams`, reading up to `count` entries a stream."""

    def __init__(
        self,
        client: Any,
        streams: Iterable[str],
        group: str,
        consumer: str,
        *,
        count: int = 1_000,
        claim_idle_ms: int = 60_000,
    ) -> None:
        self.client = client
        self.streams = list(streams)
        self.group = group
        self.consumer = consumer
        self.count = count
        self.claim_idle_ms = claim_idle_ms
        # redis-py drops XAUTOCLAIM's cursor when parsing a JUSTID reply: keep the raw reply.
        client.response_callbacks["XAUTOCLAIM"] = lambda response, **options: response

    def ensure_groups(self) -> None:
        """Create the group on every stream (and the stream itself), from the first entry."""
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def claim_stale(self) -> int:
        """Take over entries pending for longer than `claim_idle_ms` (a consumer that died);
        they are then read as this consumer's own pending entries. Returns how many."""
        claimed = 0
        for stream in self.streams:
            cursor = "0-0"
            while True:
                reply = self._retrying(
                    lambda s=stream, c=cursor: self.client.execute_command(
                        "XAUTOCLAIM",
                        s,
                        self.group,
                        self.consumer,
                        self.claim_idle_ms,
                        c,
                        "COUNT",
                        self.count,
                        "JUSTID",
                    )
                )
                claimed += len(reply[1])
                cursor = _text(reply[0])
                if cursor == "0-0":
                    break
        return claimed

    def read(self, *, new: bool, block_ms: int | None = None) -> dict[str, list[Entry]]:
        """This consumer's pending entries (`new=False`) or entries never delivered (`new=True`,
        waiting up to `block_ms` when given), by stream."""
        ids = {stream: ">" if new else "0" for stream in self.streams}
        reply = self._retrying(
            lambda: self.client.xreadgroup(
                self.group,
                self.consumer,
                ids,
                count=self.count,
                block=block_ms if new else None,
            )
        )
        out: dict[str, list[Entry]] = {}
        for stream, entries in reply or []:
            if entries:
                out[_text(stream)] = [(_text(i), text_fields(f or {})) for i, f in entries]
        return out

    def ack(self, ids: dict[str, list[str]]) -> None:
        """Acknowledge entries by stream, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for stream, entry_ids in ids.items():
            if entry_ids:
                pipe.xack(stream, self.group, *entry_ids)
        pipe.execute()

    def _retrying(self, call: Any) -> Any:
        """Run `call`; if a stream or the group vanished (deleted, flushed), recreate, retry."""
        try:
            return call()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        self.ensure_groups()
        return call()
