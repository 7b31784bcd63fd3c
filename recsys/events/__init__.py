"""Events in: posted shares, purchases, returns and clicks, and served exposures, from Redis
Streams to date-partitioned Parquet in the data contract's layout (docs/events.md).

- `kinds`: what each event kind holds, its table and its Parquet schema;
- `check`: per-event validation with the contract's own coercion rules;
- `stream`: how events and exposures are laid out as stream entries;
- `consumer`: the consumer-group reader (own pending, stale claims, new entries, acks);
- `parts`: atomic part files and the per-partition index of written event ids;
- `layout`: the data directory the sink writes into;
- `sink`: the loop that drains both streams into Parquet, at least once, idempotently;
- `lag`: how far the sink is behind; `metrics`: the sink's Prometheus metrics.
"""
