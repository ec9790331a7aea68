"""Intervals for the difference of two arms' outcomes (the choices and their coverage:
:mod:`urm_models.experiments.analysis`)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def _wilson(x: float, n: float, z: float) -> tuple[float, float]:
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def difference_of_proportions(x1, n1, x0, n0, z):
    """``x1`` of ``n1`` against ``x0`` of ``n0``, intervals at normal quantile ``z``: ``(p1 - p0,
    lower, upper, (p1/p0 - 1, lower, upper), p-value)``: Newcombe's hybrid score interval of the
    difference, the log risk-ratio interval of the ratio, the pooled two-proportion z-test."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = _wilson(x1, n1, z)
    l0, u0 = _wilson(x0, n0, z)
    d = p1 - p0
    lo = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    if x1 > 0 and x0 > 0:
        se = np.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
        rr = p1 / p0
        rel = (rr - 1, rr * np.exp(-z * se) - 1, rr * np.exp(z * se) - 1)
    else:
        rel = (np.nan, np.nan, np.nan)
    pooled = (x1 + x0) / (n1 + n0)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p = 2 * stats.norm.sf(abs(d) / se0) if se0 > 0 else (1.0 if d == 0 else 0.0)
    return d, lo, hi, rel, p


def difference_of_means(y1: np.ndarray, y0: np.ndarray, z: float):
    """Two samples, intervals at normal quantile ``z``: ``(m1 - m0, lower, upper, (m1/m0 - 1,
    lower, upper), p-value)``: Welch's interval of the difference, the delta method on the log
    ratio of means, Welch's t-test."""
    n1, n0 = len(y1), len(y0)
    m1, m0 = y1.mean(), y0.mean()
    v1, v0 = y1.var(ddof=1) / n1, y0.var(ddof=1) / n0
    d, se = m1 - m0, np.sqrt(v1 + v0)
    if m1 > 0 and m0 > 0:
        se_log = np.sqrt(v1 / m1**2 + v0 / m0**2)
        rel = (m1 / m0 - 1, m1 / m0 * np.exp(-z * se_log) - 1, m1 / m0 * np.exp(z * se_log) - 1)
    else:
        rel = (np.nan, np.nan, np.nan)
    if se > 0:
        df = (v1 + v0) ** 2 / (v1**2 / max(n1 - 1, 1) + v0**2 / max(n0 - 1, 1))
        p = 2 * stats.t.sf(abs(d) / se, df)
    else:
        p = 1.0 if d == 0 else 0.0
    return d, d - z * se, d + z * se, rel, p
