"""Quality circuit breaker: suspend SKUs whose fault returns rise above their category's level.

`recsys.quality.bounds` (confidence bounds of a rate), `recsys.quality.breaker` (the rule, on the
logs as known at a moment), `recsys.quality.store` (suspension records in Redis) and
`recsys.quality.replay` (detection delay and false suspensions on a replayed log). See
docs/sell-with-confidence.md. Nothing is imported here, so `import recsys.quality` is cheap.
"""
