"""Sell-with-confidence recommendations for social e-commerce agents and their customers."""

__version__ = "0.1.0"
