"""Honest offline evaluation: temporal splits, metrics@k and the paired bootstrap.

Modules are imported where used (`recsys.evaluation.metrics`, `recsys.evaluation.bootstrap`) so
importing the package stays cheap.
"""
