"""A/B evaluation: per-agent outcomes, effects with intervals, SRM, reports (issue 6).

`data` reads an experiment's logs, `outcomes` turns them into one row per agent, `stats` compares
variants (tea-tasting: delta method, CUPED, power), `report` assembles the numbers, `html` renders
them; `simulate` makes experiments with known true effects for the proofs in `replicates`.
"""
