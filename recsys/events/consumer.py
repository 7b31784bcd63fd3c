"""Reading several streams as one consumer of a consumer group, at least once.

An entry stays in the group's pending list until it is acknowledged, so a consumer that dies
between reading and acknowledging gets it again: its own pending entries on restart (read from
id `0`), or, under another consumer name, once they have been idle for `claim_idle_ms`
(XAUTOCLAIM moves them over). Entries trimmed from the stream while pending come back with no
fields; they are acknowledged and counted, as nothing of them is left to write.

Every command names one stream, except the read: one XREADGROUP over all streams where it may
(one server, or streams that share a Redis Cluster slot), else one per stream, since a cluster
refuses a command over keys of two slots. The group is created on each stream on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from redis.cluster import RedisCluster
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
        cluster = isinstance(client, RedisCluster)
        self.one_read = not cluster or len({client.keyslot(s) for s in self.streams}) == 1
        self._turn = 0  # which stream a per-stream read waits on first
        # Redis >= 7 drops pending entries trimmed from the stream at XAUTOCLAIM and returns
        # their ids apart; the sink counts them as trimmed, like the empty entries of Redis 6
        self.dropped_on_claim: Counter[str] = Counter()

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
                # Not JUSTID: redis-py drops the cursor of a JUSTID reply, and a cluster client
                # has no per-command parser to override; an entry trimmed away comes back empty.
                reply = self._retrying(
                    lambda s=stream, c=cursor: self.client.xautoclaim(
                        s, self.group, self.consumer, self.claim_idle_ms, c, count=self.count
                    )
                )
                claimed += len(reply[1])
                if len(reply) > 2 and reply[2]:
                    self.dropped_on_claim[stream] += len(reply[2])
                cursor = _text(reply[0])
                if cursor == "0-0":
                    break
        return claimed

    def read(self, *, new: bool, block_ms: int | None = None) -> dict[str, list[Entry]]:
        """This consumer's pending entries (`new=False`) or entries never delivered (`new=True`,
        waiting up to `block_ms` in all when given), by stream."""
        block = block_ms if new else None
        if self.one_read:
            return self._read(self.streams, new=new, block_ms=block)
        out: dict[str, list[Entry]] = {}
        for stream in self.streams:
            out.update(self._read([stream], new=new))
        if out or not block:
            return out
        # Nothing yet: wait on each stream in turn (block_ms split between them), starting
        # with a different one each time, and stop at the first that gets entries.
        n = len(self.streams)
        self._turn = (self._turn + 1) % n
        for k in range(n):
            stream = self.streams[(self._turn + k) % n]
            out = self._read([stream], new=True, block_ms=max(1, block // n))
            if out:
                break
        return out

    def _read(
        self, streams: list[str], *, new: bool, block_ms: int | None = None
    ) -> dict[str, list[Entry]]:
        """One XREADGROUP over `streams` (all in one slot on a cluster)."""
        ids = {stream: ">" if new else "0" for stream in streams}
        reply = self._retrying(
            lambda: self.client.xreadgroup(
                self.group, self.consumer, ids, count=self.count, block=block_ms
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
