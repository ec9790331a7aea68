"""Customer lifetime value from a purchase model and a spend model, with intervals."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..core.units import REPORT_FREQ, UNIT_DAYS
from .btyd import GammaGamma, validate_rfm
from .candidates import fit_candidates
from .dynamic import TimeVaryingParetoNBD
from .pool import LinearPool
from .shifted import ShiftedWindowPurchases

__all__ = ["customer_lifetime_value", "conditional_median_purchases", "ConstantSpend", "spend_model_for"]


class ConstantSpend:
    """A spend model of one value per purchase: for activity without money (``value=None``: every
    spend, so every CLV, is left empty, NaN) or with a value per event (``value_per_event``), and
    where Gamma-Gamma cannot be fitted (``value`` = the mean spend per purchase day). The interface
    :func:`customer_lifetime_value` and :class:`CLVScorer` use (``conditional_expected_spend``,
    ``sample_params``: no parameter uncertainty)."""

    def __init__(self, value: float | None = None, reason: str = ""):
        if value is not None and not (np.isfinite(value) and value >= 0):
            raise ValueError(f"value must be a finite amount >= 0 or None, not {value!r}")
        self.value = None if value is None else float(value)
        self.reason = reason
        self.params_ = {} if value is None else {"value": self.value}
        self.penalizer = 0.0

    def conditional_expected_spend(self, rfm: pd.DataFrame) -> pd.Series:
        v = np.nan if self.value is None else self.value
        return pd.Series(v, index=rfm.index, name="expected_spend", dtype=float)

    def sample_params(self, n: int, seed: int | None = 0) -> pd.DataFrame:
        return pd.DataFrame(index=range(int(n)))

    def _with_params(self, params) -> ConstantSpend:
        return self

    def __repr__(self) -> str:
        return f"ConstantSpend({self.value!r})"


def _period_weights(horizon: int, step: float, discount_rate: float):
    """Times ``k step`` (k = 1..horizon) and the weights of E[X(t)] at them in two sums: the
    discounted value ``sum_k (E[X(k step)] - E[X((k-1) step)]) / (1 + d)^k``, which is
    ``sum_k E[X(k step)] (d_k - d_(k+1))`` with ``d_(horizon+1) = 0``, and E[X(horizon step)]."""
    k = np.arange(1, horizon + 1)
    d = (1.0 + discount_rate) ** -k.astype(float)
    W = np.zeros((2, horizon))
    W[0] = d - np.append(d[1:], 0.0)
    W[1, -1] = 1.0
    return k * step, W


def _period_sums(model, x, tx, T, P, horizon: int, step: float, discount_rate: float, alive=None) -> np.ndarray:
    """(discounted expected purchases over the horizon, expected purchases at its end), per row."""
    ts, W = _period_weights(horizon, step, discount_rate)
    weighted = getattr(model, "_weighted_sums", None)  # continuous time: once per distinct (x, T)
    if weighted is not None:
        return weighted("expected", ts, W, x, tx, T, P, alive)
    return W @ np.vstack([model._conditional_expected(t, x, tx, T, P) for t in ts])


def _retained_sum(model, x, T, P, horizon: int, step: float, discount_rate: float) -> np.ndarray:
    """Discounted expected purchases over the horizon of a customer alive now who stays alive
    throughout, per distinct history: the purchase rate given alive at T, ``E[lambda | alive,
    history] = (r + x) / (alpha + T)`` (every continuous-time model here buys at a gamma-distributed
    rate while alive), times each period's length, discounted as :func:`customer_lifetime_value`
    discounts."""
    r, alpha = model._p(P)[:2]
    k = np.arange(1, int(horizon) + 1, dtype=float)
    return (r + x) / (alpha + T) * step * float(np.sum((1.0 + discount_rate) ** -k))


def customer_lifetime_value(
    purchase_model,
    spend_model: GammaGamma,
    rfm: pd.DataFrame,
    horizon: int = 12,
    freq: str | None = None,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    *,
    rfm_freq: str | None = None,
    n_draws: int = 0,
    interval: float = 0.9,
    seed: int = 0,
) -> pd.DataFrame:
    """Discounted expected value of each user's purchases over the next ``horizon`` periods.

    ``CLV = margin * E[spend] * sum_k (E[X(t_k)] - E[X(t_{k-1})]) / (1 + discount_rate)^k``
    with periods of one ``freq`` (``"D"``, ``"W"``, ``"M"``; default ``"M"``) and the discount
    rate per period. With a discrete-time purchase model (BG/BB) the periods are its
    opportunities (the periods of its data: ``horizon=5`` on yearly data is five years) and
    ``freq``, ``rfm_freq`` must be left out.

    Parameters
    ----------
    purchase_model : fitted BetaGeo, ModifiedBetaGeo, ParetoNBD or BetaGeoBetaBinom
    spend_model : fitted GammaGamma
    rfm : DataFrame from ``features.rfm_summary`` (``frequency, recency, T, monetary``); for
        BG/BB ``frequency, recency, n_periods, monetary`` (``features.period_summary`` plus the
        mean repeat spend)
    rfm_freq : time unit of ``rfm`` (default: ``rfm.attrs["freq"]``, set by ``rfm_summary``)
    n_draws : int
        With ``n_draws > 0``, parameter draws of both models (``sample_params``) give a
        ``interval`` (default 90%) interval per user of the expected value: ``clv_lower``,
        ``clv_upper``; and, for the models with a count distribution, an interval of the value
        the customer will actually bring, which adds the purchase process's own randomness (each
        draw's expected value per purchase times a count drawn from the customer's predictive
        distribution over the horizon): ``value_lower``, ``value_upper``. The spend of each
        purchase around its expectation is not drawn.

    Returns
    -------
    DataFrame indexed like ``rfm``: ``expected_purchases`` (undiscounted, over the horizon),
    ``expected_spend``, ``clv`` and, with draws, ``clv_lower``, ``clv_upper``, ``value_lower``,
    ``value_upper``.
    """
    if getattr(purchase_model, "discrete", False):
        if freq is not None or rfm_freq is not None:
            raise ValueError(
                f"{type(purchase_model).__name__} counts time in its opportunities (the periods "
                f"of its data): give the horizon in them and leave freq and rfm_freq out"
            )
        validate_rfm(rfm, columns=("frequency", "monetary"))
        step = 1.0
    else:
        validate_rfm(rfm, columns=("frequency", "recency", "T", "monetary"))
        freq = "M" if freq is None else freq
        unit = rfm_freq or rfm.attrs.get("freq") or getattr(purchase_model, "freq_", None)
        if unit not in UNIT_DAYS:
            raise ValueError(
                "the time unit of rfm is unknown: pass rfm_freq='D'|'W'|'M' (rfm_summary "
                "records it in rfm.attrs['freq'])"
            )
        if freq not in UNIT_DAYS:
            raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {freq!r}")
        step = UNIT_DAYS[freq] / UNIT_DAYS[unit]
    if horizon < 1 or int(horizon) != horizon:
        raise ValueError(f"horizon must be a positive whole number of periods, got {horizon}")
    if discount_rate < 0:
        raise ValueError("discount_rate must be >= 0")
    x, tx, T, P, codes = purchase_model._histories(rfm)
    disc, purchases = _period_sums(purchase_model, x, tx, T, P, int(horizon), step, discount_rate)[:, codes]
    spend = spend_model.conditional_expected_spend(rfm).to_numpy()
    out = pd.DataFrame(
        {"expected_purchases": purchases, "expected_spend": spend, "clv": margin * spend * disc}, index=rfm.index
    )
    if n_draws:
        lo_q, hi_q = (1 - interval) / 2, 1 - (1 - interval) / 2
        pdraws = _draws(purchase_model, n_draws, seed)
        sdraws = _draws(spend_model, n_draws, seed + 1)
        sims = np.empty((n_draws, len(rfm)))
        for i in range(n_draws):
            pm = purchase_model._with_params(pdraws.iloc[i])
            sm = spend_model._with_params(sdraws.iloc[i])
            P_i = pm._histories(rfm)[3]  # each customer's parameters under this draw
            d_i = _period_sums(pm, x, tx, T, P_i, int(horizon), step, discount_rate)[0, codes]
            sims[i] = margin * sm.conditional_expected_spend(rfm).to_numpy() * d_i
        out["clv_lower"] = np.quantile(sims, lo_q, axis=0)
        out["clv_upper"] = np.quantile(sims, hi_q, axis=0)
        if hasattr(purchase_model, "_prob_n"):
            # the value the customer will bring, not only its expectation: each draw's expected value
            # rescaled by a count drawn from the customer's predictive distribution over the horizon
            counts = _count_draws(purchase_model, x, tx, T, P, float(horizon) * step, n_draws, seed + 2)[:, codes]
            with np.errstate(invalid="ignore", divide="ignore"):
                per_purchase = np.where(purchases > 0, sims / purchases, 0.0)
            realised = per_purchase * counts
            out["value_lower"] = np.quantile(realised, lo_q, axis=0)
            out["value_upper"] = np.quantile(realised, hi_q, axis=0)
    return out


def _count_probabilities(model, t, x, tx, T, P):
    """P(0 purchases), P(1), ... in the next ``t`` periods per history, in turn: the model's
    ``_prob_n_sequence`` where it has one (each term from the last), else ``_prob_n`` per count."""
    sequence = getattr(model, "_prob_n_sequence", None)
    if sequence is not None:
        return sequence(t, x, tx, T, P)
    return (model._prob_n(k, t, x, tx, T, P) for k in itertools.count())


def _count_draws(model, x, tx, T, P, t: float, n: int, seed: int, max_n: int = 1000) -> np.ndarray:
    """``n`` draws per history of the number of purchases in the next ``t`` periods from the
    model's own count distribution (``_prob_n``; inverse transform of uniforms, the tail beyond
    the last count computed put on it)."""
    u = np.random.default_rng(seed).random((n, len(x)))
    cum = np.zeros(len(x))
    draws = np.full((n, len(x)), -1.0)
    tt = np.full_like(x, t)
    for k, p_k in zip(range(max_n + 1), _count_probabilities(model, tt, x, tx, T, P), strict=False):
        cum = cum + p_k
        hit = (draws < 0) & (u <= cum[None, :])
        draws[hit] = k
        if not (draws < 0).any() or (1.0 - cum).max() < 1e-6:
            break
    draws[draws < 0] = k
    return draws


def spend_model_for(rfm: pd.DataFrame, amounts: str = "file"):
    """The spend model of a CLV: Gamma-Gamma where the amounts allow it, else a
    :class:`ConstantSpend` that says why. ``amounts`` is the loader's ``attrs["amounts"]``:
    ``"none"`` (an activity log: no money, CLVs left empty), ``"value_per_event"`` (each purchase
    day worth the mean of its events' values), ``"file"`` (Gamma-Gamma; if it cannot be fitted,
    even with the penalizer its error names, the mean spend of the repeat purchase days)."""
    if amounts == "none":
        return ConstantSpend(None, "the transactions have no amounts: money columns are left empty")
    repeat = rfm["frequency"].to_numpy(float)
    mean_day = float(np.average(rfm["monetary"], weights=repeat)) if repeat.sum() > 0 else 0.0
    if amounts == "value_per_event":
        return ConstantSpend(mean_day, "a value per event: the mean value of a repeat purchase day")
    fits = fit_candidates({"GammaGamma": GammaGamma()}, rfm)
    if "GammaGamma" in fits.models and fits.models["GammaGamma"].params_["q"] > 1:
        return fits.models["GammaGamma"]
    why = fits.notes.loc["GammaGamma", "reason"] or "q <= 1: its expected spend is infinite"
    return ConstantSpend(mean_day, f"Gamma-Gamma could not be used ({why}): the mean spend of a repeat purchase day")


def _draws(model, n: int, seed: int) -> pd.DataFrame:
    """Parameter draws of ``model``; a fit without standard errors (a singular Hessian) has no
    parameter uncertainty to draw: its estimates, ``n`` times (the interval then shows the other
    model's uncertainty only; ``fit_candidates`` notes such fits when they are made)."""
    cov = getattr(model, "covariance_", None)
    if cov is not None and not np.isfinite(np.asarray(cov, float)).all():
        return pd.DataFrame([model.params_] * int(n))
    return model.sample_params(n, seed=seed)


def conditional_median_purchases(model, t, rfm: pd.DataFrame, max_n: int = 500) -> pd.Series:
    """Median of each user's predictive distribution of purchases in the next ``t`` periods.

    The median, not the mean, minimises expected absolute error: use it when the per-user MAE
    is the score (the mean stays the right input for totals and CLV).
    """
    x, tx, T, P, codes = model._histories(rfm)
    t = float(t)
    cum = np.zeros_like(x)
    med = np.full(x.shape, float(max_n))
    undecided = np.ones(x.shape, bool)
    counts = _count_probabilities(model, np.full_like(x, t), x, tx, T, P)  # without end: zip stops at max_n
    for n, p_n in zip(range(max_n + 1), counts, strict=False):
        cum = cum + p_n
        hit = undecided & (cum >= 0.5)
        med[hit] = n
        undecided &= ~hit
        if not undecided.any():
            break
    return pd.Series(med[codes], index=rfm.index, name="median_purchases")


class CLVScorer:
    """Per-user purchase, retention and value scores from a fitted purchase model and spend model.

    The object logged to the registry as ``urm-clv``: ``predict(rfm)`` takes an RFM table
    (``frequency, recency, T, monetary`` in ``rfm_freq`` units, as ``features.rfm_summary``
    returns it) and returns, over the next ``horizon`` periods of ``freq``:
    ``expected_purchases``, ``p_alive`` (now), ``p_churn`` (= P(no purchase in the next
    ``churn_window`` periods of ``rfm_freq``, or in the horizon when it is None),
    ``expected_remaining_lifetime`` (restricted to the horizon, in ``freq`` units), ``clv`` and
    ``value_at_risk``: the expected value lost to dropout over the same horizon, discounted as
    ``clv`` is, from the same model (the value the customer would bring if alive now and staying
    alive throughout, less ``clv``; what a contact that kept the customer would at most save).
    ``clv + value_at_risk`` is the value of the customer retained; a customer surely gone has
    ``clv`` 0 and the whole retained value at risk, one surely staying none.

    Parameters
    ----------
    purchase_model : fitted BetaGeo / ModifiedBetaGeo / ParetoNBD, a ``LinearPool`` of fitted
        models (every score the pool's weighted average of each model's: the scores of the
        mixture of their predictive distributions), a fitted TimeVaryingParetoNBD
        with a ``season`` calendar (then ``predict`` also reads ``as_of``, the scoring date, and
        every score follows the calendar after it), or a fitted ShiftedWindowPurchases: then
        ``predict`` takes activity features (``features.activity_features`` at the date scored:
        :attr:`inputs` names the columns),
        ``expected_purchases``, ``p_churn`` (its negative binomial's P(0), at least 1 - p_alive)
        and ``clv`` come from it; a boosted mean has no dropout process of its own, so ``p_alive``
        is reconciled with it: the share of its base BTYD model's expectation given alive that the
        booster predicts (at most 1), and ``expected_remaining_lifetime`` is the base model's
        given alive times that ``p_alive`` (a customer called gone gets no purchases, one expected
        to buy is not called gone)
    spend_model : fitted GammaGamma, or a ConstantSpend (no amounts, or Gamma-Gamma unusable)
    rfm_freq : time unit of the RFM tables it will score (``"D"``, ``"W"``, ``"M"``)
    horizon, freq, discount_rate, margin : as in :func:`customer_lifetime_value`
    churn_window : the window of ``p_churn`` in ``rfm_freq`` periods (the churn label of 03:
        ``features.churn_window``); None: the horizon
    """

    columns = ["expected_purchases", "p_alive", "p_churn", "expected_remaining_lifetime", "clv", "value_at_risk"]
    rfm_columns = ["frequency", "recency", "T", "monetary"]

    @property
    def inputs(self) -> list[str]:
        """The columns :meth:`predict` reads: the RFM table's, and for a shifted-window purchase
        model the activity features it learned from; ``as_of`` for a model with a season calendar
        (for a pool, every component's)."""
        if self._pooled:
            cols = [c for part in self._parts() for c in part.inputs]
            return list(dict.fromkeys(cols))
        if self._dynamic:  # the scoring date places each customer on the season calendar
            return [*self.rfm_columns, "as_of"]
        extra = list(getattr(self.purchase_model, "activity_columns_", None) or []) if self._shifted else []
        if self._shifted and self.purchase_model._season() is not None:
            extra.append("as_of")  # its windows follow the season calendar from the scoring date
        return self.rfm_columns + [c for c in extra if c not in self.rfm_columns]

    @property
    def _dynamic(self) -> bool:
        return isinstance(self.purchase_model, TimeVaryingParetoNBD)

    @property
    def _pooled(self) -> bool:
        return isinstance(self.purchase_model, LinearPool)

    def _parts(self) -> list:
        """For a pooled purchase model: one scorer per component, with this scorer's settings."""
        pool = self.purchase_model
        return [
            CLVScorer(
                m,
                self.spend_model,
                self.rfm_freq,
                self.horizon,
                self.freq,
                self.discount_rate,
                self.margin,
                getattr(self, "churn_window", None),
            )
            for m in pool.models.values()
        ]

    @property
    def _shifted(self) -> bool:
        return isinstance(self.purchase_model, ShiftedWindowPurchases)

    def __init__(
        self,
        purchase_model,
        spend_model: GammaGamma,
        rfm_freq: str,
        horizon: int = 12,
        freq: str = REPORT_FREQ,
        discount_rate: float = 0.01,
        margin: float = 1.0,
        churn_window: float | None = None,
    ):
        if rfm_freq not in UNIT_DAYS or freq not in UNIT_DAYS:
            raise ValueError(f"rfm_freq and freq must be among {sorted(UNIT_DAYS)}")
        self.purchase_model = purchase_model
        self.spend_model = spend_model
        self.rfm_freq = rfm_freq
        self.horizon = int(horizon)
        self.freq = freq
        self.discount_rate = float(discount_rate)
        self.margin = float(margin)
        self.churn_window = None if churn_window is None else float(churn_window)

    def predict(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """The scores of each row of ``rfm``: every one computed on the distinct histories
        (x, t_x, T) once, as :func:`customer_lifetime_value`, ``p_alive``,
        ``probability_no_purchase`` and ``expected_remaining_lifetime`` compute them."""
        validate_rfm(rfm, columns=("frequency", "recency", "T", "monetary"))
        if self._pooled:  # the mixture: every score the weighted average of the components'
            pool = self.purchase_model
            outs = {n: part.predict(rfm[part.inputs]) for n, part in zip(pool.models, self._parts(), strict=True)}
            return pool.combine(outs)[self.columns]
        pm = self.purchase_model
        step = UNIT_DAYS[self.freq] / UNIT_DAYS[self.rfm_freq]
        h = self.horizon * step  # in rfm units
        window = getattr(self, "churn_window", None)  # scorers logged before 2026-12 lack it
        spend = self.spend_model.conditional_expected_spend(rfm).to_numpy()
        if self._shifted:
            return self._predict_shifted(rfm, step, h if window is None else window, spend)
        if self._dynamic:
            return self._predict_dynamic(rfm, step, h if window is None else window, spend)
        x, tx, T, P, codes = pm._histories(rfm)
        alive = pm._p_alive(x, tx, T, P)
        disc, purchases = _period_sums(pm, x, tx, T, P, self.horizon, step, self.discount_rate, alive)
        t_churn = np.full_like(x, h if window is None else window)
        clv = self.margin * spend * disc[codes]
        retained = self.margin * spend * _retained_sum(pm, x, T, P, self.horizon, step, self.discount_rate)[codes]
        return pd.DataFrame(
            {
                "expected_purchases": purchases[codes],
                "p_alive": alive[codes],
                "p_churn": pm._prob_n(0, t_churn, x, tx, T, P)[codes],
                "expected_remaining_lifetime": pm._remaining_lifetime(h, x, tx, T, P, alive)[codes] / step,
                "clv": clv,
                "value_at_risk": np.maximum(retained - clv, 0.0),
            },
            index=rfm.index,
            copy=False,
        )

    def _predict_dynamic(self, act: pd.DataFrame, step: float, t_churn: float, spend: np.ndarray) -> pd.DataFrame:
        """:meth:`predict` with a TimeVaryingParetoNBD and its season calendar: every score over the
        calendar after the scoring date (the ``as_of`` column), the CLV the discounted sum of each
        month's expected purchases as for the other models."""
        if "as_of" not in act.columns:
            raise ValueError(
                "a purchase model with a season calendar scores at a date: the input needs an as_of "
                "column (the scoring date) beside frequency, recency, T and monetary"
            )
        days = pd.to_datetime(act["as_of"]).dt.normalize().unique()
        if len(days) != 1:
            raise ValueError(f"score one as_of date at a time; the input holds {len(days)}")
        ts, W = _period_weights(self.horizon, step, self.discount_rate)
        sc = self.purchase_model.scores(act, days[0], ts, t_churn)
        disc, purchases = W @ sc["expected"].T
        retained = W[0] @ sc["retained"].T
        clv = self.margin * spend * disc
        return pd.DataFrame(
            {
                "expected_purchases": purchases,
                "p_alive": sc["alive"],
                "p_churn": sc["p0"],
                "expected_remaining_lifetime": sc["lifetime"] / step,
                "clv": clv,
                "value_at_risk": np.maximum(self.margin * spend * retained - clv, 0.0),
            },
            index=act.index,
            copy=False,
        )

    def _predict_shifted(self, act: pd.DataFrame, step: float, t_churn: float, spend: np.ndarray) -> pd.DataFrame:
        """:meth:`predict` with a ShiftedWindowPurchases: its means at every period's end (the
        discounted sum as for the BTYD models) and at the churn window, in one pass."""
        pm = self.purchase_model
        ts, W = _period_weights(self.horizon, step, self.discount_rate)
        as_of = pd.to_datetime(act["as_of"]).iloc[0] if "as_of" in act.columns and len(act) else None
        means, shape = pm._means_of(act, np.append(ts, t_churn), as_of=as_of)
        m = means.to_numpy()
        disc, purchases = W @ m[:, : len(ts)].T
        k = shape[:, 0]
        base = pm.base_model_
        x, tx, T, P, codes = base._histories(act[["frequency", "recency", "T"]])
        # one coherent story: the booster's mean is P(alive) x the base model's expectation given alive,
        # so P(alive) is the share of that expectation the booster predicts (at most 1); a customer the
        # booster expects to buy is not called gone, and one called gone gets no purchases
        given_alive = _period_sums(base, x, tx, T, P, self.horizon, step, self.discount_rate, np.ones_like(x))[1][codes]
        alive = np.clip(purchases / np.maximum(given_alive, 1e-12), 0.0, 1.0)
        alive = np.where(given_alive > 0, alive, base._p_alive(x, tx, T, P)[codes])
        remaining = base._remaining_lifetime(step * self.horizon, x, tx, T, P, np.ones_like(x))[codes] * alive
        # the value retained: the base model's, at the booster's level given alive where the booster
        # expects more than the base model does given alive (p_alive clipped at 1 there)
        level = np.where(given_alive > 0, np.maximum(purchases / np.maximum(given_alive, 1e-12), 1.0), 1.0)
        retained = _retained_sum(base, x, T, P, self.horizon, step, self.discount_rate)[codes] * level
        clv = self.margin * spend * disc
        return pd.DataFrame(
            {
                "expected_purchases": purchases,
                "p_alive": alive,
                # the negative binomial's P(0), and never below P(gone): a customer gone buys nothing
                "p_churn": np.maximum((k / (k + m[:, -1])) ** k, 1.0 - alive),
                "expected_remaining_lifetime": remaining / step,
                "clv": clv,
                "value_at_risk": np.maximum(self.margin * spend * retained - clv, 0.0),
            },
            index=act.index,
            copy=False,
        )
