"""Maximum-likelihood machinery shared by the BTYD models.

Parameters are positive and optimised in log space, except covariate coefficients (names in
``real_params_``), which are real and optimised as they are; ``log_params_`` holds the
optimiser's vector either way. Subclasses supply the per-row
log-likelihood and its analytic gradient with respect to the log-parameters; the engine
minimises ``-sum(w * ll) / sum(w) + penalizer * sum(log(theta)**2)`` with L-BFGS-B, then takes
the Hessian (central differences of the analytic gradient) for standard errors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import optimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ..core.errors import ConvergenceError


class _StopEarly(Exception):
    """Raised inside the optimiser when an iterate is far along an unidentified limit."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ModelWarning(UserWarning):
    """A fit that completed but whose results need care; the message says the cause and the fix."""


#: the one "not fitted" error of every model: scikit-learn's (a ValueError and an AttributeError)
__all__ = ["ConvergenceError", "ModelWarning", "NotFittedError", "MLEModel", "unique_rows", "unique_rows_with_columns"]

NOT_FITTED = "this %(name)s is not fitted yet; call fit() first"

#: a fit whose model lets less than this share of customers drop out over the data's span is at
#: the limit without dropout (MLEModel._no_dropout)
NO_DROPOUT = 1e-6


class MLEModel(BaseEstimator):
    """Base class, a scikit-learn estimator: hyper-parameters in ``__init__`` (``get_params``,
    ``sklearn.clone``), ``fit`` returns self, fitted attributes end in ``_`` (``check_is_fitted``).

    ``param_names`` are the model's own parameters; a fit adds ``param_names_`` (those plus the
    covariate coefficients, the index of ``summary``) and ``real_params_`` (the coefficients,
    optimised as they are, not in log space)."""

    param_names: ClassVar[tuple[str, ...]] = ()
    _advice = (
        "try penalizer=0.001 (or larger), check that the data are in sensible time units "
        "(weeks rather than days for multi-year data), or look for extreme rows"
    )

    #: upper bounds on log-parameters where the model stops being identified (see the model)
    _upper_bounds: ClassVar[dict[str, float]] = {}

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-10, maxiter: int = 2000):
        self.penalizer = penalizer
        self.tol = tol
        self.maxiter = maxiter

    def _at_bound_message(self, names, lp, d, w) -> str:
        return f"{type(self).__name__}: {names} reached the bound of its identified range. {self._advice}."

    def _dropout_share(self, lp, d) -> float | None:
        """The share of customers a model with the log-parameters ``lp`` lets drop out over the
        data's span (None: a model without dropout). Below :data:`NO_DROPOUT` the fit is at the
        model's limit without dropout, which every BTYD model refuses alike (:meth:`_no_dropout`)."""
        return None

    def _unidentified(self, lp, d, w) -> str | None:
        """The refusal when the iterate ``lp`` is far along a ridge where the model is not
        identified (see the model), else None."""
        return None

    def _no_dropout(self, detail: str) -> ConvergenceError:
        """The one refusal of every BTYD model at its limit without dropout (the NBD: each customer
        buys at a gamma-distributed rate forever), where the dropout parameters run off to 0 or
        infinity and are not identified."""
        return ConvergenceError(
            f"{type(self).__name__}: no dropout in these data ({detail}): the fit runs to the model's limit "
            f"without dropout, where its dropout parameters are not identified. Refit with penalizer=0.001 "
            f"(models.fit_candidates does), calibrate over a longer span, or choose a later cut-off."
        )

    # -- to implement ---------------------------------------------------------------
    def _prepare(self, data):  # -> (prepared data, weights, n_users)
        raise NotImplementedError

    def _loglik_grad(self, log_params: np.ndarray, d) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood (n,) and its gradient w.r.t. log-parameters (n, k)."""
        raise NotImplementedError

    def _initial(self, d) -> np.ndarray:
        return np.zeros(len(self.param_names_))

    def _analytic_hessian(self, d) -> bool:
        """Whether ``_total_hess`` (value, gradient and Hessian in one pass) applies to ``d``."""
        return hasattr(self, "_total_hess")

    def _total(self, lp, d, w) -> tuple[float, np.ndarray]:
        """Weighted total log-likelihood and its gradient; models may override it with a
        cheaper aggregation (terms that depend on one column summed per distinct value)."""
        ll, g = self._loglik_grad(lp, d)
        return float(w @ ll), w @ g

    # -- engine -----------------------------------------------------------------------
    def _objective(self, lp, d, w, wsum):
        tot, g = self._total(lp, d, w)
        f = -tot / wsum + self.penalizer * (lp @ lp)
        grad = -g / wsum + 2.0 * self.penalizer * lp
        if not np.isfinite(f):
            return np.inf, np.zeros_like(lp)
        return f, grad

    def _fit_prepared(self, d, w, n_users: int, x0=None, names=None, real=()):
        """Fit on prepared data; ``names`` (default ``param_names``) and ``real`` (covariate
        coefficients) name the optimiser's vector."""
        self.param_names_ = tuple(names) if names is not None else type(self).param_names
        self.real_params_ = tuple(real)
        if self.penalizer < 0:
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer}")
        wsum = float(w.sum())
        x0 = self._initial(d) if x0 is None else np.asarray(x0, float)
        with threadpool_limits(1):  # OpenBLAS threads only slow small vectorised loops
            res = self._newton(d, w, wsum, x0) if self._analytic_hessian(d) else None
            lower = []
            if res is None:
                bounds = self._bounds(d)

                def heading_out(xk):
                    # the paths to a model's unidentified limits cost seconds per step in some models
                    # (2F1s with extreme parameters): refuse as soon as an iterate is far along one
                    share = self._dropout_share(xk, d)
                    if share is not None and share < NO_DROPOUT * 0.1:
                        raise _StopEarly(
                            str(
                                self._no_dropout(
                                    f"{share:.1e} of the customers would drop out over the data's span, and falling"
                                )
                            )
                        )
                    message = self._unidentified(xk, d, w)
                    if message:
                        raise _StopEarly(message)

                try:
                    res = optimize.minimize(
                        self._objective,
                        x0,
                        args=(d, w, wsum),
                        jac=True,
                        method="L-BFGS-B",
                        bounds=bounds,
                        callback=heading_out,
                        options={"maxiter": self.maxiter, "ftol": self.tol * 1e-3, "gtol": 1e-9, "maxcor": 30},
                    )
                except _StopEarly as stop:
                    raise ConvergenceError(stop.message) from None
                at_bound = [
                    n
                    for n, v, (_, hi) in zip(self.param_names_, res.x, bounds, strict=True)
                    if hi is not None and v >= hi - 1e-6
                ]
                if at_bound:
                    raise ConvergenceError(self._at_bound_message(at_bound, res.x, d, w))
                lower = [
                    n
                    for n, v, (lo, _) in zip(self.param_names_, res.x, bounds, strict=True)
                    if lo is not None and v <= lo + 1e-6
                ]
            if np.max(np.abs(res.jac)) > 1e-7 and not lower:  # (mean log-likelihood per user)
                # polish with BFGS from the L-BFGS-B point when its gradient is not yet tiny
                res2 = optimize.minimize(
                    self._objective,
                    res.x,
                    args=(d, w, wsum),
                    jac=True,
                    method="BFGS",
                    options={"gtol": 1e-8, "maxiter": 200},
                )
                if np.isfinite(res2.fun) and res2.fun <= res.fun:
                    res = res2
            lp = res.x
            free = [n not in lower for n in self.param_names_]  # at a lower bound the slope points out
            grad_norm = float(np.max(np.abs(res.jac[free])))  # the optimiser's last gradient
            if not np.all(np.isfinite(lp)) or not np.isfinite(res.fun) or grad_norm > 1e-4:
                raise ConvergenceError(
                    f"{type(self).__name__}: the fit did not converge ({res.message}; "
                    f"max |gradient| = {grad_norm:.2e}, log-parameters {np.round(lp, 3).tolist()}). "
                    f"{self._advice}."
                )
            share = self._dropout_share(lp, d)
            if share is not None and share < NO_DROPOUT:
                raise self._no_dropout(f"{share:.1e} of the customers would drop out over the data's span")
            runaway = [
                n
                for n, v in zip(self.param_names_, lp, strict=True)
                if abs(v) > 16 and n not in self.real_params_ and n not in lower
            ]
            if runaway:
                raise ConvergenceError(
                    f"{type(self).__name__}: parameter(s) {runaway} ran off towards 0 or infinity "
                    f"({ {n: float(v) for n, v in zip(self.param_names_, self._natural(lp), strict=True)} }): the data "
                    f"do not identify the model (too few users, or no repeat purchases?). "
                    f"{self._advice}."
                )
            at_opt = getattr(res, "at_optimum", None)
            if at_opt is not None and np.array_equal(lp, res.x):
                hess = -at_opt[2] + 2 * self.penalizer * w.sum() * np.eye(lp.size)
                self._ll_at_optimum = at_opt[0]
            else:
                hess = self._hessian(lp, d, w)
                self._ll_at_optimum = None
        self.at_lower_bound_ = tuple(lower)
        self._set_fitted(lp, d, w, n_users, hess, res)
        return self

    def _bounds(self, d) -> list:
        """(lower, upper) bounds of the optimiser's vector (None: unbounded); a parameter that
        ends at its lower bound is listed in ``at_lower_bound_`` (see the model)."""
        return [(None, self._upper_bounds.get(n)) for n in self.param_names_]

    @staticmethod
    def _raw_cache(cache, x):
        return cache[x.tobytes()][3]

    def _newton(self, d, w, wsum, x0):
        """Trust-region Newton with the model's analytic Hessian: a handful of passes over
        the data instead of the ~20 a quasi-Newton method needs. None if it fails."""
        cache = {}

        def parts(lp):
            key = lp.tobytes()
            if key not in cache:
                cache.clear()
                tot, g, H = self._total_hess(lp, d, w)
                pen = self.penalizer
                cache[key] = (
                    -tot / wsum + pen * (lp @ lp),
                    -g / wsum + 2 * pen * lp,
                    -H / wsum + 2 * pen * np.eye(lp.size),
                    (tot, g, H),
                )
            return cache[key]

        if len(w) > 50_000 and hasattr(d, "subset"):
            # start from the optimum on every k-th distinct history: near the full optimum,
            # where Newton converges in a few full passes
            sub = d.subset(slice(None, None, len(w) // 20_000))
            warm = self._newton(sub, sub.w, float(sub.w.sum()), x0)
            if warm is not None and np.max(np.abs(warm.x)) < 16:
                x0 = warm.x
        try:
            res = optimize.minimize(
                lambda p: parts(p)[:2],
                x0,
                jac=True,
                hess=lambda p: parts(p)[2],
                method="trust-exact",
                options={"gtol": 1e-8, "maxiter": 200},
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            return None
        if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun)):
            return None
        last = self._total_hess(res.x, d, w) if res.x.tobytes() not in cache else None
        res.at_optimum = last or self._raw_cache(cache, res.x)
        return res

    def _hessian(self, lp, d, w) -> np.ndarray:
        """Hessian of the total negative log-likelihood (penalty included) in log space."""
        if self._analytic_hessian(d):
            return -self._total_hess(lp, d, w)[2] + 2 * self.penalizer * w.sum() * np.eye(lp.size)
        k = lp.size
        h = np.zeros((k, k))
        eps = 1e-6

        def grad(p):
            return -self._total(p, d, w)[1] + 2 * self.penalizer * p * w.sum()

        g0 = grad(lp)
        for j in range(k):  # forward differences of the analytic gradient (rel. error ~1e-6)
            e = np.zeros(k)
            e[j] = eps
            h[:, j] = (grad(lp + e) - g0) / eps
        return 0.5 * (h + h.T)

    def _set_fitted(self, lp, d, w, n_users, hess, res):
        self.log_params_ = lp
        self.params_ = dict(zip(self.param_names_, self._natural(lp).tolist(), strict=True))
        known = getattr(self, "_ll_at_optimum", None)
        self.log_likelihood_ = float(known if known is not None else self._total(lp, d, w)[0])
        self.__dict__.pop("_ll_at_optimum", None)
        self.n_users_ = int(n_users)
        k = lp.size
        self.aic_ = 2 * k - 2 * self.log_likelihood_
        self.bic_ = k * np.log(max(n_users, 1)) - 2 * self.log_likelihood_
        try:
            cov = np.linalg.inv(hess)
            if np.any(np.diag(cov) <= 0):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            cov = np.full((k, k), np.nan)
        self.covariance_ = pd.DataFrame(cov, index=self.param_names_, columns=self.param_names_)
        self.n_iterations_ = int(getattr(res, "nit", 0))

    # -- results ----------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "params_")

    def _check_fitted(self):
        check_is_fitted(self, msg=NOT_FITTED)

    def __setstate__(self, state):
        # models pickled before 2026-12-04 (registered champions) kept the fitted names without
        # the trailing underscore
        if "params_" in state and "param_names_" not in state:
            state["param_names_"] = tuple(state.pop("param_names", type(self).param_names))
            state["real_params_"] = tuple(state.pop("real_params", ()))
        super().__setstate__(state)

    def _real_mask(self) -> np.ndarray:
        return np.array([n in self.real_params_ for n in self.param_names_], bool)

    def _natural(self, lp) -> np.ndarray:
        """Optimiser vector -> parameters: exp for the positive ones, as is for the real ones."""
        lp = np.asarray(lp, float)
        return np.where(self._real_mask(), lp, np.exp(np.minimum(lp, 700.0)))

    @property
    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors (delta method) and 95% intervals (on the log scale for
        positive parameters, on their own scale for covariate coefficients)."""
        self._check_fitted()
        real = self._real_mask()
        lp = self.log_params_
        se = np.sqrt(np.diag(self.covariance_.to_numpy()))
        z = 1.959963984540054
        est = self._natural(lp)
        return pd.DataFrame(
            {
                "estimate": est,
                "std_error": np.where(real, se, est * se),
                "lower_95": self._natural(lp - z * se),
                "upper_95": self._natural(lp + z * se),
            },
            index=pd.Index(self.param_names_, name="param"),
        )

    def sample_params(self, n: int, seed: int | None = 0) -> pd.DataFrame:
        """Draws from the asymptotic distribution of the estimates (normal in the optimiser's
        coordinates: log-normal for positive parameters)."""
        self._check_fitted()
        cov = self.covariance_.to_numpy()
        if not np.all(np.isfinite(cov)):
            raise ValueError(
                f"{type(self).__name__}: the Hessian is singular; no parameter "
                f"uncertainty to sample (refit with a penalizer)"
            )
        rng = np.random.default_rng(seed)
        draws = rng.multivariate_normal(self.log_params_, cov, size=int(n), method="eigh")
        return pd.DataFrame(self._natural(draws), columns=list(self.param_names_))

    def _with_params(self, params) -> MLEModel:
        """A copy of this model with other parameter values (for interval propagation)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.param_names_ = getattr(self, "param_names_", type(self).param_names)
        clone.real_params_ = getattr(self, "real_params_", ())
        clone.params_ = {k: float(params[k]) for k in clone.param_names_}
        clone.log_params_ = np.array([v if k in clone.real_params_ else np.log(v) for k, v in clone.params_.items()])
        return clone

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            p = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"<{type(self).__name__}: fitted on {self.n_users_:,} users, {p}>"
        return f"{type(self).__name__}(penalizer={self.penalizer})"


def unique_rows(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the given columns, their counts, and each input row's distinct index.

    Hash-factorises each column, combines the codes into one integer key and factorises that:
    linear time, ~10x faster than factorising a MultiIndex on a million rows.
    """
    arr, counts, row_codes, _ = unique_rows_with_columns(*cols)
    return arr, counts, row_codes


def unique_rows_with_columns(*cols: np.ndarray):
    """:func:`unique_rows` plus, per column, (distinct values, index of each distinct row into
    them): the per-value caches of the likelihoods.

    One pass: the columns' bit patterns are mixed into a 64-bit key that is hash-factorised
    once; every row is then checked against its group's representative, so a key collision
    can never merge two different rows (it falls back to exact per-column factorisation).
    The per-column caches are built on the (much fewer) distinct rows.
    """
    arrays = [np.ascontiguousarray(c, dtype=float) for c in cols]
    n = len(arrays[0])
    key = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, c in enumerate(arrays):
            bits = (c + 0.0).view(np.uint64)  # + 0.0 folds -0.0 into 0.0
            key = (key ^ (bits + np.uint64(0x9E3779B97F4A7C15 + i))) * np.uint64(0xBF58476D1CE4E5B9)
            key ^= key >> np.uint64(31)
    row_codes, uniq_keys = pd.factorize(key.view(np.int64), sort=False)
    first = np.empty(len(uniq_keys), dtype=np.int64)
    first[row_codes] = np.arange(n)  # one representative row per key (the last one)
    arr = [c[first] for c in arrays]
    if not all(np.array_equal(c, a[row_codes]) for c, a in zip(arrays, arr, strict=True)):
        return _unique_rows_exact(arrays)
    per_col = []
    for a in arr:
        ai = a.astype(np.int64)
        if len(a) and ai.min() >= 0 and ai.max() < 100_000 and np.array_equal(ai, a):
            # small whole numbers (frequency): the value is its own index, no hashing needed
            per_col.append((np.arange(ai.max() + 1, dtype=float), ai))
            continue
        codes, uniq = pd.factorize(a, sort=False)
        per_col.append((np.asarray(uniq, dtype=float), codes))
    counts = np.bincount(row_codes, minlength=len(uniq_keys)).astype(float)
    return arr, counts, row_codes, per_col


def _unique_rows_exact(arrays):
    key = np.zeros(len(arrays[0]), dtype=np.int64)
    uniqs = []
    for c in arrays:
        codes, uniq = pd.factorize(c, sort=False)
        key = key * len(uniq) + codes
        uniqs.append((codes, np.asarray(uniq, dtype=float)))
    row_codes, uniq_keys = pd.factorize(key, sort=False)
    first = np.empty(len(uniq_keys), dtype=np.int64)
    first[row_codes] = np.arange(len(row_codes))
    per_col = [(u, c[first]) for c, u in uniqs]
    arr = [u[i] for u, i in per_col]
    counts = np.bincount(row_codes, minlength=len(uniq_keys)).astype(float)
    return arr, counts, row_codes, per_col
