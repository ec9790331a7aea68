"""Buy-till-you-die models fitted by maximum likelihood on the RFM summary.

* :class:`BetaGeo` (BG/NBD; Fader, Hardie & Lee 2005, "Counting your customers the easy way")
* :class:`ModifiedBetaGeo` (MBG/NBD; Batislam, Denizel & Filiztekin 2007): a customer may
  also drop out at time 0, so a customer with no repeat purchase is not surely alive.
* :class:`GammaGamma` (spend per transaction; Fader, Hardie & Lee 2005, "RFM and CLV")
* :class:`ShiftedBetaGeometric` (contractual retention; Fader & Hardie 2007, "How to project
  customer retention")

All fit on the distinct rows of their input with counts as weights: the cost grows with the
number of distinct histories, not users; terms that depend on one column only (``gammaln(r+x)``,
``log(alpha+T)``) are computed once per distinct value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln, polygamma

from ..core.errors import ConvergenceError
from . import _covariates
from ._base import MLEModel, unique_rows, unique_rows_with_columns
from ._special import hyp2f1

__all__ = ["BetaGeo", "ModifiedBetaGeo", "GammaGamma", "ShiftedBetaGeometric", "ConvergenceError", "validate_rfm"]


def validate_rfm(rfm: pd.DataFrame, columns=("frequency", "recency", "T"), name: str = "rfm") -> None:
    """Raise a ValueError naming the column and the number of rows if ``rfm`` is not a BTYD summary."""
    if not isinstance(rfm, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame from features.rfm_summary, not {type(rfm).__name__}")
    missing = [c for c in columns if c not in rfm.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; build it with features.rfm_summary")
    if len(rfm) == 0:
        raise ValueError(f"{name} has no rows")
    vals = {}
    for c in columns:
        col = rfm[c]
        v = (
            col.to_numpy(dtype=float)
            if pd.api.types.is_numeric_dtype(col)
            else pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        )
        vals[c] = v
        # one cheap pass for the common case; count the offenders only when there are some
        if not (np.isfinite(v).all() and v.min() >= 0):
            bad = ~np.isfinite(v)
            if bad.any():
                raise ValueError(f"{name}: column {c!r} has {int(bad.sum())} missing or non-finite rows")
            raise ValueError(f"{name}: column {c!r} has {int((v < 0).sum())} negative rows")
    if "frequency" in columns:
        f = vals["frequency"]
        if not np.array_equal(f, np.floor(f)):
            raise ValueError(f"{name}: column 'frequency' has {int((f % 1 != 0).sum())} non-integer rows")
    if "recency" in columns and "T" in columns:
        over = vals["recency"] > vals["T"] + 1e-9
        if over.any():
            raise ValueError(f"{name}: {int(over.sum())} rows have recency > T")
        if "frequency" in columns:
            odd = (vals["frequency"] == 0) & (vals["recency"] > 0)
            if odd.any():
                raise ValueError(f"{name}: {int(odd.sum())} rows have frequency 0 but recency > 0")


class Purchases:
    """Prepared BTYD data: distinct (x, t_x, T) rows, and distinct values of each column."""

    def __init__(self, x, tx, T):
        (self.x, self.tx, self.T), self.w, self.codes, cols = unique_rows_with_columns(x, tx, T)
        (self.ux, self.ix), (self.utx, self.itx), (self.uT, self.iT) = cols
        self.pos = self.x > 0

    def subset(self, idx) -> "Purchases":
        """Some of the distinct rows (the per-value caches stay valid)."""
        sub = object.__new__(Purchases)
        for name in ("x", "tx", "T", "w", "ix", "itx", "iT", "pos"):
            setattr(sub, name, getattr(self, name)[idx])
        sub.ux, sub.utx, sub.uT, sub.codes = self.ux, self.utx, self.uT, None
        return sub


def purchase_histories(rfm, weights):
    """Distinct histories of ``rfm`` with counts (or summed ``weights``) and the user count."""
    x, tx, T = _columns(rfm)
    d = Purchases(x, tx, T)
    n = len(x)
    if weights is not None:
        w_rows = np.asarray(weights, float)
        if w_rows.shape != (n,) or (w_rows < 0).any():
            raise ValueError("weights must be one non-negative number per row")
        d.w = np.bincount(d.codes, weights=w_rows, minlength=len(d.x))
        n = float(w_rows.sum())
    return d, n


def _columns(rfm):
    validate_rfm(rfm)
    return (rfm["frequency"].to_numpy(float), rfm["recency"].to_numpy(float), rfm["T"].to_numpy(float))


def _spread(f, x, tx, T):
    """x, t_x, T broadcast to the shape of ``f`` (a curve at several times for one history)."""
    if np.shape(f) == np.shape(x):
        return x, tx, T
    return tuple(np.broadcast_to(np.asarray(v, float), np.shape(f)) for v in (x, tx, T))


class _CovariatePurchases:
    """Prepared data of a model with covariates: distinct (x, t_x, T, z) rows with counts."""

    def __init__(self, x, tx, T, Z, weights=None):
        arr, w, codes = unique_rows(x, tx, T, *Z.T)
        self.x, self.tx, self.T = arr[:3]
        self.Z = np.column_stack(arr[3:]) if Z.shape[1] else np.zeros((len(self.x), 0))
        if weights is not None:
            w_rows = np.asarray(weights, float)
            if w_rows.shape != (len(x),) or (w_rows < 0).any():
                raise ValueError("weights must be one non-negative number per row")
            w = np.bincount(codes, weights=w_rows, minlength=len(self.x))
        self.w, self.codes, self.pos = w, codes, self.x > 0


class Lifetime:
    """What the continuous-time purchase models share: covariates on their scale parameters,
    expected remaining lifetime and the count distribution (for models that define
    ``_row_loglik``, ``_alive_curve`` and ``_prob_n``).

    Covariates: ``purchase_covariates`` shift each customer's purchase-rate scale
    (``alpha_i = alpha exp(-purchase_coef @ z_i)``: a positive coefficient means more
    purchases), ``dropout_covariates`` the dropout process (``_coef_blocks`` of each model
    says which parameters); ``z`` are the columns standardised on the fitting rows
    (:mod:`._covariates`). Every prediction then uses each customer's own parameters; the
    population-level ones (``expected_purchases``) describe a customer at the covariates' means.
    """

    #: (index of the base parameter, coefficient name prefix, "purchase" | "dropout", sign)
    _coef_blocks: tuple = ()

    def __init__(
        self,
        purchase_covariates=(),
        dropout_covariates=(),
        penalizer: float = 0.0,
        tol: float = 1e-10,
        maxiter: int = 2000,
    ):
        super().__init__(penalizer=penalizer, tol=tol, maxiter=maxiter)
        self.purchase_covariates = purchase_covariates
        self.dropout_covariates = dropout_covariates

    def _covariate_lists(self) -> tuple[list[str], list[str]]:
        # models pickled before covariates existed lack the attributes
        return (
            _covariates.names(getattr(self, "purchase_covariates", ())),
            _covariates.names(getattr(self, "dropout_covariates", ())),
        )

    def _has_covariates(self) -> bool:
        return any(self._covariate_lists())

    def _blocks(self):
        """Per coefficient block: (base parameter index, names, columns of Z, sign)."""
        pc, dc = self._covariate_lists()
        cols = _covariates.union(pc, dc)
        out = []
        for j, prefix, which, sign in self._coef_blocks:
            lst = pc if which == "purchase" else dc
            if lst:
                out.append((j, [f"{prefix}{c}" for c in lst], [cols.index(c) for c in lst], sign))
        return out

    def _prepare_fit(self, rfm: pd.DataFrame, weights):
        """Prepared data, user count, and the names of the parameters and of the real ones
        (coefficients after the base ones)."""
        base = type(self).param_names
        self.freq_ = rfm.attrs.get("freq")
        if not self._has_covariates():
            return (*purchase_histories(rfm, weights), base, ())
        x, tx, T = _columns(rfm)
        Z = _covariates.design(self, rfm, _covariates.union(*self._covariate_lists()), fitting=True)
        d = _CovariatePurchases(x, tx, T, Z, weights)
        coefs = tuple(n for _, names, _, _ in self._blocks() for n in names)
        return d, (len(x) if weights is None else float(np.sum(weights))), base + coefs, coefs

    def _log_row_params(self, lp, Z) -> np.ndarray:
        """log of each row's base parameters, shape (k, rows)."""
        k = len(type(self).param_names)
        L = np.repeat(np.asarray(lp[:k], float)[:, None], len(Z), axis=1)
        pos = k
        for j, names, idx, sign in self._blocks():
            L[j] += sign * (Z[:, idx] @ lp[pos : pos + len(names)])
            pos += len(names)
        return L

    def _loglik_grad(self, lp, d):
        """Per-row log-likelihood and its gradient w.r.t. the optimiser's vector."""
        if not isinstance(d, _CovariatePurchases):
            with np.errstate(over="ignore"):  # a line search may try extreme values: the objective refuses them
                theta = tuple(np.exp(lp))
            return self._row_loglik(theta, d)
        ll, G = self._row_loglik(tuple(np.exp(self._log_row_params(lp, d.Z))), d)
        parts = [G] + [sign * G[:, [j]] * d.Z[:, idx] for j, _, idx, sign in self._blocks()]
        return ll, np.hstack(parts)

    def _total(self, lp, d, w):
        if isinstance(d, _CovariatePurchases):
            ll, g = self._loglik_grad(lp, d)
            return float(w @ ll), w @ g
        return self._plain_total(lp, d, w)

    def _plain_total(self, lp, d, w):
        ll, g = self._loglik_grad(lp, d)
        return float(w @ ll), w @ g

    def _initial_coefs(self) -> np.ndarray:
        return np.zeros(len(self.param_names_) - len(type(self).param_names))

    def _p(self, P=None):
        """The parameters: per distinct history when ``P`` (from :meth:`_histories`) is given."""
        if P is not None:
            return P
        self._check_fitted()
        return tuple(self.params_[k] for k in type(self).param_names)

    def _histories(self, rfm: pd.DataFrame):
        """Distinct histories of ``rfm`` (x, t_x, T), their parameters (None without covariates)
        and each row's index into them."""
        x, tx, T = _columns(rfm)
        self._check_fitted()
        if not self._has_covariates():
            (x, tx, T), _, codes = unique_rows(x, tx, T)
            return x, tx, T, None, codes
        Z = _covariates.design(self, rfm, self.covariate_columns_)
        arr, _, codes = unique_rows(x, tx, T, *Z.T)
        return arr[0], arr[1], arr[2], self._row_params(np.column_stack(arr[3:])), codes

    def _row_params(self, Z: np.ndarray) -> tuple:
        """The parameters of each row of the standardised covariates ``Z``: an array for each
        parameter a covariate shifts, one number for the others."""
        L = np.exp(self._log_row_params(self.log_params_, Z))
        shifted = {j for j, *_ in self._blocks()}
        return tuple(L[j] if j in shifted else float(L[j, 0]) for j in range(len(L)))

    def new_customer_params(self, covariates: pd.DataFrame | None):
        """The parameters of each customer of ``covariates`` (rows: customers; the columns the
        model was fitted with) as a new customer, aligned with its rows, for the population
        diagnostics; ``None`` for a model without covariates (``covariates`` is then not used)."""
        self._check_fitted()
        if not self._has_covariates():
            return None
        if covariates is None:
            raise ValueError(
                f"this {type(self).__name__} has covariates "
                f"{_covariates.union(*self._covariate_lists())}: pass covariates= (one row per "
                f"customer with those columns) to sum each customer's own expectation"
            )
        return self._row_params(_covariates.design(self, covariates, self.covariate_columns_))

    def _plain_only(self, what: str) -> None:
        if self._has_covariates():
            raise ValueError(
                f"{what} describes the whole population and is drawn for models without "
                f"covariates; this {type(self).__name__} has covariates "
                f"{_covariates.union(*self._covariate_lists())}: use the same model fitted without them"
            )

    # Both continuous-time families predict "given alive at T" times P(alive at T): the first
    # factor depends on the history only through (x, T), the second on (x, t_x, T). A model
    # defines _expected_if_alive, _survival_if_alive and _p_alive; the curves follow.
    def _conditional_expected(self, t, x, tx, T, P=None):
        """E[purchases in (T, T + t] | history]."""
        f = self._expected_if_alive(t, x, T, P)
        return f * self._p_alive(*_spread(f, x, tx, T), P)

    def _alive_curve(self, t, x, tx, T, P=None):
        """P(alive at T + t | history)."""
        f = self._survival_if_alive(t, x, T, P)
        return f * self._p_alive(*_spread(f, x, tx, T), P)

    def _weighted_sums(self, curve: str, ts, W, x, tx, T, P=None, alive=None) -> np.ndarray:
        """``W @ [curve(t) for t in ts]`` per history, ``curve`` being ``"expected"``
        (:meth:`_conditional_expected`) or ``"survival"`` (:meth:`_alive_curve`); ``W`` has one
        row of weights per sum. The given-alive factor is computed once per distinct (x, T)
        (a million histories have some tens of thousands), P(alive) once per history (or
        ``alive``, when the caller has it)."""
        f = self._expected_if_alive if curve == "expected" else self._survival_if_alive
        W = np.atleast_2d(np.asarray(W, float))
        if P is None:
            (ux, uT), _, pair = unique_rows(x, T)
        else:  # each history has parameters of its own
            ux, uT, pair = x, T, None
        sums = np.zeros((len(W), len(ux)))
        for j, t in enumerate(ts):
            sums += np.outer(W[:, j], f(float(t), ux, uT, P))
        if pair is not None:
            sums = sums[:, pair]
        return sums * (self._p_alive(x, tx, T, P) if alive is None else alive)

    def expected_remaining_lifetime(self, rfm: pd.DataFrame, horizon: float, nodes: int = 16) -> pd.Series:
        """Expected time each user stays alive within the next ``horizon`` periods (``rfm`` units).

        The restricted mean ``int_0^horizon P(alive at T + t | history) dt`` (Gauss-Legendre
        over ``t``). Restricted, because BTYD lifetimes have heavy tails: with BG/NBD's ``a < 1``
        (as on CDNOW) the unrestricted mean is infinite. A user surely dead scores 0, one surely
        alive throughout scores ``horizon``.
        """
        x, tx, T, P, codes = self._histories(rfm)
        out = self._remaining_lifetime(horizon, x, tx, T, P, nodes=nodes)
        return pd.Series(out[codes], index=rfm.index, name="expected_remaining_lifetime")

    def _remaining_lifetime(self, horizon: float, x, tx, T, P=None, alive=None, nodes: int = 16) -> np.ndarray:
        if not horizon > 0:
            raise ValueError(f"horizon must be positive, got {horizon}")
        gx, gw = np.polynomial.legendre.leggauss(nodes)
        return self._weighted_sums("survival", 0.5 * horizon * (gx + 1.0), 0.5 * horizon * gw, x, tx, T, P, alive)[0]

    def _prob_n_given_lifetime(self, n, t, x, tx, T, P, rate, survival, density, nodes: int):
        """P(exactly ``n`` purchases in (T, T+t] | history) for the models whose purchase rate
        given alive at T is ``lambda ~ Gamma(r+x, alpha+T)`` (``rate = (r, alpha)``) and whose
        future lifetime has ``survival(t)`` and death-time ``density(tau)`` given alive at T: alive
        throughout, or dying at T+tau with n purchases before (Gauss-Legendre over tau), times
        P(alive); a customer already dead makes none."""
        r, alpha = rate
        t = np.broadcast_to(np.asarray(t, float), np.shape(x)).astype(float)
        rx, aT = r + x, alpha + T

        def log_nb(tau):
            return (
                gammaln(rx + n)
                - gammaln(rx)
                - gammaln(n + 1.0)
                + rx * (np.log(aT) - np.log(aT + tau))
                + (n * (np.log(tau) - np.log(aT + tau)) if n else 0.0)
            )

        with np.errstate(divide="ignore"):  # t = 0 (a horizon of nothing): log 0 = -inf, no purchase
            alive_through = survival(t) * np.exp(log_nb(t))
        gx, gw = np.polynomial.legendre.leggauss(int(nodes))
        tau = 0.5 * t[None, :] * (gx[:, None] + 1.0)
        with np.errstate(divide="ignore"):
            dying = 0.5 * t * np.sum(gw[:, None] * density(tau) * np.exp(log_nb(tau)), axis=0)
        alive = self._p_alive(x, tx, T, P)
        return alive * (alive_through + dying) + (1.0 - alive) * (n == 0)

    def p_alive(self, rfm: pd.DataFrame) -> pd.Series:
        """P(the customer is still alive at T | frequency, recency, T), per user."""
        x, tx, T, P, codes = self._histories(rfm)
        return pd.Series(self._p_alive(x, tx, T, P)[codes], index=rfm.index, name="p_alive")

    def _log_odds_dead(self, x, tx, T, P=None):
        """log P(dead)/P(alive), for the diagnostics that share BG/NBD's interface."""
        pa = np.clip(self._p_alive(x, tx, T, P), 1e-300, 1.0)
        with np.errstate(divide="ignore"):
            return np.log1p(-pa) - np.log(pa)

    def probability_of_n_purchases(self, t, n: int, rfm: pd.DataFrame) -> pd.Series:
        """P(exactly ``n`` purchases in the next ``t`` periods | history), per user."""
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n}")
        n = int(n)
        x, tx, T, P, codes = self._histories(rfm)
        out = self._prob_n(n, np.full_like(x, float(t)), x, tx, T, P)
        return pd.Series(out[codes], index=rfm.index, name=f"p_{n}_purchases")

    def probability_no_purchase(self, t, rfm: pd.DataFrame) -> pd.Series:
        """P(no purchase in the next ``t`` periods | history), per user: a non-contractual
        customer's churn risk over ``t``."""
        return self.probability_of_n_purchases(t, 0, rfm).rename("p_no_purchase")

    def conditional_expected_purchases(self, t, rfm: pd.DataFrame) -> pd.Series:
        """Expected purchases in the next ``t`` periods, per user, given their history."""
        x, tx, T, P, codes = self._histories(rfm)
        return pd.Series(self._conditional_expected(t, x, tx, T, P)[codes], index=rfm.index, name="expected_purchases")


class _BetaGeoFamily(Lifetime, MLEModel):
    """BG/NBD and MBG/NBD share everything but a shift: ``k = 0`` (BG) or ``1`` (MBG).

    Covariates: ``alpha_i = alpha exp(-purchase_coef @ z_i)``, ``a_i = a exp(dropout_a_coef @ z_i)``,
    ``b_i = b exp(dropout_b_coef @ z_i)`` (Fader & Hardie 2007): the dropout probability's
    mean a/(a+b) rises with ``dropout_a_*`` and falls with ``dropout_b_*``.
    """

    param_names = ("r", "alpha", "a", "b")
    _k = 0
    _coef_blocks = (
        (1, "purchase_", "purchase", -1.0),
        (2, "dropout_a_", "dropout", 1.0),
        (3, "dropout_b_", "dropout", 1.0),
    )

    def fit(self, rfm: pd.DataFrame, weights=None):
        """Fit to an RFM summary (``frequency``, ``recency``, ``T``, and the covariate columns);
        returns self. ``weights`` (optional, one per row) count each row as that many users.
        """
        d, n, names, real = self._prepare_fit(rfm, weights)
        return self._fit_prepared(d, d.w, n, names=names, real=real)

    def _analytic_hessian(self, d) -> bool:
        return not isinstance(d, _CovariatePurchases)

    def _dropout_share(self, lp, d) -> float:
        """The mean dropout probability a / (a + b) (of each repeat purchase: the BG family's
        customers drop out only after one)."""
        a, b = np.exp(lp[2]), np.exp(lp[3])
        return float(a / (a + b))

    def _initial(self, d):
        # r/alpha ~ repeat rate; a, b ~ 1
        rate = max((d.w @ d.x) / max(d.w @ d.T, 1e-12), 1e-6)
        return np.r_[np.log([1.0, 1.0 / rate, 1.0, 1.0]), self._initial_coefs()]

    def _row_loglik(self, theta, d):
        """Per-row log-likelihood and gradient w.r.t. the log of each row's (r, alpha, a, b)
        (scalars, or one value per row for a model with covariates)."""
        r, alpha, a, b = theta
        k = self._k
        x = d.x
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        A2 = gammaln(a + b) - gammaln(b) + gammaln(b + x + k) - gammaln(a + b + x + k)
        log_aT, log_atx = np.log(alpha + d.T), np.log(alpha + d.tx)
        A3 = -(r + x) * log_aT
        drop = np.maximum(b + x + k - 1.0, 1e-300)
        A4 = np.log(a) - np.log(drop) - (r + x) * log_atx
        if k == 0:
            A4 = np.where(d.pos, A4, -np.inf)
        D = np.logaddexp(A3, A4)
        w3, w4 = np.exp(A3 - D), np.exp(A4 - D)
        ll = A1 + A2 + D
        psi_abx = digamma(a + b + x + k)
        dr = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * log_aT - w4 * log_atx
        dalpha = r / alpha - w3 * (r + x) / (alpha + d.T) - w4 * (r + x) / (alpha + d.tx)
        da = digamma(a + b) - psi_abx + w4 / a
        db = digamma(a + b) - digamma(b) + digamma(b + x + k) - psi_abx - w4 / drop
        return ll, np.column_stack([dr * r, dalpha * alpha, da * a, db * b])

    def _plain_total(self, lp, d, w):
        """Same value and gradient as ``w @ _loglik_grad``, with every term that depends on x
        only summed over the distinct x first (weights aggregated per x)."""
        with np.errstate(over="ignore"):  # a line search may try extreme values: the objective refuses them
            r, alpha, a, b = np.exp(lp)
        k = self._k
        x = d.x
        ux = d.ux
        wx = np.bincount(d.ix, weights=w, minlength=ux.size)  # total weight per distinct x
        W = wx.sum()
        # x-only parts of A1 + A2 and of the gradient
        lbx = gammaln(b + ux + k) - gammaln(a + b + ux + k)
        tot = wx @ (gammaln(r + ux) - gammaln(r) + lbx) + W * (r * np.log(alpha) + gammaln(a + b) - gammaln(b))
        g_r = wx @ digamma(r + ux) - W * digamma(r) + W * np.log(alpha)
        g_alpha = W * r / alpha
        psi_abx = digamma(a + b + ux + k)
        g_a = W * digamma(a + b) - wx @ psi_abx
        g_b = W * (digamma(a + b) - digamma(b)) + wx @ (digamma(b + ux + k) - psi_abx)
        # row parts: log(exp(A3) + exp(A4))
        log_aT = np.log(alpha + d.uT)[d.iT]
        log_atx = np.log(alpha + d.utx)[d.itx]
        rx = r + x
        drop_u = np.where(ux + k >= 1, b + ux + k - 1.0, 1.0)  # x + k = 0: masked below
        A3 = -rx * log_aT
        A4 = (np.log(a) - np.log(drop_u))[d.ix] - rx * log_atx
        if k == 0:
            A4 = np.where(d.pos, A4, -np.inf)
        # log(exp(A3) + exp(A4)) by hand: np.logaddexp is ~25x slower than exp here
        top = np.maximum(A3, A4)
        e3, e4 = np.exp(A3 - top), np.exp(A4 - top)
        s34 = e3 + e4
        D = top + np.log(s34)
        w3, w4 = e3 / s34, e4 / s34
        ww3, ww4 = w * w3, w * w4
        tot += w @ D
        g_r -= ww3 @ log_aT + ww4 @ log_atx
        g_alpha -= (ww3 * rx) @ (1.0 / (alpha + d.uT))[d.iT] + (ww4 * rx) @ (1.0 / (alpha + d.utx))[d.itx]
        sw4 = ww4.sum()
        g_a += sw4 / a
        g_b -= np.bincount(d.ix, weights=ww4, minlength=ux.size) @ (1.0 / drop_u)
        return float(tot), np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])

    def _total_hess(self, lp, d, w):
        """Total log-likelihood, gradient and Hessian w.r.t. the log-parameters, analytically.

        With D = log(exp(A3) + exp(A4)): grad D = w3 grad A3 + w4 grad A4 and
        hess D = w3 hess A3 + w4 hess A4 + w3 w4 (grad A3 - grad A4)(grad A3 - grad A4)^T.
        """
        with np.errstate(over="ignore"):  # as in _plain_total
            r, alpha, a, b = theta = np.exp(lp)
        k = self._k
        x, ux = d.x, d.ux
        wx = np.bincount(d.ix, weights=w, minlength=ux.size)
        W = wx.sum()
        tri = lambda v: polygamma(1, v)  # noqa: E731
        lbx = gammaln(b + ux + k) - gammaln(a + b + ux + k)
        tot = wx @ (gammaln(r + ux) - gammaln(r) + lbx) + W * (r * np.log(alpha) + gammaln(a + b) - gammaln(b))
        psi_abx = digamma(a + b + ux + k)
        g = np.array(
            [
                wx @ digamma(r + ux) - W * digamma(r) + W * np.log(alpha),
                W * r / alpha,
                W * digamma(a + b) - wx @ psi_abx,
                W * (digamma(a + b) - digamma(b)) + wx @ (digamma(b + ux + k) - psi_abx),
            ]
        )
        t_abx = wx @ tri(a + b + ux + k)
        H = np.zeros((4, 4))
        H[0, 0] = wx @ tri(r + ux) - W * tri(r)
        H[0, 1] = W / alpha
        H[1, 1] = -W * r / alpha**2
        H[2, 2] = W * tri(a + b) - t_abx
        H[2, 3] = W * tri(a + b) - t_abx
        H[3, 3] = W * (tri(a + b) - tri(b)) + wx @ (tri(b + ux + k) - tri(a + b + ux + k))

        inv_aT = (1.0 / (alpha + d.uT))[d.iT]
        inv_atx = (1.0 / (alpha + d.utx))[d.itx]
        log_aT = np.log(alpha + d.uT)[d.iT]
        log_atx = np.log(alpha + d.utx)[d.itx]
        rx = r + x
        # 1/(b+x+k-1); zero where x + k = 0 (BG/NBD, x = 0: that term has weight w4 = 0)
        inv_drop_u = np.where(ux + k >= 1, 1.0 / np.maximum(b + ux + k - 1.0, 1e-300), 0.0)
        A3 = -rx * log_aT
        with np.errstate(divide="ignore"):
            A4 = (np.log(a) + np.log(inv_drop_u))[d.ix] - rx * log_atx
        if k == 0:
            A4 = np.where(d.pos, A4, -np.inf)
        top = np.maximum(A3, A4)
        e3, e4 = np.exp(A3 - top), np.exp(A4 - top)
        s34 = e3 + e4
        tot += w @ (top + np.log(s34))
        w3 = e3 / s34
        w4 = 1.0 - w3
        ww3, ww4 = w * w3, w * w4
        ww4_x = np.bincount(d.ix, weights=ww4, minlength=ux.size)  # per-x sums of w * w4
        rinv_aT, rinv_atx = rx * inv_aT, rx * inv_atx
        # gradient: w3 grad A3 + w4 grad A4
        g[0] -= ww3 @ log_aT + ww4 @ log_atx
        g[1] -= ww3 @ rinv_aT + ww4 @ rinv_atx
        sw4 = ww4_x.sum()
        g[2] += sw4 / a
        g[3] -= ww4_x @ inv_drop_u
        # w3 hess A3 + w4 hess A4
        H[0, 1] -= ww3 @ inv_aT + ww4 @ inv_atx
        H[1, 1] += ww3 @ (rinv_aT * inv_aT) + ww4 @ (rinv_atx * inv_atx)
        H[2, 2] -= sw4 / a**2
        H[3, 3] += ww4_x @ inv_drop_u**2
        # w3 w4 (gA3 - gA4)(gA3 - gA4)^T with gA3 - gA4 = (d0, d1, -1/a, 1/drop(x))
        c = ww3 * w4
        d0 = log_atx - log_aT
        d1 = rinv_atx - rinv_aT
        cd0, cd1 = c * d0, c * d1
        c_x = np.bincount(d.ix, weights=c, minlength=ux.size)
        sc, scd0, scd1 = c_x.sum(), cd0.sum(), cd1.sum()
        H[0, 0] += cd0 @ d0
        H[0, 1] += cd0 @ d1
        H[1, 1] += cd1 @ d1
        H[0, 2] -= scd0 / a
        H[1, 2] -= scd1 / a
        H[2, 2] += sc / a**2
        H[0, 3] += np.bincount(d.ix, weights=cd0, minlength=ux.size) @ inv_drop_u
        H[1, 3] += np.bincount(d.ix, weights=cd1, minlength=ux.size) @ inv_drop_u
        H[2, 3] -= (c_x @ inv_drop_u) / a
        H[3, 3] += c_x @ inv_drop_u**2
        H = np.triu(H) + np.triu(H, 1).T
        # to log-parameters: d/dphi = theta d/dtheta
        H_phi = theta[:, None] * H * theta[None, :] + np.diag(theta * g)
        return float(tot), theta * g, H_phi

    # -- predictions ------------------------------------------------------------------
    def _log_odds_dead(self, x, tx, T, P=None):
        """log of P(dead)/P(alive) given the history."""
        r, alpha, a, b = self._p(P)
        k = self._k
        lo = (
            np.log(a) - np.log(np.maximum(b + x + k - 1.0, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        )
        if k == 0:
            lo = np.where(x > 0, lo, -np.inf)
        return lo

    def _p_alive(self, x, tx, T, P=None):
        return expit(-self._log_odds_dead(x, tx, T, P))

    def _expected_if_alive(self, t, x, T, P=None):
        """E[purchases in (T, T + t] | alive at T, x, T]."""
        r, alpha, a, b = self._p(P)
        k = self._k
        t = np.asarray(t, float)
        z = t / (alpha + T + t)
        # Euler's transformation keeps 2F1 bounded for large x:
        # (1-z)^(r+x) 2F1(r+x, b+x+k; a+b+x+k-1; z) = (1-z)^(a-1) 2F1(a+b+k-1-r, a-1; a+b+x+k-1; z)
        with np.errstate(over="ignore", invalid="ignore"):  # extreme parameters: a non-finite value, flagged by callers
            tail = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b + k - 1.0 - r, a - 1.0, a + b + x + k - 1.0, z)
        return (a + b + x + k - 1.0) / (a - 1.0) * (1.0 - tail)

    def _survival_if_alive(self, t, x, T, P=None):
        """P(alive at T + t | alive at T, x, T). Given alive at T, lambda ~ Gamma(r+x, alpha+T)
        and p ~ Beta(a, b+x+k) independently, and the time to dropout is Exponential(lambda p),
        so E[exp(-lambda p t)] = 2F1(r+x, a; a+b+x+k; -z), z = t / (alpha+T); Pfaff's
        transformation puts the argument in [0, 1)."""
        r, alpha, a, b = self._p(P)
        k = self._k
        t = np.asarray(t, float)
        w = t / (alpha + T + t)
        return np.clip(np.exp(a * np.log1p(-w)) * hyp2f1(a + b + k - r, a, a + b + x + k, w), 0.0, 1.0)

    def expected_purchases(self, t) -> np.ndarray | float:
        """Expected repeat purchases of a new customer in their first ``t`` periods (with
        covariates: a customer at the covariates' means)."""
        t = np.asarray(t, float)
        z = np.zeros_like(t)
        out = self._conditional_expected(t, z, z, z)
        return float(out) if out.ndim == 0 else out

    def _prob_n(self, n, t, x, tx, T, P=None):
        """P(exactly ``n`` purchases in the next ``t`` periods | history): the first term of
        :meth:`_prob_n_sequence` from ``n``."""
        return next(self._prob_n_sequence(t, x, tx, T, P, start=n))

    def _prob_n_sequence(self, t, x, tx, T, P=None, start: int = 0):
        """P(start purchases), P(start + 1), ... in the next ``t`` periods, in turn: given alive,
        the count is negative binomial and the customer may drop out after each purchase; the
        sum over j < n of the alive count's terms is carried from one n to the next, so a count
        distribution up to n costs n terms, not n^2 / 2 (the terms before ``start`` add only
        to that sum)."""
        r, alpha, a, b = self._p(P)
        bb = b + x + self._k
        lq = np.log(alpha + T) - np.log(alpha + T + t)
        lz = (
            np.log(t) - np.log(alpha + T + t)
            if np.all(t > 0)
            else np.log(np.maximum(t, 1e-300)) - np.log(alpha + T + t)
        )

        def log_nb(j):
            return gammaln(r + x + j) - gammaln(r + x) - gammaln(j + 1.0) + (r + x) * lq + j * lz

        alive = expit(-self._log_odds_dead(x, tx, T, P))
        cum, n = 0, 0
        while n < start:
            cum = cum + np.exp(log_nb(n))
            n += 1
        while True:
            first = np.exp(betaln(a, bb + n) - betaln(a, bb) + log_nb(n))
            if n > 0:
                second = np.exp(betaln(a + 1.0, bb + n - 1.0) - betaln(a, bb)) * np.clip(1.0 - cum, 0.0, 1.0)
            else:
                second = 0.0
            yield alive * (first + second) + (1.0 - alive) * (n == 0)
            cum = cum + np.exp(log_nb(n))
            n += 1


class BetaGeo(_BetaGeoFamily):
    """BG/NBD: Poisson purchases at rate lambda ~ Gamma(r, alpha) while alive; after each
    repeat purchase the customer drops out with probability p ~ Beta(a, b).

    Parameters
    ----------
    purchase_covariates, dropout_covariates : lists of RFM-table columns
        Time-invariant customer attributes shifting ``alpha`` (purchases) and ``a``, ``b``
        (dropout), see :class:`_BetaGeoFamily`; coefficients ``purchase_<col>``,
        ``dropout_a_<col>``, ``dropout_b_<col>`` in ``params_`` and ``summary``. Empty: the
        plain model.
    penalizer : float
        L2 penalty on the log-parameters (objective: mean negative log-likelihood +
        ``penalizer * sum(log(theta)**2)``). 0 gives the maximum-likelihood estimate.

    Attributes
    ----------
    params_ : dict ``r, alpha, a, b``;  log_likelihood_, aic_, bic_, covariance_ (log scale),
    summary (DataFrame), n_users_.
    """

    _k = 0


class ModifiedBetaGeo(_BetaGeoFamily):
    """MBG/NBD: as BG/NBD, but the drop-out coin is also tossed at time 0 (after the first
    purchase), so customers without repeat purchases can be dead."""

    _k = 1


class GammaGamma(MLEModel):
    """Gamma-Gamma spend model: each transaction's value ~ Gamma(p, nu), nu ~ Gamma(q, v).

    Fitted on customers with at least one repeat purchase (``frequency > 0``) and a positive
    mean repeat spend (``monetary > 0``); customers whose repeat purchases are all worth 0 are
    left out of the fit (counted in ``n_excluded_``) and still get a prediction.

    ``covariates``: columns of the RFM table (customer attributes such as the first purchase's
    amount) that shift each customer's scale, ``v_i = v * exp(sum_c coef_c * z_ic)`` with ``z``
    the covariates standardised on the fitting rows (means and scales in ``covariate_means_``,
    ``covariate_scales_``); the coefficients (``coef_<column>``, real) come with standard errors
    in ``summary``. No covariates: the plain model, unchanged.
    """

    param_names = ("p", "q", "v")

    def __init__(self, covariates=(), penalizer: float = 0.0, tol: float = 1e-10, maxiter: int = 2000):
        super().__init__(penalizer=penalizer, tol=tol, maxiter=maxiter)
        self.covariates = covariates

    def _design(self, rfm: pd.DataFrame, rows=None, fitting: bool = False) -> np.ndarray:
        # models pickled before covariates existed lack the attribute
        return _covariates.design(self, rfm, _covariates.names(getattr(self, "covariates", ())), rows, fitting)

    def fit(self, rfm: pd.DataFrame, weights=None):
        validate_rfm(rfm, columns=("frequency", "monetary"))
        x = rfm["frequency"].to_numpy(float)
        m = rfm["monetary"].to_numpy(float)
        use = (x > 0) & (m > 0)
        self.n_excluded_ = int(((x > 0) & (m <= 0)).sum())
        if use.sum() < 3:
            raise ValueError(
                f"GammaGamma needs customers with repeat purchases and positive "
                f"spend; only {int(use.sum())} rows qualify"
            )
        cols = list(getattr(self, "covariates", ()) or ())  # models pickled before covariates lack it
        real = tuple(f"coef_{c}" for c in cols)
        Z = self._design(rfm, use, fitting=True)
        if not cols:  # distinct (x, m) rows with counts
            (ux, um), w, codes = unique_rows(x[use], m[use])
            if weights is not None:
                w = np.bincount(codes, weights=np.asarray(weights, float)[use], minlength=len(ux))
            Z = np.zeros((len(ux), 0))
        else:
            ux, um = x[use], m[use]
            w = np.ones(len(ux)) if weights is None else np.asarray(weights, float)[use]
        d = {"x": ux, "m": um, "logm": np.log(um), "logx": np.log(ux), "Z": Z}
        return self._fit_prepared(d, w, int(use.sum()), names=("p", "q", "v", *real), real=real)

    def _initial(self, d):
        return np.r_[np.log([1.0, 1.0, max(float(np.mean(d["m"])), 1e-3)]), np.zeros(d["Z"].shape[1])]

    def _loglik_grad(self, lp, d):
        p, q, v = np.exp(lp[:3])
        x, m, Z = d["x"], d["m"], d["Z"]
        log_vi = np.log(v) + (Z @ lp[3:] if Z.shape[1] else 0.0)
        vi = np.exp(log_vi)
        px = p * x
        xm_v = x * m + vi
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * log_vi
            + (px - 1) * d["logm"]
            + px * d["logx"]
            - (px + q) * np.log(xm_v)
        )
        psi_pxq = digamma(px + q)
        dp = x * (psi_pxq - digamma(px) + d["logm"] + d["logx"] - np.log(xm_v))
        dq = psi_pxq - digamma(q) + log_vi - np.log(xm_v)
        dlogv = (q / vi - (px + q) / xm_v) * vi * np.ones_like(x)  # d ll / d log v_i
        return ll, np.column_stack([dp * p, dq * q, dlogv, dlogv[:, None] * Z])

    def _scales(self, rfm: pd.DataFrame) -> np.ndarray:
        v = self.params_["v"]
        cols = list(getattr(self, "covariates", ()) or ())  # models pickled before covariates lack it
        if not cols:
            return np.full(len(rfm), v)
        coef = np.array([self.params_[f"coef_{c}"] for c in cols])
        return v * np.exp(self._design(rfm) @ coef)

    def conditional_expected_spend(self, rfm: pd.DataFrame) -> pd.Series:
        """E[mean spend per transaction | frequency, monetary (and covariates)], per user (the
        prior mean at x = 0)."""
        self._check_fitted()
        validate_rfm(rfm, columns=("frequency", "monetary"))
        p, q = self.params_["p"], self.params_["q"]
        x = rfm["frequency"].to_numpy(float)
        m = rfm["monetary"].to_numpy(float)
        if q <= 1:
            raise ValueError(f"GammaGamma: q = {q:.3g} <= 1, the expected spend is infinite")
        out = (p * (self._scales(rfm) + x * m)) / (p * x + q - 1.0)
        return pd.Series(out, index=rfm.index, name="expected_spend")

    def expected_spend(self) -> float:
        """Population mean spend per transaction, p v / (q - 1) (at the covariates' means)."""
        self._check_fitted()
        p, q, v = (self.params_[k] for k in ("p", "q", "v"))
        return p * v / (q - 1.0) if q > 1 else float("inf")


class ShiftedBetaGeometric(MLEModel):
    """sBG: each period a customer renews with probability 1 - theta, theta ~ Beta(alpha, beta).

    ``fit(alive)`` takes the number of customers alive at the start of each period, first
    element = cohort size (e.g. ``[1000, 631, 468, 382, 326, 289, 262, 241]``). Several
    cohorts: pass a list of such sequences.
    """

    param_names = ("alpha", "beta")

    def fit(self, alive, weights=None):
        cohorts = alive if (len(alive) and np.ndim(alive[0]) == 1) else [alive]
        rows = []
        for c in cohorts:
            n = np.asarray(c, float)
            if n.ndim != 1 or n.size < 2:
                raise ValueError(
                    "alive must hold at least two counts: the cohort size, then "
                    "the number still alive at the start of each later period"
                )
            if np.any(~np.isfinite(n)) or np.any(n < 0) or np.any(np.diff(n) > 0):
                raise ValueError(f"alive counts must be finite, non-negative and non-increasing: {c}")
            lost = -np.diff(n)
            for t, lo in enumerate(lost, start=1):
                if lo > 0:
                    rows.append((t, 0.0, lo))  # churned in period t
            rows.append((len(lost), 1.0, n[-1]))  # still alive after the last period
        arr = np.array(rows, float)
        d = {"t": arr[:, 0], "survived": arr[:, 1] == 1.0}
        self.cohorts_ = [list(map(float, c)) for c in cohorts]
        return self._fit_prepared(d, arr[:, 2], int(sum(c[0] for c in cohorts)))

    def _initial(self, d):
        return np.log([1.0, 1.0])

    def _loglik_grad(self, lp, d):
        al, be = np.exp(lp)
        t, surv = d["t"], d["survived"]
        # P(T = t) = B(al+1, be+t-1)/B(al, be);  S(t) = B(al, be+t)/B(al, be)
        ll = np.where(surv, betaln(al, be + t), betaln(al + 1.0, be + t - 1.0)) - betaln(al, be)
        psi_ab = digamma(al + be)
        d_al = np.where(surv, digamma(al) - digamma(al + be + t), digamma(al + 1.0) - digamma(al + be + t)) - (
            digamma(al) - psi_ab
        )
        d_be = np.where(surv, digamma(be + t) - digamma(al + be + t), digamma(be + t - 1.0) - digamma(al + be + t)) - (
            digamma(be) - psi_ab
        )
        return ll, np.column_stack([d_al * al, d_be * be])

    def survival(self, t) -> np.ndarray:
        """Share of the cohort alive at the start of period ``t`` (t = 0 gives 1)."""
        self._check_fitted()
        al, be = self.params_["alpha"], self.params_["beta"]
        t = np.asarray(t, float)
        return np.exp(betaln(al, be + t) - betaln(al, be))

    def retention(self, t) -> np.ndarray:
        """Retention rate in period ``t`` >= 1: S(t) / S(t-1) = (beta + t - 1)/(alpha + beta + t - 1)."""
        self._check_fitted()
        al, be = self.params_["alpha"], self.params_["beta"]
        t = np.asarray(t, float)
        if np.any(t < 1):
            raise ValueError("retention is defined for periods t >= 1")
        return (be + t - 1.0) / (al + be + t - 1.0)

    def derl(self, discount_rate: float, renewals: int = 0) -> float:
        """Discounted expected residual lifetime (in periods) of a customer who has just paid
        for the period after ``renewals`` renewals (Fader & Hardie 2010):
        ``(beta+n-1)/(alpha+beta+n-1) * 2F1(1, beta+n; alpha+beta+n; 1/(1+d))`` with n = renewals + 1,
        counting the next payment onwards. Multiply by the per-period margin for a value."""
        self._check_fitted()
        if discount_rate <= 0:
            raise ValueError(
                "discount_rate must be > 0 (the undiscounted residual lifetime of sBG is infinite for alpha <= 1)"
            )
        al, be = self.params_["alpha"], self.params_["beta"]
        n = renewals + 1
        return float((be + n - 1) / (al + be + n - 1) * hyp2f1(1.0, be + n, al + be + n, 1.0 / (1.0 + discount_rate)))
