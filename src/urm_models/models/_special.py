"""Gauss's hypergeometric function with a fallback where scipy's fails.

scipy's ``hyp2f1`` returns inf or nan for some arguments our models meet when ``c - a - b`` is
large and ``z`` close to 1, e.g. ``2F1(1, 2; 101; 0.95) = inf`` and
``2F1(1 - 4e-16, 1.718; 130.7; 0.92) = nan`` (a first parameter a rounding error away from 1).
There the power series converges and is summed directly.
"""

from __future__ import annotations

import numpy as np
from scipy.special import hyp2f1 as _scipy_hyp2f1


def hyp2f1_series(a, b, c, z, max_terms: int = 1_000_000) -> np.ndarray:
    """sum_k (a)_k (b)_k / ((c)_k k!) z^k for 0 <= z < 1, summed until the terms vanish."""
    a, b, c, z = (np.asarray(v, float) for v in np.broadcast_arrays(a, b, c, z))
    term = np.ones(z.shape)
    total = np.ones(z.shape)
    active = np.ones(z.shape, bool)
    k = 0
    while active.any() and k < max_terms:
        term = np.where(active, term * (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z, 0.0)
        total += term
        active &= np.abs(term) > 1e-17 * np.abs(total)
        k += 1
    return total


def hyp2f1(a, b, c, z) -> np.ndarray:
    """scipy's 2F1, with the entries it cannot evaluate (inf or nan) summed as a series."""
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, float) for v in (a, b, c, z)))
    out = np.array(_scipy_hyp2f1(a, b, c, z), dtype=float, ndmin=1).reshape(a.shape)
    bad = ~np.isfinite(out) & (z >= 0) & (z < 1)
    if bad.any():
        out[bad] = hyp2f1_series(a[bad], b[bad], c[bad], z[bad])
    return out
