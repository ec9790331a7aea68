"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), by maximum likelihood.

Purchases are Poisson with rate lambda ~ Gamma(r, alpha) while alive; lifetimes are
exponential with rate mu ~ Gamma(s, beta). With ``x`` repeat purchases, the last at ``t_x``,
observed for ``T`` (Fader, Hardie & Lee 2005, "A note on deriving the Pareto/NBD model"):

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s
                                                 + s/(r+s+x) * (G(t_x) - G(T)) ]
    G(u) = 2F1(r+s+x, b; r+s+x+1; z_u) / (m+u)^(r+s+x),   m = max(alpha, beta),
    (b, z_u) = (s+1, (alpha-beta)/(alpha+u)) if alpha >= beta else (r+x, (beta-alpha)/(beta+u)).

Stability: ``log 2F1(a, b; a+1; z) = (1-b) log(1-z) + log 2F1(1, a+1-b; a+1; z)`` (Euler's
transformation), whose right-hand 2F1 lies in [1, 1/(1-z)] and never overflows; the difference
``G(t_x) - G(T)`` is taken in log space with ``expm1``. G depends on (x, t_x) or (x, T) only,
so it is computed once per distinct pair.

Gradient: analytic in every term except the dependence of the 2F1 on its first two parameters
(through r and s), which has no closed form; that part is a central difference of the
log-2F1 in (a, b) with a relative step of 1e-5, per distinct pair (truncation error ~1e-10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln, hyp2f1

from ._base import MLEModel, unique_rows
from ._special import hyp2f1_series
from .btyd import Lifetime, Purchases

__all__ = ["ParetoNBD"]


def hyp2f1_1(b, c, z):
    """2F1(1, b; c; z) for 0 < b <= c, 0 <= z < 1: a series of positive terms that shrink
    (ratio z (b+k)/(c+k) < 1), so the value lies in [1, 1/(1-z)].

    scipy's hyp2f1 returns inf for some of these (e.g. 2F1(1, 2; 101; 0.95)); such entries
    are summed directly.
    """
    b, c, z = np.broadcast_arrays(np.asarray(b, float), np.asarray(c, float), np.asarray(z, float))
    out = np.array(hyp2f1(1.0, b, c, z), dtype=float, ndmin=1).reshape(b.shape)
    with np.errstate(divide="ignore"):
        upper = 1.0 / (1.0 - z)
    bad = ~np.isfinite(out) | (out < 1.0 - 1e-12) | (out > upper * (1 + 1e-9))
    if bad.any():
        out[bad] = hyp2f1_series(1.0, b[bad], c[bad], z[bad])
    return out


def log_hyp2f1_a1(a, b, z):
    """log 2F1(a, b; a+1; z) for z in [0, 1), a > 0, via Euler's transformation."""
    return (1.0 - b) * np.log1p(-z) + np.log(hyp2f1_1(a + 1.0 - b, a + 1.0, z))


def _dlog_hyp2f1_a1(a, b, z):
    """(value, d/da, d/db, d/dz) of :func:`log_hyp2f1_a1`."""
    f = log_hyp2f1_a1(a, b, z)
    ha = 1e-5 * np.maximum(1.0, a)
    hb = 1e-5 * np.maximum(1.0, b)
    da = (log_hyp2f1_a1(a + ha, b, z) - log_hyp2f1_a1(a - ha, b, z)) / (2 * ha)
    db = (log_hyp2f1_a1(a, b + hb, z) - log_hyp2f1_a1(a, b - hb, z)) / (2 * hb)
    # d/dz 2F1(a,b;c;z) = (a b / c) 2F1(a+1, b+1; c+1; z), with c = a + 1
    log_num = np.log(a) + np.log(b) - np.log(a + 1.0) + (-b) * np.log1p(-z) + np.log(hyp2f1_1(a + 1.0 - b, a + 2.0, z))
    # (Euler again: 2F1(a+1, b+1; a+2; z) = (1-z)^(-b) 2F1(1, a+1-b; a+2; z))
    dz = np.exp(log_num - f)
    return f, da, db, dz


class _Pairs:
    """Distinct (x, u) pairs for u = t_x and u = T, with their row indices."""

    def __init__(self, d: Purchases):
        (self.x_tx, self.tx), _, self.i_tx = unique_rows(d.x, d.tx)
        (self.x_T, self.T), _, self.i_T = unique_rows(d.x, d.T)


class ParetoNBD(Lifetime, MLEModel):
    """Pareto/NBD: ``params_`` ``r, alpha, s, beta`` (rates per time unit of the RFM summary).

    Parameters
    ----------
    purchase_covariates, dropout_covariates : lists of RFM-table columns
        Time-invariant customer attributes: ``alpha_i = alpha exp(-purchase_coef @ z_i)`` and
        ``beta_i = beta exp(-dropout_coef @ z_i)`` (Fader & Hardie 2007), so a positive
        ``purchase_<col>`` raises the purchase rate and a positive ``dropout_<col>`` the
        dropout rate; ``z`` standardised on the fitting rows. Empty: the plain model.
    penalizer : float
        L2 penalty on the log-parameters (see :class:`BetaGeo`).
    """

    param_names = ("r", "alpha", "s", "beta")
    _coef_blocks = ((1, "purchase_", "purchase", -1.0), (3, "dropout_", "dropout", -1.0))
    #: s > 300: dropout rates gamma(s, beta) vary by less than 5.8% (1/sqrt(s)) across customers,
    #: the sign of data too young to tell customers' lifetimes apart (CDNOW at 1997-04-01, every
    #: customer at most 13 weeks old, runs off to s = 3,867, beta = 67,028, and each likelihood
    #: evaluation there takes seconds: 2F1 with parameters in the thousands). Published fits have
    #: s below 10 (CDNOW 0.61); at a bound of 1,000 the refusal itself took 13-38 s, at 300 1-3 s.
    _upper_bounds = {"s": float(np.log(300.0))}

    def _dropout_share(self, lp, d) -> float:
        """1 - S(max T): the share of new customers gone by the oldest customer's age."""
        s, beta = np.exp(lp[2]), np.exp(lp[3])
        return float(-np.expm1(-s * np.log1p(float(np.max(d.T)) / beta)))

    def _unidentified(self, lp, d, w) -> str | None:
        """Far along the ridge to the bound of s: s > 100 with beta above 100 times the oldest
        customer's age, where ``(beta / (beta + t))^s`` depends on s / beta alone (to 0.5% over
        the observed ages). Reaching the bound itself took 12-15 s of 2F1s with extreme
        parameters at young origins of CDNOW_sample; refused there at once."""
        s, beta = np.exp(lp[2]), np.exp(lp[3])
        if s > 100 and beta > 100 * float(np.max(d.T)):
            return self._at_bound_message(["s"], lp, d, w)
        return None

    def _at_bound_message(self, names, lp, d, w) -> str:
        p = dict(zip(self.param_names_, np.exp(lp), strict=True))
        age = float(np.average(d.T, weights=w))
        return (
            f"ParetoNBD: the customers' dropout rates cannot be told apart (s ran towards its bound of 300; "
            f"every customer would drop out at the same rate s/beta = {p['s'] / p['beta']:.3g} per "
            f"period): the data hold too little history (customers are {age:.3g} periods old on "
            f"average). Fit BetaGeo, choose a later cut-off, or add penalizer=0.001."
        )

    def fit(self, rfm: pd.DataFrame, weights=None):
        """Fit to an RFM summary (``frequency``, ``recency``, ``T``, and the covariate columns);
        returns self. ``weights`` (optional, one per row) count each row as that many users."""
        d, n, names, real = self._prepare_fit(rfm, weights)
        if isinstance(d, Purchases):
            d.pairs = _Pairs(d)
        return self._fit_prepared(d, d.w, n, names=names, real=real)

    def _initial(self, d):
        rate = max((d.w @ d.x) / max(d.w @ d.T, 1e-12), 1e-6)
        scale = max(float(np.average(d.T, weights=d.w)), 1e-3)
        return np.r_[np.log([1.0, 1.0 / rate, 1.0, scale]), self._initial_coefs()]

    # -- likelihood -----------------------------------------------------------------------
    @staticmethod
    def _log_G(r, alpha, s, beta, x, u, ge: bool):
        """log G(u) and its partial derivatives w.r.t. (r, alpha, s, beta), per pair; ``ge``:
        whether alpha >= beta (the branch of the representation)."""
        a = r + s + x
        if ge:
            m, b = alpha, s + 1.0
            z = (alpha - beta) / (alpha + u)
            dz_dalpha = (u + beta) / (alpha + u) ** 2
            dz_dbeta = -1.0 / (alpha + u)
            db_dr, db_ds = 0.0, 1.0
            dm_dalpha, dm_dbeta = 1.0, 0.0
        else:
            m, b = beta, r + x
            z = (beta - alpha) / (beta + u)
            dz_dalpha = -1.0 / (beta + u)
            dz_dbeta = (u + alpha) / (beta + u) ** 2
            db_dr, db_ds = 1.0, 0.0
            dm_dalpha, dm_dbeta = 0.0, 1.0
        f, fa, fb, fz = _dlog_hyp2f1_a1(a, b, z)
        log_mu = np.log(m + u)
        lg = f - a * log_mu
        d_r = fa + fb * db_dr - log_mu
        d_s = fa + fb * db_ds - log_mu
        d_alpha = fz * dz_dalpha - a * dm_dalpha / (m + u)
        d_beta = fz * dz_dbeta - a * dm_dbeta / (m + u)
        return lg, d_r, d_alpha, d_s, d_beta

    @classmethod
    def _log_G_rows(cls, r, alpha, s, beta, x, u):
        """:meth:`_log_G` with one (alpha, beta) per row (covariates): each branch on its rows,
        once per distinct (x, u, alpha, beta)."""
        (ux, uu, ua, ub), _, codes = unique_rows(x, u, alpha, beta)
        out = [np.empty(len(ux)) for _ in range(5)]
        ge = ua >= ub
        for mask, branch in ((ge, True), (~ge, False)):
            if mask.any():
                vals = cls._log_G(r, ua[mask], s, ub[mask], ux[mask], uu[mask], branch)
                for o, v in zip(out, vals, strict=True):
                    o[mask] = v
        return [o[codes] for o in out]

    def _row_loglik(self, theta, d):
        """Per-row log-likelihood and gradient w.r.t. the log of each row's (r, alpha, s, beta)."""
        r, alpha, s, beta = theta
        if np.ndim(alpha) == 0 and np.ndim(beta) == 0:
            if not hasattr(d, "pairs"):
                d.pairs = _Pairs(d)
            P = d.pairs
            # G at (x, t_x) and (x, T), per distinct pair, gathered to rows
            g1 = [v[P.i_tx] if np.ndim(v) else v for v in self._log_G(r, alpha, s, beta, P.x_tx, P.tx, alpha >= beta)]
            g2 = [v[P.i_T] if np.ndim(v) else v for v in self._log_G(r, alpha, s, beta, P.x_T, P.T, alpha >= beta)]
        else:
            r, s = float(np.ravel(r)[0]), float(np.ravel(s)[0])  # shared by every row
            g1 = self._log_G_rows(r, alpha, s, beta, d.x, d.tx)
            g2 = self._log_G_rows(r, alpha, s, beta, d.x, d.T)
        ll, grad, _ = self._assemble(r, alpha, s, beta, d.x, d.T, g1, g2)
        return ll, grad

    @staticmethod
    def _assemble(r, alpha, s, beta, x, T, g1, g2):
        """Log-likelihood, its gradient (log-parameters) and P(alive) per row, from log G at
        t_x (``g1``) and at T (``g2``) with their derivatives."""
        lg1, lg2 = g1[0], g2[0]
        # log(G(t_x) - G(T)); zero (log -inf) when t_x == T
        with np.errstate(divide="ignore"):
            diff = lg2 - lg1
            log_A0 = lg1 + np.log(-np.expm1(np.minimum(diff, 0.0)))
        # d log A0 = (G1 dlg1 - G2 dlg2) / (G1 - G2) = (dlg1 - e dlg2) / (1 - e), e = G2/G1
        e = np.exp(np.minimum(diff, 0.0))
        one_minus_e = -np.expm1(np.minimum(diff, 0.0))
        safe = one_minus_e > 0
        denom = np.where(safe, one_minus_e, 1.0)
        dA0 = [np.where(safe, (g1[j] - e * g2[j]) / denom, 0.0) for j in range(1, 5)]

        rsx = r + s + x
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        log_aT, log_bT = np.log(alpha + T), np.log(beta + T)
        B1 = -(r + x) * log_aT - s * log_bT
        B2 = np.log(s) - np.log(rsx) + log_A0
        top = np.maximum(B1, B2)
        e1, e2 = np.exp(B1 - top), np.exp(B2 - top)
        tot = e1 + e2
        ll = A1 + top + np.log(tot)
        w1, w2 = e1 / tot, e2 / tot

        d_r = digamma(r + x) - digamma(r) + np.log(alpha) + w1 * (-log_aT) + w2 * (-1.0 / rsx + dA0[0])
        d_alpha = r / alpha + w1 * (-(r + x) / (alpha + T)) + w2 * dA0[1]
        d_s = np.log(beta) + w1 * (-log_bT) + w2 * (1.0 / s - 1.0 / rsx + dA0[2])
        d_beta = s / beta + w1 * (-s / (beta + T)) + w2 * dA0[3]
        grad = np.column_stack([d_r * r, d_alpha * alpha, d_s * s, d_beta * beta])
        return ll, grad, w1

    # -- predictions ----------------------------------------------------------------------
    def _p_alive(self, x, tx, T, P=None):
        r, alpha, s, beta = self._p(P)
        x, tx, T = (np.atleast_1d(np.asarray(v, float)) for v in (x, tx, T))
        alpha, beta = np.broadcast_to(alpha, x.shape), np.broadcast_to(beta, x.shape)
        g1 = self._log_G_rows(r, alpha, s, beta, x, tx)
        g2 = self._log_G_rows(r, alpha, s, beta, x, T)
        return self._assemble(r, alpha, s, beta, x, T, g1, g2)[2]

    def _expected_if_alive(self, t, x, T, P=None):
        """E[purchases in (T, T + t] | alive at T, x, T]: lambda ~ Gamma(r+x, alpha+T) and
        mu ~ Gamma(s, beta+T) given alive at T."""
        r, alpha, s, beta = self._p(P)
        t = np.asarray(t, float)
        if abs(s - 1.0) < 1e-9:
            return (r + x) * (beta + T) / (alpha + T) * np.log((beta + T + t) / (beta + T))
        return (
            ((r + x) * (beta + T))
            / ((alpha + T) * (s - 1.0))
            * (1.0 - np.exp((s - 1.0) * (np.log(beta + T) - np.log(beta + T + t))))
        )

    def _survival_if_alive(self, t, x, T, P=None):
        """P(alive at T + t | alive at T): given alive at T, mu ~ Gamma(s, beta + T) and the
        exponential lifetime is memoryless, so the survival is ((beta+T) / (beta+T+t))^s."""
        r, alpha, s, beta = self._p(P)
        t = np.asarray(t, float)
        return np.exp(s * (np.log(beta + T) - np.log(beta + T + t))) * np.ones_like(np.asarray(x, float))

    def expected_purchases(self, t):
        """Expected purchases of a new customer in their first ``t`` periods (with covariates:
        a customer at the covariates' means)."""
        r, alpha, s, beta = self._p()
        t = np.asarray(t, float)
        if abs(s - 1.0) < 1e-9:
            out = r * beta / alpha * np.log((beta + t) / beta)
        else:
            out = r * beta / (alpha * (s - 1.0)) * (1.0 - (beta / (beta + t)) ** (s - 1.0))
        return float(out) if out.ndim == 0 else out

    def _prob_n(self, n, t, x, tx, T, P=None, nodes: int = 64):
        """Given alive at T: lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T), so the future
        lifetime survives to T+t with ((beta+T) / (beta+T+t))^s."""
        r, alpha, s, beta = self._p(P)
        bT = beta + T
        return self._prob_n_given_lifetime(
            n,
            t,
            x,
            tx,
            T,
            P,
            (r, alpha),
            survival=lambda t: np.exp(s * (np.log(bT) - np.log(bT + t))),
            density=lambda tau: s * np.exp(s * np.log(bT) - (s + 1.0) * np.log(bT + tau)),
            nodes=nodes,
        )
