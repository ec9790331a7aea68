"""Gamma-Gompertz/NBD (Bemmaor & Glady 2012, "Modeling purchasing behavior with sudden 'death':
a flexible customer lifetime model", Management Science 58(5)), by maximum likelihood.

Purchases are Poisson with rate lambda ~ Gamma(r, alpha) while alive, as in Pareto/NBD. A
customer's lifetime is Gompertz with a common shape ``b`` and an individual scale
eta ~ Gamma(s, beta): given eta, P(alive at u) = exp(-eta (e^{bu} - 1)); over customers

    S(u) = (beta / (beta + e^{bu} - 1))^s,   f(u) = -S'(u) = b s e^{bu} beta^s / (beta + e^{bu} - 1)^(s+1).

The hazard of a customer rises with age when ``b > 0``; as ``b -> 0`` with ``beta / b`` fixed
the model becomes Pareto/NBD with Pareto scale ``beta / b`` (then the data cannot tell ``b`` and
``beta`` apart, only their ratio: see docs/architecture.md). With ``x`` repeat purchases, the
last at ``t_x``, observed for ``T``:

    L = Gamma(r+x) alpha^r / Gamma(r) * [ (alpha+T)^-(r+x) S(T) + int_{t_x}^T (alpha+tau)^-(r+x) f(tau) dtau ]

The integral has no closed form: Gauss-Legendre with ``nodes`` points on [t_x, T] (the
integrand is smooth; 48 points agree with adaptive quadrature to 1e-12 relative on CDNOW, tested),
and so has the gradient, differentiated under the integral sign. Given alive at T, lambda ~
Gamma(r+x, alpha+T) and eta ~ Gamma(s, beta + e^{bT} - 1), so P(alive at T+u | alive at T) =
((beta + e^{bT} - 1) / (beta + e^{b(T+u)} - 1))^s, and the expectations and the count
distribution follow as for Pareto/NBD, with quadrature over the future lifetime.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from ..core.errors import ConvergenceError
from ._base import MLEModel
from .btyd import Lifetime, purchase_histories
from .pareto import ParetoNBD

__all__ = ["GammaGompertzNBD"]


def _q(beta, b, u):
    """log((beta + e^{bu} - 1) / beta), the log of the Gamma scale's growth by age ``u``: without
    overflow for large ``b u`` and without cancellation for small ``b u`` or large ``beta``."""
    y = b * np.asarray(u, float)
    big = y > 30.0
    small = np.log1p(np.expm1(np.where(big, 0.0, y)) / beta)
    return np.where(big, y - np.log(beta) + np.log1p((beta - 1.0) * np.exp(-np.where(big, y, 0.0))), small)


class GammaGompertzNBD(Lifetime, MLEModel):
    """Gamma-Gompertz/NBD: ``params_`` ``r, alpha, b, s, beta`` (rates per time unit of the RFM
    summary; ``b`` the Gompertz shape, ``s, beta`` the gamma heterogeneity of the lifetime scale).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the log-parameters (see :class:`BetaGeo`).
    nodes : Gauss-Legendre points of the likelihood's integral over the death time, and of the
        expectations' integrals over the future.
    """

    param_names = ("r", "alpha", "b", "s", "beta")

    def __init__(self, penalizer: float = 0.0, nodes: int = 48, tol: float = 1e-10, maxiter: int = 2000):
        MLEModel.__init__(self, penalizer=penalizer, tol=tol, maxiter=maxiter)
        self.nodes = nodes

    def fit(self, rfm, weights=None):
        """Fit to an RFM summary (``frequency``, ``recency``, ``T``); returns self. ``weights``
        (optional, one per row) count each row as that many users."""
        if int(self.nodes) != self.nodes or self.nodes < 4:
            raise ValueError(f"nodes must be a whole number >= 4, got {self.nodes}")
        self.freq_ = rfm.attrs.get("freq")
        d, n = purchase_histories(rfm, weights)
        self.max_age_ = float(np.max(d.T))
        return self._fit_prepared(d, d.w, n)

    def _initial(self, d):
        """The best of a few starts by likelihood: the Pareto/NBD fit (this model's limit b -> 0
        with beta / b its scale) with a small b on that ridge, and a grid of hazards that rise
        over the observed ages (b max(T) = 0.3, 1, 3; s = 0.5, 2; beta = 1, where the lifetime
        starts exponential with rate s b). A single start can end on the ridge where s and beta
        run off together (no heterogeneity) far from the maximum."""
        rate = max((d.w @ d.x) / max(d.w @ d.T, 1e-12), 1e-6)
        span = max(float(np.max(d.T)), 1e-9)
        r, alpha = 1.0, 1.0 / rate
        starts = []
        try:
            pareto = ParetoNBD(penalizer=self.penalizer)._fit_prepared(d, d.w, float(d.w.sum()))
            r, alpha, s, beta = (pareto.params_[k] for k in ("r", "alpha", "s", "beta"))
            starts.append([r, alpha, 0.1 / span, s, 0.1 / span * beta])
        except ConvergenceError:
            pass
        starts += [[r, alpha, k / span, s, 1.0] for k in (0.3, 1.0, 3.0) for s in (0.5, 2.0)]
        lps = np.log(np.array(starts))
        wsum = float(d.w.sum())
        values = [self._objective(lp, d, d.w, wsum)[0] for lp in lps]
        return lps[int(np.argmin(values))]

    def _bounds(self, d) -> list:
        # b e^{...}: below b * max(T) = 1e-4 the Gompertz hazard changes by less than 0.01% over
        # the observed ages, which no data tell from Pareto/NBD (b -> 0); the fit stops there
        # instead of running down the ridge where only beta / b is identified (``pareto_limit_``)
        return [
            (float(np.log(1e-4 / max(float(np.max(d.T)), 1e-9))), None) if n == "b" else (None, None)
            for n in self.param_names_
        ]

    def _dropout_share(self, lp, d) -> float:
        """1 - S(max T): the share of new customers gone by the oldest customer's age."""
        b, s, beta = np.exp(lp[2]), np.exp(lp[3]), np.exp(lp[4])
        return float(-np.expm1(-s * _q(beta, b, float(np.max(d.T)))))

    @property
    def pareto_limit_(self) -> bool:
        """Whether the fit ended at the Pareto/NBD limit: the Gompertz factor ``e^{bu}`` rises
        by less than 0.1% over the oldest customer's age (``b * max_age_ < 1e-3``). The data
        then prefer an exponential lifetime; ``beta / b`` is the Pareto scale and ``b``, ``beta``
        alone are not identified (their standard errors say so)."""
        self._check_fitted()
        return self.params_["b"] * self.max_age_ < 1e-3

    # -- likelihood -----------------------------------------------------------------------
    def _row_loglik(self, theta, d):
        """Per-row log-likelihood and its gradient w.r.t. the log-parameters."""
        with np.errstate(all="ignore"):  # a line search may try extreme values: the objective refuses them
            return self._row_loglik_at(*(np.float64(v) for v in theta), d)

    def _parts(self, r, alpha, b, s, beta, x, tx, T):
        """The likelihood's two parts without its constant factor, on the log scale: alive at T,
        ``(alpha+T)^-(r+x) S(T)`` with ``S(T) = exp(-s q_T)`` (per row), and dying at each
        Gauss-Legendre node tau of (t_x, T), ``(alpha+tau)^-(r+x) f(tau)`` with ``f = b s e^{b tau}
        / beta e^{-(s+1) q}`` times the node's weight (rows x nodes); then the log of their sum
        and each one's share of it (``w1`` alive, ``wk`` per node)."""
        rx = r + x
        qT = _q(beta, b, T)
        l1 = -rx * np.log(alpha + T) - s * qT
        gx, gw = np.polynomial.legendre.leggauss(int(self.nodes))
        half = 0.5 * (T - tx)
        tau = tx[:, None] + half[:, None] * (gx[None, :] + 1.0)
        q = _q(beta, b, tau)
        with np.errstate(divide="ignore"):  # log(half) = -inf where t_x == T: no such death
            terms = (
                -rx[:, None] * np.log(alpha + tau)
                + np.log(b * s / beta)
                + b * tau
                - (s + 1.0) * q
                + np.log(gw)[None, :]
                + np.log(half)[:, None]
            )
        top = np.maximum(l1, terms.max(axis=1))
        e1 = np.exp(l1 - top)
        ek = np.exp(terms - top[:, None])
        tot = e1 + ek.sum(axis=1)
        return qT, tau, q, top + np.log(tot), e1 / tot, ek / tot[:, None]

    def _row_loglik_at(self, r, alpha, b, s, beta, d):
        x, tx, T = d.x, d.tx, d.T
        rx = r + x
        qT, tau, q, log_sum, w1, wk = self._parts(r, alpha, b, s, beta, x, tx, T)
        ll = gammaln(rx) - gammaln(r) + r * np.log(alpha) + log_sum
        dA = [digamma(rx) - digamma(r) + np.log(alpha), r / alpha, 0.0, 0.0, 0.0]
        d1 = [  # of the alive part
            -np.log(alpha + T),
            -rx / (alpha + T),
            -s * T * np.exp(b * T - np.log(beta) - qT),
            -qT,
            s / beta * -np.expm1(-qT),
        ]
        dg = [  # of the dying part at each node
            -np.log(alpha + tau),
            -rx[:, None] / (alpha + tau),
            1.0 / b + tau - (s + 1.0) * tau * np.exp(b * tau - np.log(beta) - q),
            1.0 / s - q,
            (s * -np.expm1(-q) - np.exp(-q)) / beta,
        ]
        grad = np.column_stack(
            [(dA[j] + w1 * d1[j] + (wk * dg[j]).sum(axis=1)) * p for j, p in enumerate((r, alpha, b, s, beta))]
        )
        return ll, grad

    # -- predictions ----------------------------------------------------------------------
    def _p_alive(self, x, tx, T, P=None):
        x, tx, T = (np.atleast_1d(np.asarray(v, float)) for v in (x, tx, T))
        return self._parts(*self._p(P), x, tx, T)[4]

    def _survival_if_alive(self, t, x, T, P=None):
        """P(alive at T + t | alive at T) = ((beta + e^{bT} - 1) / (beta + e^{b(T+t)} - 1))^s."""
        r, alpha, b, s, beta = self._p(P)
        T = np.asarray(T, float)
        return np.exp(s * (_q(beta, b, T) - _q(beta, b, T + np.asarray(t, float)))) * np.ones_like(np.asarray(x, float))

    def _expected_if_alive(self, t, x, T, P=None):
        """E[purchases in (T, T + t] | alive at T, x, T] = (r+x)/(alpha+T) * int_0^t survival."""
        r, alpha, b, s, beta = self._p(P)
        x, T = np.asarray(x, float), np.asarray(T, float)
        t = float(t)
        gx, gw = np.polynomial.legendre.leggauss(int(self.nodes))
        u = 0.5 * t * (gx + 1.0)
        qT = _q(beta, b, T)
        surv = np.exp(s * (qT[..., None] - _q(beta, b, T[..., None] + u)))
        return (r + x) / (alpha + T) * 0.5 * t * (surv @ gw)

    def expected_purchases(self, t):
        """Expected repeat purchases of a new customer in their first ``t`` periods."""
        r, alpha, b, s, beta = self._p()
        ts = np.atleast_1d(np.asarray(t, float))
        gx, gw = np.polynomial.legendre.leggauss(int(self.nodes))
        u = 0.5 * ts[:, None] * (gx[None, :] + 1.0)
        surv = np.exp(-s * _q(beta, b, u))
        out = r / alpha * 0.5 * ts * (surv @ gw)
        return float(out[0]) if np.ndim(t) == 0 else out

    def _prob_n(self, n, t, x, tx, T, P=None):
        """Given alive at T: lambda ~ Gamma(r+x, alpha+T) and the future lifetime as above; the
        density of the death time T + tau is b s e^{b(T+tau)} / (beta + e^{bT} - 1) * ((beta +
        e^{bT} - 1) / (beta + e^{b(T+tau)} - 1))^(s+1)."""
        r, alpha, b, s, beta = self._p(P)
        T = np.asarray(T, float)
        qT = _q(beta, b, T)
        return self._prob_n_given_lifetime(
            n,
            t,
            x,
            tx,
            T,
            P,
            (r, alpha),
            survival=lambda t: np.exp(s * (qT - _q(beta, b, T + t))),
            density=lambda tau: np.exp(
                np.log(b * s / beta) + b * (T + tau) + s * qT - (s + 1.0) * _q(beta, b, T + tau)
            ),
            nodes=self.nodes,
        )
