"""Customer lifetime value from a purchase model and a spend model, with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..simulate import UNIT_DAYS
from ._base import unique_rows
from .btyd import GammaGamma, validate_rfm

__all__ = ["customer_lifetime_value", "conditional_median_purchases"]


def _period_sums(model, x, tx, T, horizon: int, step: float, discount_rate: float) -> np.ndarray:
    """sum_k (E[X(k step)] - E[X((k-1) step)]) / (1 + d)^k over k = 1..horizon, per row."""
    total = np.zeros_like(x)
    prev = np.zeros_like(x)
    for k in range(1, horizon + 1):
        cur = model._conditional_expected(k * step, x, tx, T)
        total += (cur - prev) / (1.0 + discount_rate) ** k
        prev = cur
    return total


def customer_lifetime_value(purchase_model, spend_model: GammaGamma, rfm: pd.DataFrame,
                            horizon: int = 12, freq: str = "M", discount_rate: float = 0.01,
                            margin: float = 1.0, *, rfm_freq: str | None = None,
                            n_draws: int = 0, interval: float = 0.9, seed: int = 0) -> pd.DataFrame:
    """Discounted expected value of each user's purchases over the next ``horizon`` periods.

    ``CLV = margin * E[spend] * sum_k (E[X(t_k)] - E[X(t_{k-1})]) / (1 + discount_rate)^k``
    with periods of one ``freq`` (``"D"``, ``"W"``, ``"M"``) and the discount rate per period.

    Parameters
    ----------
    purchase_model : fitted BetaGeo / ModifiedBetaGeo (anything with ``_conditional_expected``)
    spend_model : fitted GammaGamma
    rfm : DataFrame from ``features.rfm_summary`` (``frequency, recency, T, monetary``)
    rfm_freq : time unit of ``rfm`` (default: ``rfm.attrs["freq"]``, set by ``rfm_summary``)
    n_draws : int
        With ``n_draws > 0``, parameter draws of both models (``sample_params``) give a
        ``interval`` (default 90%) interval per user: ``clv_lower``, ``clv_upper``.

    Returns
    -------
    DataFrame indexed like ``rfm``: ``expected_purchases`` (undiscounted, over the horizon),
    ``expected_spend``, ``clv`` and, with draws, ``clv_lower``, ``clv_upper``.
    """
    validate_rfm(rfm, columns=("frequency", "recency", "T", "monetary"))
    unit = rfm_freq or rfm.attrs.get("freq") or getattr(purchase_model, "freq_", None)
    if unit not in UNIT_DAYS:
        raise ValueError("the time unit of rfm is unknown: pass rfm_freq='D'|'W'|'M' (rfm_summary "
                         "records it in rfm.attrs['freq'])")
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
    if horizon < 1 or int(horizon) != horizon:
        raise ValueError(f"horizon must be a positive whole number of periods, got {horizon}")
    if discount_rate < 0:
        raise ValueError("discount_rate must be >= 0")
    step = UNIT_DAYS[freq] / UNIT_DAYS[unit]
    (x, tx, T), _, codes = unique_rows(rfm["frequency"].to_numpy(float),
                                       rfm["recency"].to_numpy(float), rfm["T"].to_numpy(float))
    disc = _period_sums(purchase_model, x, tx, T, int(horizon), step, discount_rate)[codes]
    purchases = purchase_model._conditional_expected(horizon * step, x, tx, T)[codes]
    spend = spend_model.conditional_expected_spend(rfm).to_numpy()
    out = pd.DataFrame({"expected_purchases": purchases, "expected_spend": spend,
                        "clv": margin * spend * disc}, index=rfm.index)
    if n_draws:
        lo_q, hi_q = (1 - interval) / 2, 1 - (1 - interval) / 2
        pdraws = purchase_model.sample_params(n_draws, seed=seed)
        sdraws = spend_model.sample_params(n_draws, seed=seed + 1)
        sims = np.empty((n_draws, len(rfm)))
        for i in range(n_draws):
            pm = purchase_model._with_params(pdraws.iloc[i])
            sm = spend_model._with_params(sdraws.iloc[i])
            d_i = _period_sums(pm, x, tx, T, int(horizon), step, discount_rate)[codes]
            sims[i] = margin * sm.conditional_expected_spend(rfm).to_numpy() * d_i
        out["clv_lower"] = np.quantile(sims, lo_q, axis=0)
        out["clv_upper"] = np.quantile(sims, hi_q, axis=0)
    return out


def conditional_median_purchases(model, t, rfm: pd.DataFrame, max_n: int = 500) -> pd.Series:
    """Median of each user's predictive distribution of purchases in the next ``t`` periods.

    The median, not the mean, minimises expected absolute error: use it when the per-user MAE
    is the score (the mean stays the right input for totals and CLV).
    """
    validate_rfm(rfm)
    (x, tx, T), _, codes = unique_rows(rfm["frequency"].to_numpy(float),
                                       rfm["recency"].to_numpy(float), rfm["T"].to_numpy(float))
    t = float(t)
    cum = np.zeros_like(x)
    med = np.full(x.shape, float(max_n))
    undecided = np.ones(x.shape, bool)
    for n in range(max_n + 1):
        cum = cum + model._prob_n(n, np.full_like(x, t), x, tx, T)
        hit = undecided & (cum >= 0.5)
        med[hit] = n
        undecided &= ~hit
        if not undecided.any():
            break
    return pd.Series(med[codes], index=rfm.index, name="median_purchases")
