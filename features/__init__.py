"""Features: what every recommender learns from (docs/features.md).

`features.dataset.build_dataset` is the entry point; `weights` (interaction weights),
`interactions` (matrices and events), `item_features` / `user_features` (side features),
`fingerprint` (a stable hash of the input tables), `logs` (the log as known at a cutoff) and
`encoding` (shared encoders) are its parts. Nothing is imported here, so `import features` is cheap.
"""
