"""Lower confidence bounds of a rate (fault returns over units bought), vectorised over SKUs.

Two choices for the circuit breaker: the Wilson score bound (Wilson 1927), which needs nothing but
the counts, and the quantile of a Beta posterior whose prior is centred on the category's rate
(a SKU with few units is pulled towards its category, so a handful of returns cannot trip it).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaincinv, ndtri


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence!r}")


def _counts(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both counts as float64 arrays, checked: 0 <= successes <= trials."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if np.any(k < 0) or np.any(n < 0):
        raise ValueError("successes and trials must be >= 0")
    if np.any(k > n):
        raise ValueError("successes must be <= trials (a SKU cannot return more units than sold)")
    return k, n


def wilson_lower(
    successes: np.ndarray | float, trials: np.ndarray | float, confidence: float = 0.99
) -> np.ndarray:
    """One-sided Wilson score lower bound of the rate successes / trials (0 where trials = 0).

    Raises
    ------
    ValueError
        If `confidence` is outside [0.5, 1) or the counts are negative or inconsistent.
    """
    _check_confidence(confidence)
    k, n = _counts(np.atleast_1d(successes), np.atleast_1d(trials))
    z = float(ndtri(confidence))
    safe_n = np.where(n > 0, n, 1.0)
    p = k / safe_n
    centre = p + z * z / (2 * safe_n)
    spread = z * np.sqrt(p * (1 - p) / safe_n + z * z / (4 * safe_n * safe_n))
    lower = (centre - spread) / (1 + z * z / safe_n)
    return np.where(n > 0, np.clip(lower, 0.0, 1.0), 0.0)


def beta_lower(
    successes: np.ndarray | float,
    trials: np.ndarray | float,
    prior_rate: np.ndarray | float,
    prior_strength: float = 20.0,
    confidence: float = 0.99,
) -> np.ndarray:
    """The (1 − confidence) quantile of the Beta posterior of the rate.

    The prior is Beta(prior_rate · s, (1 − prior_rate) · s) with s = `prior_strength` (in units):
    the category's rate, worth s units of evidence.

    Raises
    ------
    ValueError
        If `confidence` is outside [0.5, 1), `prior_strength` is not positive, a prior rate is
        outside (0, 1), or the counts are negative or inconsistent.
    """
    _check_confidence(confidence)
    if not prior_strength > 0:
        raise ValueError(f"prior_strength must be > 0, got {prior_strength!r}")
    k, n = _counts(np.atleast_1d(successes), np.atleast_1d(trials))
    rate = np.broadcast_to(np.asarray(prior_rate, dtype=np.float64), k.shape)
    if np.any(rate <= 0) or np.any(rate >= 1):
        raise ValueError("prior_rate must lie strictly between 0 and 1")
    a = rate * prior_strength + k
    b = (1 - rate) * prior_strength + (n - k)
    return np.asarray(betaincinv(a, b, 1.0 - confidence), dtype=np.float64)
