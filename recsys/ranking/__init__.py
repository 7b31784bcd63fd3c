"""Sell-with-confidence ranking (issue 5): candidates, audience signal, return risk, a learned
ranker, business rules and reasons, behind `recsys.models.ranked.RankedRecommender`.

`state` (what the logs say at a cutoff: sub-models, profiles, popularity), `audience`,
`candidates`, `features` (one row per agent × candidate SKU), `return_risk`, `ranker`, `rules` and
`reasons`. See docs/sell-with-confidence.md. Nothing is imported here.
"""
