"""BG/BB: the beta-geometric/beta-binomial model of discrete-time, non-contractual data.

Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time Noncontractual
Setting", Marketing Science 29(6). Transactions can happen only at discrete opportunities
(a yearly donation, an annual event). After the first transaction, at each of the next
opportunities a customer who is still alive transacts with probability ``p``; at the start of
each opportunity an alive customer dies with probability ``theta``; ``p ~ Beta(alpha, beta)``
and ``theta ~ Beta(gamma, delta)`` across customers.

A history is ``(frequency, recency, n_periods)``: ``x`` transactions in the ``n``
opportunities observed after the first one, the last at opportunity ``t_x`` (0 for none).
Everything conditional on a history uses one fact: given the history and alive after
opportunity ``n`` (probability ``A / L`` below), ``p ~ Beta(alpha + x, beta + n - x)`` and
``theta ~ Beta(gamma, delta + n)``, so the future is a new BG/BB customer with those parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, gammaln

from ._base import MLEModel, unique_rows
from ._special import hyp2f1

__all__ = ["BetaGeoBetaBinom"]

COLUMNS = ("frequency", "recency", "n_periods")


def _histories(data: pd.DataFrame, name: str = "data"):
    """``(x, t_x, n)`` as integer arrays, or a ValueError naming the column and the rows."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame with columns {list(COLUMNS)}, not {type(data).__name__}")
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {missing}; a BG/BB history is {list(COLUMNS)} "
            "(datasets.load_donations, or features.rfm_summary with a discrete freq)"
        )
    if len(data) == 0:
        raise ValueError(f"{name} has no rows")
    out = []
    for c in COLUMNS:
        v = pd.to_numeric(data[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | (v < 0) | (v != np.floor(v))
        if bad.any():
            raise ValueError(f"{name}: column {c!r} has {int(bad.sum())} rows that are not whole numbers >= 0")
        out.append(v)
    x, tx, n = out
    for mask, what in (
        ((x > tx), "frequency > recency"),
        ((tx > n), "recency > n_periods"),
        (((x == 0) & (tx > 0)), "frequency 0 but recency > 0"),
        (((x > 0) & (tx == 0)), "frequency > 0 but recency 0"),
    ):
        if mask.any():
            raise ValueError(f"{name}: {int(mask.sum())} rows have {what}")
    return x, tx, n


class BetaGeoBetaBinom(MLEModel):
    #: transactions happen at discrete opportunities: horizons count opportunities
    discrete = True

    """BG/BB by maximum likelihood (analytic gradient), on histories aggregated with weights.

    ``fit(data, weights=None)``: ``data`` has ``frequency, recency, n_periods`` (one row per
    customer, or per distinct history with ``weights`` = customers). Predictions take the same
    columns: :meth:`p_alive`, :meth:`conditional_expected_purchases`,
    :meth:`probability_of_n_purchases`, :meth:`probability_no_purchase`,
    :meth:`discounted_expected_transactions`; :meth:`expected_purchases` and the probabilities
    without a history
    describe a new customer. Periods are transaction opportunities.
    """

    param_names = ("alpha", "beta", "gamma", "delta")
    time_column = "n_periods"  # what customer_lifetime_value reads as the observed span

    def fit(self, data: pd.DataFrame, weights=None) -> BetaGeoBetaBinom:
        x, tx, n = _histories(data)
        w = np.ones(len(x)) if weights is None else np.asarray(weights, float)
        if w.shape != x.shape or not np.all(np.isfinite(w)) or (w < 0).any():
            raise ValueError("weights must be one finite, non-negative number per row")
        # distinct histories: the likelihood has one term per history
        keys, inverse = np.unique(np.column_stack([x, tx, n]), axis=0, return_inverse=True)
        ww = np.bincount(inverse.ravel(), weights=w, minlength=len(keys))
        keep = ww > 0
        d = {"x": keys[keep, 0], "tx": keys[keep, 1], "n": keys[keep, 2]}
        return self._fit_prepared(d, ww[keep], float(w.sum()))

    def _initial(self, d):
        return np.zeros(4)

    # -- likelihood -------------------------------------------------------------------------
    @staticmethod
    def _terms(al, be, ga, de, x, tx, n):
        """log of the likelihood's terms, (rows, 1 + max(n - t_x)): the 'alive after n' term,
        then one term per opportunity after t_x at which the customer may have died (-inf pads)."""
        m = int(np.max(n - tx)) if len(n) else 0
        i = np.arange(m)[None, :]
        valid = i < (n - tx)[:, None]
        base = -betaln(al, be) - betaln(ga, de)
        alive = betaln(al + x, be + n - x) + betaln(ga, de + n) + base
        died = (
            betaln(al + x[:, None], be + tx[:, None] - x[:, None] + i) + betaln(ga + 1.0, de + tx[:, None] + i) + base
        )
        died = np.where(valid, died, -np.inf)
        return np.column_stack([alive, died]), valid

    def _loglik_grad(self, lp, d):
        al, be, ga, de = np.exp(lp)
        x, tx, n = d["x"], d["tx"], d["n"]
        logs, valid = self._terms(al, be, ga, de, x, tx, n)
        top = logs.max(axis=1, keepdims=True)
        share = np.exp(logs - top)
        total = share.sum(axis=1, keepdims=True)
        ll = (top + np.log(total)).ravel()
        share /= total  # each term's share of the likelihood
        m = logs.shape[1] - 1
        i = np.arange(m)[None, :]
        ab, gd = digamma(al + be), digamma(ga + de)
        # d log(term) / d parameter, alive term then died terms
        d_al = np.column_stack(
            [digamma(al + x) - digamma(al + be + n), digamma(al + x)[:, None] - digamma(al + be + tx[:, None] + i)]
        ) - (digamma(al) - ab)
        d_be = np.column_stack(
            [
                digamma(be + n - x) - digamma(al + be + n),
                digamma(be + tx[:, None] - x[:, None] + i) - digamma(al + be + tx[:, None] + i),
            ]
        ) - (digamma(be) - ab)
        d_ga = np.column_stack(
            [
                digamma(ga) - digamma(ga + de + n),
                np.broadcast_to(digamma(ga + 1.0), (len(x), m)) - digamma(ga + de + 1.0 + tx[:, None] + i),
            ]
        ) - (digamma(ga) - gd)
        d_de = np.column_stack(
            [
                digamma(de + n) - digamma(ga + de + n),
                digamma(de + tx[:, None] + i) - digamma(ga + de + 1.0 + tx[:, None] + i),
            ]
        ) - (digamma(de) - gd)
        mask = np.column_stack([np.ones(len(x), bool), valid])
        grads = [np.where(mask, g, 0.0) for g in (d_al, d_be, d_ga, d_de)]
        grad = np.column_stack([(share * g).sum(axis=1) for g in grads]) * np.array([al, be, ga, de])
        return ll, grad

    # -- predictions --------------------------------------------------------------------------
    def _p(self):
        self._check_fitted()
        return (self.params_["alpha"], self.params_["beta"], self.params_["gamma"], self.params_["delta"])

    def _alive_after(self, x, tx, n):
        """P(alive after opportunity n | history) = A / L."""
        al, be, ga, de = self._p()
        logs, _ = self._terms(al, be, ga, de, x, tx, n)
        top = logs.max(axis=1)
        return np.exp(logs[:, 0] - top - np.log(np.exp(logs - top[:, None]).sum(axis=1)))

    def p_alive(self, data: pd.DataFrame, periods_ahead: int = 1) -> pd.Series:
        """P(alive at opportunity ``n + periods_ahead`` | history): with 1, the paper's
        "P(alive in 2002)" for the donors observed 1996-2001 (its Table 6)."""
        if int(periods_ahead) != periods_ahead or periods_ahead < 0:
            raise ValueError(f"periods_ahead must be a whole number >= 0, got {periods_ahead}")
        x, tx, n = _histories(data)
        _, _, ga, de = self._p()
        stay = np.exp(betaln(ga, de + n + periods_ahead) - betaln(ga, de + n))
        return pd.Series(self._alive_after(x, tx, n) * stay, index=data.index, name="p_alive")

    def _histories(self, data: pd.DataFrame):
        """Distinct histories (x, t_x, n), no per-customer parameters, each row's index into
        them: the interface :func:`customer_lifetime_value` uses."""
        (x, tx, n), _, codes = unique_rows(*_histories(data))
        self._check_fitted()
        return x, tx, n, None, codes

    def _conditional_expected(self, t, x, tx, n, P=None):
        """Expected transactions in the next ``t`` opportunities given the history."""
        al, be, ga, de = self._p()
        t = np.asarray(t, float)
        a2, b2, d2 = al + x, be + n - x, de + n
        # E[X(t)] of a new customer with (a2, b2, ga, d2), times P(alive after n)
        tail = np.exp(gammaln(ga + d2) + gammaln(1.0 + d2 + t) - gammaln(ga + d2 + t) - gammaln(1.0 + d2))
        return self._alive_after(x, tx, n) * a2 / (a2 + b2) * d2 / (ga - 1.0) * (1.0 - tail)

    def conditional_expected_purchases(self, t, data: pd.DataFrame) -> pd.Series:
        """Expected transactions in the next ``t`` opportunities, per customer, given the history."""
        x, tx, n = _histories(data)
        return pd.Series(self._conditional_expected(t, x, tx, n), index=data.index, name="expected_purchases")

    def expected_purchases(self, t) -> np.ndarray | float:
        """Expected transactions of a new customer in the ``t`` opportunities after the first."""
        t = np.asarray(t, float)
        z = np.zeros(t.size)
        out = self._conditional_expected(t.ravel(), z, z, z).reshape(t.shape)
        return float(out) if out.ndim == 0 else out

    @staticmethod
    def _pmf(k: int, t: int, a, b, g, d):
        """P(X(t) = k) for a new BG/BB customer with parameters (a, b, g, d), elementwise."""
        first = np.exp(
            gammaln(t + 1.0)
            - gammaln(k + 1.0)
            - gammaln(t - k + 1.0)
            + betaln(a + k, b + t - k)
            - betaln(a, b)
            + betaln(g, d + t)
            - betaln(g, d)
        )
        rest = 0.0
        for i in range(k, t):
            rest = rest + np.exp(
                gammaln(i + 1.0)
                - gammaln(k + 1.0)
                - gammaln(i - k + 1.0)
                + betaln(a + k, b + i - k)
                - betaln(a, b)
                + betaln(g + 1.0, d + i)
                - betaln(g, d)
            )
        return first + rest

    def probability_of_n_purchases(self, t: int, n: int, data: pd.DataFrame | None = None):
        """P(exactly ``n`` transactions in the next ``t`` opportunities | history), per customer;
        with ``data=None``, for a new customer in the ``t`` opportunities after the first."""
        if int(n) != n or n < 0 or int(t) != t or t < 0:
            raise ValueError(f"n and t must be whole numbers >= 0, got n={n}, t={t}")
        n, t = int(n), int(t)
        al, be, ga, de = self._p()
        if data is None:
            return float(self._pmf(n, t, al, be, ga, de)) if n <= t else 0.0
        x, tx, nn = _histories(data)
        alive = self._alive_after(x, tx, nn)
        future = self._pmf(n, t, al + x, be + nn - x, ga, de + nn) if n <= t else 0.0
        out = alive * future + (1.0 - alive) * (n == 0)
        return pd.Series(out, index=data.index, name=f"p_{n}_purchases")

    def probability_no_purchase(self, t: int, data: pd.DataFrame | None = None):
        """P(no transaction in the next ``t`` opportunities | history) (see
        :meth:`probability_of_n_purchases`)."""
        out = self.probability_of_n_purchases(t, 0, data)
        return out.rename("p_no_purchase") if isinstance(out, pd.Series) else out

    def discounted_expected_transactions(self, data: pd.DataFrame, discount_rate: float) -> pd.Series:
        """DERT: the discounted expected number of transactions over the whole future, per
        customer: sum over k >= 1 of P(transaction at n + k | history) / (1 + d)^k (closed form
        with 2F1). Times the value of a transaction (and a margin), a customer's residual value."""
        if not discount_rate > 0:
            raise ValueError("discount_rate must be > 0 (without discounting the sum is infinite for gamma <= 1)")
        x, tx, n = _histories(data)
        al, be, ga, de = self._p()
        z = 1.0 / (1.0 + discount_rate)
        b, c = de + n, ga + de + n
        series = z * b / c * hyp2f1(1.0, b + 1.0, c + 1.0, z)  # sum_k>=1 (b)_k/(c)_k z^k
        dert = self._alive_after(x, tx, n) * (al + x) / (al + be + n) * series
        return pd.Series(dert, index=data.index, name="dert")
