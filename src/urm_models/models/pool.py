"""A linear pool of purchase models: each customer's forecast is a mixture of two fitted models'.

Where the shifted-window model and a BTYD model each see something the other does not (the
data's own recent past, the parametric decay), their combination often forecasts fresh data
better than either (Bates & Granger 1969; Stone 1961's "linear opinion pool"). The pool is the
mixture of the models' predictive distributions with fixed weights: its mean is the weighted mean
of theirs, its P(n purchases) the weighted P(n), so every score of the relationship table
(expected purchases, P(alive), P(no purchase), the remaining lifetime, CLV, the value at risk) is
the same weighted average of each model's. The weights are chosen on inner windows before the
cut-off (``evaluation.holdout.choose_on_inner_windows``), never on the holdout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["LinearPool"]


class LinearPool:
    """Fitted purchase models (``models``: ``{name: model}``) pooled with ``weights``
    (``{name: weight}``, the same names, non-negative, summing to 1). A fixed combination of
    fitted models, like :class:`~urm_models.models.CLVScorer`: nothing to fit."""

    def __init__(self, models: dict, weights: dict):
        if set(models) != set(weights) or not models:
            raise ValueError(f"models {sorted(models)} and weights {sorted(weights)} must name the same models")
        w = np.array([float(weights[n]) for n in models])
        if not np.isfinite(w).all() or (w < 0).any() or abs(w.sum() - 1.0) > 1e-9:
            raise ValueError(f"weights must be non-negative and sum to 1, got {dict(weights)}")
        self.models = dict(models)
        self.weights = {n: float(weights[n]) for n in models}

    def __repr__(self) -> str:
        return "LinearPool(" + ", ".join(f"{w:.3f} x {n}" for n, w in self.weights.items()) + ")"

    def combine(self, values: dict):
        """The weighted sum of the components' values (``{name: array or Series}``)."""
        return sum(self.weights[n] * values[n] for n in self.models)

    def median(self, cdf: dict, max_n: int = 500) -> np.ndarray:
        """The median of the pooled predictive distribution per customer, from each component's
        cumulative distribution (``{name: f(n) -> P(X <= n) per customer}``)."""
        first = next(iter(cdf.values()))(0)
        med = np.full(len(first), float(max_n))
        undecided = np.ones(len(first), bool)
        for n in range(max_n + 1):
            total = self.combine({k: np.asarray(f(n), float) for k, f in cdf.items()})
            hit = undecided & (total >= 0.5)
            med[hit] = n
            undecided &= ~hit
            if not undecided.any():
                break
        return med


def component_cdf(model, t: float, data, index: pd.Index) -> callable:
    """``n -> P(at most n purchases in the next t periods)`` per customer of ``index``, from
    ``data`` (an RFM table for a BTYD model, transactions for a model fitted on them)."""
    if hasattr(model, "activity_columns_"):  # fitted on transactions: every count in one pass of its features
        ns = np.arange(200)
        table = model.probability_of_n_purchases(data, t, ns).reindex(index).to_numpy(float).cumsum(axis=1)
        return lambda n: table[:, min(int(n), len(ns) - 1)]
    cache = {"n": -1, "cum": None}

    def cdf(n: int):
        while cache["n"] < n:
            k = cache["n"] + 1
            p = model.probability_of_n_purchases(t, k, data).reindex(index).to_numpy(float)
            cache["cum"] = p if cache["cum"] is None else cache["cum"] + p
            cache["n"] = k
        return cache["cum"]

    return cdf
