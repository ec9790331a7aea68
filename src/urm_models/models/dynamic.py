"""Pareto/NBD with time-varying covariates (Bachmann, Meierer & Näf 2021, "The role of
time-varying contextual factors in latent attrition models for customer base analysis",
Marketing Science 40(4)), by maximum likelihood.

Covariates are piecewise constant over calendar periods of one ``freq`` unit (a weekly table
for ``freq="W"``): per customer (``user_id, period_start, <columns>``: marketing contacts,
prices) or shared by everyone (``period_start, <columns>``: a high-season flag, holidays).
While alive a customer buys at rate ``lambda exp(g1 . z1(t))`` and drops out at rate
``mu exp(g2 . z2(t))``, lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta). With the exposures
``A(t) = int_0^t exp(g1 . z1)`` and ``B(t) = int_0^t exp(g2 . z2)`` (piecewise linear, from the
customer's first purchase), ``x`` repeat purchases at ``t_1..t_x`` and age ``T``:

    L = Gamma(r+x)/Gamma(r) alpha^r exp(g1 . sum_j z1(t_j)) * [ (alpha + A(T))^-(r+x) (beta/(beta + B(T)))^s
        + int_{t_x}^T (alpha + A(tau))^-(r+x) s beta^s exp(g2 . z2(tau)) (beta + B(tau))^-(s+1) dtau ]

The integral is summed over the covariate periods between ``t_x`` and ``T`` with Gauss-Legendre
(``nodes`` per period, where the integrand is smooth), the gradient analytically under it. With
covariates constant in time it is the static-covariate Pareto/NBD (``alpha_i = alpha exp(-g1 z)``,
``beta_i = beta exp(-g2 z)``), with none the plain one (both to 1e-9, tested). Given alive at T,
lambda ~ Gamma(r+x, alpha + A(T)) and mu ~ Gamma(s, beta + B(T)): forecasts integrate the future
covariates (the calendar is known ahead; a customer's future contacts are a plan).
Coefficients are per unit of each covariate (not standardised): a positive ``purchase_<col>``
raises purchases, a positive ``dropout_<col>`` the dropout rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from ..core.errors import ConvergenceError
from ..core.units import FREQ, UNIT_DAYS
from ..features.calendar import SeasonCalendar
from . import _covariates
from ._base import MLEModel
from .btyd import Purchases
from .pareto import ParetoNBD

__all__ = ["TimeVaryingParetoNBD"]


class _Periods:
    """Customers' histories cut at the covariate periods: rows (customers) and pieces (a period,
    or the part of one, between a customer's first purchase and the end of the span)."""


def _split(owner, k, u0, u1, c):
    """The pieces with each one that contains its owner's ``c`` strictly inside cut in two."""
    inside = (u0 < c[owner]) & (c[owner] < u1)
    if not inside.any():
        return owner, k, u0, u1
    rep = np.where(inside, 2, 1)
    at = (np.cumsum(rep) - rep)[inside]  # the first copy of each cut piece
    owner2, k2, u02, u12 = (np.repeat(a, rep) for a in (owner, k, u0, u1))
    u12[at] = c[owner[inside]]
    u02[at + 1] = c[owner[inside]]
    return owner2, k2, u02, u12


def _before(v, owner):
    """The sum of ``v`` over the earlier pieces of the same owner (pieces sorted by owner, then
    time)."""
    first = np.r_[True, owner[1:] != owner[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(owner)), 0))
    c = np.cumsum(v, axis=0) - v
    return c - c[start]


def _static_frame(customers, columns: list[str]):
    """The customers' time-invariant covariates (``user_id`` and the columns): one row per
    customer, indexed by ``user_id`` (a text id); None when not given."""
    if customers is None:
        return None
    if not isinstance(customers, pd.DataFrame):
        raise TypeError(
            f"customers must be a DataFrame (user_id and the static covariates), not {type(customers).__name__}"
        )
    c = customers if "user_id" not in customers.columns else customers.set_index("user_id")
    c = c.set_axis(c.index.astype(str), axis=0)
    if c.index.duplicated().any():
        raise ValueError(f"customers: {int(c.index.duplicated().sum())} user ids appear twice; one row per customer")
    return c[[col for col in columns if col in c.columns]]


def _covariate_frame(covariates, calendar, columns: list[str], name_user: str = "covariates", customers=None) -> tuple:
    """(user table indexed by (user_id, period_start), calendar table indexed by period_start)."""
    user = cal = None
    if covariates is not None:
        need = {"user_id", "period_start"}
        if not need <= set(covariates.columns):
            raise ValueError(
                f"{name_user} needs columns user_id, period_start and the covariates; it has {list(covariates.columns)}"
            )
        c = covariates.assign(
            period_start=pd.to_datetime(covariates["period_start"]).dt.normalize(),
            user_id=covariates["user_id"].astype(str),
        )
        if c.duplicated(["user_id", "period_start"]).any():
            raise ValueError(
                f"{name_user}: {int(c.duplicated(['user_id', 'period_start']).sum())} rows repeat a "
                f"(user_id, period_start) pair; one row per user and period"
            )
        user = c.set_index(["user_id", "period_start"])
    if calendar is not None:
        if "period_start" not in calendar.columns:
            raise ValueError(f"calendar needs a period_start column; it has {list(calendar.columns)}")
        c = calendar.assign(period_start=pd.to_datetime(calendar["period_start"]).dt.normalize())
        if c["period_start"].duplicated().any():
            raise ValueError("calendar: a period_start appears twice; one row per period")
        cal = c.set_index("period_start")
    static = customers
    for col in columns:
        where = [
            n
            for n, t in (("covariates", user), ("calendar", cal), ("customers", static))
            if t is not None and col in t.columns
        ]
        if len(where) != 1:
            raise ValueError(
                f"covariate {col!r} must be a column of exactly one of covariates (per customer and "
                f"period), calendar (per period) and customers (per customer, static) "
                f"(found in {where or 'none of them'})"
            )
    return user, cal


class TimeVaryingParetoNBD(MLEModel):
    """Pareto/NBD with covariates that change over time: ``params_`` ``r, alpha, s, beta`` and
    a coefficient per covariate (``purchase_<col>``, ``dropout_<col>``), with standard errors in
    ``summary``.

    Parameters
    ----------
    purchase_covariates, dropout_covariates : columns of the covariate tables on each process
    freq : the time unit of the rates and the length of a covariate period (``"W"``: weekly
        tables whose ``period_start`` dates are 7 days apart)
    nodes : Gauss-Legendre points per period of the likelihood's and the forecasts' integrals
    penalizer : L2 penalty on the optimiser's vector (see :class:`BetaGeo`)
    """

    param_names = ("r", "alpha", "s", "beta")

    def __init__(
        self,
        purchase_covariates=(),
        dropout_covariates=(),
        freq: str = FREQ,
        nodes: int = 8,
        penalizer: float = 0.0,
        tol: float = 1e-10,
        maxiter: int = 2000,
        season=None,
    ):
        super().__init__(penalizer=penalizer, tol=tol, maxiter=maxiter)
        self.purchase_covariates = purchase_covariates
        self.dropout_covariates = dropout_covariates
        self.freq = freq
        self.nodes = nodes
        self.season = season

    def _season(self):
        """The season calendar of ``season`` (``features.calendar.SeasonCalendar``), or None."""
        if getattr(self, "season", None) is None:
            return None
        return SeasonCalendar(self.season)

    def _calendar_for(self, transactions, cutoff, horizon: float, calendar):
        """The calendar table to use: the one given, else the ``season`` calendar's periods from
        the first purchase to the end of the span (``cutoff + horizon`` periods)."""
        cal = self._season()
        if calendar is not None or cal is None:
            return calendar
        first = pd.to_datetime(transactions["ts"]).min().normalize()
        end = pd.Timestamp(cutoff).normalize() + pd.Timedelta(days=float(horizon + 1) * UNIT_DAYS[self.freq])
        return cal.table(first, end, self.freq, anchor=first)

    # -- data ------------------------------------------------------------------------------
    def _columns(self):
        try:  # one string is one column (not its letters), as for every model
            return _covariates.names(self.purchase_covariates), _covariates.names(self.dropout_covariates)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def _prepare_data(
        self, transactions, cutoff, covariates, calendar, horizon: float = 0.0, customers=None, cuts=()
    ) -> _Periods:
        """Histories at ``cutoff`` and their pieces: the calibration span (birth to cutoff) and,
        with ``horizon > 0``, the forecast span (cutoff to cutoff + horizon periods)."""
        if self.freq not in UNIT_DAYS:
            raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {self.freq!r}")
        if int(self.nodes) != self.nodes or self.nodes < 2:
            raise ValueError(f"nodes must be a whole number >= 2, got {self.nodes}")
        pc, dc = self._columns()
        cols = list(dict.fromkeys(pc + dc))
        static = _static_frame(customers, cols)
        user_cov, cal = _covariate_frame(covariates, calendar, cols, customers=static)
        _check_transactions(transactions)
        cut = pd.Timestamp(cutoff).normalize()
        tx = transactions[["user_id", "ts"]].assign(
            user_id=transactions["user_id"].astype(str), d=pd.to_datetime(transactions["ts"]).dt.normalize()
        )
        days = tx.loc[tx["d"] <= cut, ["user_id", "d"]].drop_duplicates().sort_values(["user_id", "d"])
        if days.empty:
            raise ValueError(f"no purchase on or before the cut-off {cut:%Y-%m-%d}")
        g = days.groupby("user_id", sort=True)["d"]
        return self._prepare_histories(g.min(), g.max(), g.size(), cut, user_cov, cal, static, horizon, days, cuts=cuts)

    def _prepare_histories(self, first, last, count, cut, user_cov, cal, static, horizon, days=None, cuts=()):
        """:meth:`_prepare_data` from each user's first and last purchase day and count of purchase
        days (Series indexed by user). Without ``days`` (each purchase day) the purchase covariates
        at the purchases are not summed: enough for predictions (they cancel in P(alive) and every
        forecast), not for the likelihood's value. ``cuts``: offsets after T (periods) at which the
        forecast pieces are also cut."""
        pc, dc = self._columns()
        cols = list(dict.fromkeys(pc + dc))
        unit = UNIT_DAYS[self.freq]
        users = first.index.to_numpy()
        n = len(users)
        out = _Periods()
        out.users = users
        out.x = (count - 1).to_numpy(float)
        out.tx = ((last - first).dt.days / unit).to_numpy(float)
        out.T = ((cut - first).dt.days / unit).to_numpy(float)
        out.cols, out.pc, out.dc = cols, [cols.index(c) for c in pc], [cols.index(c) for c in dc]
        # the calendar grid: period starts every unit, anchored on the covariate tables' dates
        starts = []
        for t in (user_cov, cal):
            if t is not None:
                starts.append(t.index.get_level_values("period_start").unique())
        if cols and not starts and static is None:
            raise ValueError(f"covariates {cols} given but no covariate table (covariates, calendar or customers)")
        step = pd.Timedelta(days=unit)
        if starts:
            anchor = min(s.min() for s in starts)
            for s in starts:
                off = (s - anchor) / step
                if not np.allclose(off, np.round(off)):
                    raise ValueError(
                        f"covariate periods must start every {unit:g} days ({self.freq}); found dates "
                        f"off that grid (anchored at {anchor:%Y-%m-%d})"
                    )
        else:
            anchor = first.min()
        end = cut + pd.Timedelta(days=float(horizon) * unit)
        born = pd.DatetimeIndex(first.to_numpy())
        k0 = np.floor((born - anchor) / step).to_numpy().astype(int)  # the period of each birth
        k_end = int(np.ceil((end - anchor) / step))  # periods until the end of the span
        if (k0 < 0).any():
            raise ValueError(
                f"{int((k0 < 0).sum())} users bought before the first covariate period "
                f"({anchor:%Y-%m-%d}); the covariate tables must cover every user's life"
            )
        # pieces: per user, the periods k0..k_end-1, cut at birth, at t_x, at the cut-off and at the end
        reps = k_end - k0
        owner = np.repeat(np.arange(n), reps)
        k = k0[owner] + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        p_start = anchor + k * step
        u0 = np.maximum(np.asarray((p_start - born[owner]) / step, float), 0.0)
        u1 = np.minimum(
            np.asarray((p_start + step - born[owner]) / step, float), np.asarray((end - born) / step, float)[owner]
        )
        # split at t_x and at T (pieces never straddle either), and at the forecast's cut points
        for c in (out.tx, out.T, *(out.T + float(c) for c in cuts)):
            owner, k, u0, u1 = _split(owner, k, u0, u1, c)
        keep = u1 > u0
        owner, k, u0, u1 = owner[keep], k[keep], u0[keep], u1[keep]
        out.k = k
        out.owner, out.u0, out.u1 = owner, u0, u1
        out.future = u0 >= out.T[owner] - 1e-12
        out.died = (~out.future) & (u0 >= out.tx[owner] - 1e-12)
        out.Z = self._values(user_cov, cal, cols, users[owner], anchor + k * step, static)
        # the purchase covariates at each repeat purchase day, summed per user
        rep = days[days["d"] > first.reindex(days["user_id"]).to_numpy()] if days is not None else []
        if pc and len(rep):
            kk = np.floor(np.asarray((pd.DatetimeIndex(rep["d"]) - anchor) / step, float)).astype(int)
            zr = self._values(user_cov, cal, cols, rep["user_id"].to_numpy(), anchor + kk * step, static)
            codes = pd.Index(users).get_indexer(rep["user_id"].to_numpy())
            out.zsum = np.zeros((n, len(cols)))
            np.add.at(out.zsum, codes, zr)
        else:
            out.zsum = np.zeros((n, len(cols)))
        out.w = np.ones(n)
        out.anchor, out.step, out.cut = anchor, step, cut
        return out

    @staticmethod
    def _values(user_cov, cal, cols, user_ids, period_starts, static=None) -> np.ndarray:
        """The covariates of each (user, period) pair; a clear error where a table lacks one."""
        Z = np.zeros((len(user_ids), len(cols)))
        starts = pd.DatetimeIndex(period_starts)
        for j, c in enumerate(cols):
            if static is not None and c in static.columns:
                values = static[c].reindex(np.asarray(user_ids, object)).to_numpy(float)
                if not np.isfinite(values).all():
                    miss = ~np.isfinite(values)
                    raise ValueError(
                        f"customers lack {c!r} (or it is not a finite number) for {int(miss.sum())} "
                        f"rows, e.g. user {np.asarray(user_ids)[miss][0]!r}: give every customer's value"
                    )
                Z[:, j] = values
                continue
            if user_cov is not None and c in user_cov.columns:
                pos = user_cov.index.get_indexer(pd.MultiIndex.from_arrays([np.asarray(user_ids, object), starts]))
                table, what = user_cov[c].to_numpy(float), "covariates"
            else:
                pos = cal.index.get_indexer(starts)
                table, what = cal[c].to_numpy(float), "calendar"
            if (pos < 0).any():
                miss = pos < 0
                raise ValueError(
                    f"{what} lack {c!r} for {int(miss.sum())} (user, period) pairs the customers' "
                    f"lives span, e.g. user {np.asarray(user_ids)[miss][0]!r} at "
                    f"{starts[miss][0]:%Y-%m-%d}; give every period from each user's first purchase "
                    f"to the end of the span (for forecasts: the horizon)"
                )
            Z[:, j] = table[pos]
            if not np.isfinite(Z[:, j]).all():
                raise ValueError(f"{what} column {c!r} has missing or infinite values")
        return Z

    # -- likelihood -----------------------------------------------------------------------
    def _exposures(self, g1, g2, d, rows):
        """Per piece (of ``rows``): the rates' multipliers and the exposures A, B at its start,
        with their derivatives w.r.t. the coefficients (cumulative within each customer)."""
        Z = d.Z[rows]
        e1 = np.exp(Z[:, d.pc] @ g1) if d.pc else np.ones(len(Z))
        e2 = np.exp(Z[:, d.dc] @ g2) if d.dc else np.ones(len(Z))
        dt = d.u1[rows] - d.u0[rows]
        owner = d.owner[rows]

        a, b = e1 * dt, e2 * dt
        da = Z[:, d.pc] * a[:, None]
        db = Z[:, d.dc] * b[:, None]
        return e1, e2, _before(a, owner), _before(b, owner), _before(da, owner), _before(db, owner)

    def _loglik_grad(self, lp, d):
        return self._likelihood(lp, d)[:2]

    def _likelihood(self, lp, d):
        """Per customer: the log-likelihood, its gradient, P(alive at T) (the alive part's share)
        and the exposures A(T), B(T)."""
        k1, k2 = len(d.pc), len(d.dc)
        r, alpha, s, beta = np.exp(lp[:4])
        g1, g2 = lp[4 : 4 + k1], lp[4 + k1 : 4 + k1 + k2]
        with np.errstate(all="ignore"):  # a line search may try extreme values: the objective refuses them
            return self._likelihood_at(r, alpha, s, beta, g1, g2, d)

    def _likelihood_at(self, r, alpha, s, beta, g1, g2, d):
        n, k1, k2 = len(d.x), len(d.pc), len(d.dc)
        past = ~d.future
        e1, e2, A0, B0, dA0, dB0 = self._exposures(g1, g2, d, past)
        owner = d.owner[past]
        dt = d.u1[past] - d.u0[past]
        # A(T), B(T) per customer: exposure at the last calibration piece's end
        Zpast = d.Z[past]
        A_T = np.bincount(owner, weights=e1 * dt, minlength=n)
        B_T = np.bincount(owner, weights=e2 * dt, minlength=n)
        dA_T = np.column_stack(
            [np.bincount(owner, weights=Zpast[:, c] * e1 * dt, minlength=n) for c in d.pc] or [np.zeros((n, 0))]
        )
        dB_T = np.column_stack(
            [np.bincount(owner, weights=Zpast[:, c] * e2 * dt, minlength=n) for c in d.dc] or [np.zeros((n, 0))]
        )
        x = d.x
        rx = r + x
        const = gammaln(rx) - gammaln(r) + r * np.log(alpha) + d.zsum[:, d.pc] @ g1
        l1 = -rx * np.log(alpha + A_T) + s * (np.log(beta) - np.log(beta + B_T))
        d1 = {
            "r": -np.log(alpha + A_T),
            "alpha": -rx / (alpha + A_T),
            "s": np.log(beta) - np.log(beta + B_T),
            "beta": s / beta - s / (beta + B_T),
        }
        d1_g1 = -rx[:, None] * dA_T / (alpha + A_T)[:, None]
        d1_g2 = -s * dB_T / (beta + B_T)[:, None]
        # the death integral over the pieces after t_x: Gauss-Legendre per piece
        dz = d.died[past]
        o = owner[dz]
        gx, gw = np.polynomial.legendre.leggauss(int(self.nodes))
        h = 0.5 * dt[dz]
        v = h[:, None] * (gx[None, :] + 1.0)  # time into the piece
        A = A0[dz][:, None] + e1[dz][:, None] * v
        B = B0[dz][:, None] + e2[dz][:, None] * v
        rxo = rx[o][:, None]
        Zp = Zpast[dz]
        lg = (
            -rxo * np.log(alpha + A)
            + np.log(s)
            + s * np.log(beta)
            + np.log(e2[dz])[:, None]
            - (s + 1.0) * np.log(beta + B)
            + np.log(gw)[None, :]
            + np.log(h)[:, None]
        )
        top = l1.copy()
        if len(o):
            heads = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])  # died pieces are sorted by owner
            top[o[heads]] = np.maximum(top[o[heads]], np.maximum.reduceat(lg.max(axis=1), heads))
        ek = np.exp(lg - top[o][:, None])
        e1t = np.exp(l1 - top)
        tot = e1t + np.bincount(o, weights=ek.sum(axis=1), minlength=n)
        ll = const + top + np.log(tot)
        w1 = e1t / tot
        wk = ek / tot[o][:, None]
        grads = []

        def integral(dlog):  # sum over nodes and pieces of w * dlog, per customer
            return np.bincount(o, weights=(wk * dlog).sum(axis=1), minlength=n)

        grads.append((digamma(rx) - digamma(r) + np.log(alpha) + w1 * d1["r"] + integral(-np.log(alpha + A))) * r)
        grads.append((r / alpha + w1 * d1["alpha"] + integral(-rxo / (alpha + A))) * alpha)
        grads.append((w1 * d1["s"] + integral(1.0 / s + np.log(beta) - np.log(beta + B))) * s)
        grads.append((w1 * d1["beta"] + integral(s / beta - (s + 1.0) / (beta + B))) * beta)
        for j in range(k1):
            dA = dA0[dz][:, j][:, None] + (Zp[:, d.pc[j]] * e1[dz])[:, None] * v
            grads.append(d.zsum[:, d.pc[j]] + w1 * d1_g1[:, j] + integral(-rxo * dA / (alpha + A)))
        for j in range(k2):
            dB = dB0[dz][:, j][:, None] + (Zp[:, d.dc[j]] * e2[dz])[:, None] * v
            grads.append(w1 * d1_g2[:, j] + integral(Zp[:, d.dc[j]][:, None] - (s + 1.0) * dB / (beta + B)))
        return ll, np.column_stack(grads), w1, A_T, B_T

    def _initial(self, d):
        """The plain Pareto/NBD fit of the same histories, coefficients 0 (a few closed-form
        passes; the time-varying likelihood then needs few iterations)."""
        try:
            plain = ParetoNBD(penalizer=self.penalizer)
            plain._fit_prepared(Purchases(d.x, d.tx, d.T), Purchases(d.x, d.tx, d.T).w, len(d.x))
            base = np.log([plain.params_[k] for k in ("r", "alpha", "s", "beta")])
        except ConvergenceError:
            rate = max(float(d.x.sum() / max(d.T.sum(), 1e-12)), 1e-6)
            base = np.log([1.0, 1.0 / rate, 1.0, max(float(d.T.mean()), 1e-3)])
        return np.r_[base, np.zeros(len(d.pc) + len(d.dc))]

    def fit(
        self,
        transactions: pd.DataFrame,
        cutoff=None,
        covariates: pd.DataFrame | None = None,
        calendar: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
    ) -> TimeVaryingParetoNBD:
        """Fit to the purchases on or before ``cutoff`` with the covariate tables (see the module
        docstring): ``covariates`` per customer and period, ``calendar`` per period, ``customers``
        per customer (static, e.g. the first purchase's amount); returns self."""
        if cutoff is None:
            raise TypeError(
                "TimeVaryingParetoNBD.fit(transactions, cutoff, ...) needs the cut-off date: the "
                "covariates change over calendar time, so the model reads each purchase's date "
                "(user_id, ts), not an RFM summary"
            )
        calendar = self._calendar_for(transactions, cutoff, 0.0, calendar)
        d = self._prepare_data(transactions, cutoff, covariates, calendar, customers=customers)
        pc, dc = self._columns()
        seen = d.Z[~d.future]
        flat = [c for j, c in enumerate(d.cols) if len(seen) and np.ptp(seen[:, j]) == 0]
        if flat:
            raise ValueError(
                f"covariate(s) {flat} take one value over the whole calibration period (e.g. a season "
                f"flag before the first season): their effects cannot be estimated from these data; "
                f"calibrate over a span where they vary, or leave them out"
            )
        names = ("r", "alpha", "s", "beta", *(f"purchase_{c}" for c in pc), *(f"dropout_{c}" for c in dc))
        real = names[4:]
        self.cutoff_ = d.cut
        self.freq_ = self.freq
        return self._fit_prepared(d, d.w, len(d.x), names=names, real=real)

    # -- predictions ----------------------------------------------------------------------
    def _posterior(self, d):
        """Per customer: P(alive at T), and the parameters given alive (r+x, alpha+A(T), s,
        beta+B(T)), with the coefficients."""
        lp = self.log_params_
        k1 = len(d.pc)
        r, alpha, s, beta = np.exp(lp[:4])
        _, _, alive, A_T, B_T = self._likelihood(lp, d)
        return alive, r + d.x, alpha + A_T, s, beta + B_T, lp[4 : 4 + k1], lp[4 + k1 :]

    def _check_data(self, transactions, covariates, calendar, horizon=0.0, customers=None):
        self._check_fitted()
        calendar = self._calendar_for(transactions, self.cutoff_, horizon, calendar)
        return self._prepare_data(transactions, self.cutoff_, covariates, calendar, horizon, customers=customers)

    def predict(self, transactions, t) -> pd.Series:
        """Expected repeat purchases in the next ``t`` periods after the fitted cut-off, per user:
        :meth:`conditional_expected_purchases` with the ``season`` calendar (the interface of the
        models fitted on transactions and a cut-off, ``ShiftedWindowPurchases``'s)."""
        return self.conditional_expected_purchases(t, transactions)

    def p_alive(self, transactions, covariates=None, calendar=None, customers=None) -> pd.Series:
        """P(alive at the fitted cut-off | history), per user known there."""
        d = self._check_data(transactions, covariates, calendar, customers=customers)
        return pd.Series(self._posterior(d)[0], index=pd.Index(d.users, name="user_id"), name="p_alive")

    def expected_by_period(self, t, transactions, covariates=None, calendar=None, customers=None) -> pd.DataFrame:
        """Expected repeat purchases in each covariate period of the next ``t`` periods after the
        fitted cut-off, per user (rows) and period start (columns); the covariate tables must
        cover the horizon (the future calendar, the planned contacts). The argument order is every
        model's, ``(t, data)``."""
        t = _horizon(t, transactions)
        d = self._check_data(transactions, covariates, calendar, horizon=float(t), customers=customers)
        alive, rx, aT, s, bT, g1, g2 = self._posterior(d)
        fut = d.future
        e1, e2, _, B0, _, _ = self._exposures(g1, g2, d, fut)
        owner = d.owner[fut]
        gx, gw = np.polynomial.legendre.leggauss(int(self.nodes))
        h = 0.5 * (d.u1[fut] - d.u0[fut])
        v = h[:, None] * (gx[None, :] + 1.0)
        surv = (bT[owner][:, None] / (bT[owner][:, None] + B0[:, None] + e2[:, None] * v)) ** s
        per_piece = alive[owner] * rx[owner] / aT[owner] * e1 * h * (surv @ gw)
        period = d.anchor + d.k[fut] * d.step  # the calendar period of each future piece
        out = pd.DataFrame({"user_id": d.users[owner], "period_start": period, "e": per_piece})
        table = out.pivot_table(index="user_id", columns="period_start", values="e", aggfunc="sum", fill_value=0.0)
        return table.reindex(pd.Index(d.users, name="user_id"), fill_value=0.0)

    def scores(self, summary: pd.DataFrame, as_of, ts, churn_t: float, calendar=None) -> dict:
        """What a relationship table needs, per customer of ``summary`` (``frequency, recency, T``
        in ``freq`` units at ``as_of``, e.g. ``features.activity_features``; the shared calendar, the
        ``season`` one unless ``calendar`` is given, is the only covariate table this path reads):
        ``alive`` (P(alive at as_of)), ``expected`` and ``retained`` (cumulative expected purchases
        at each horizon of ``ts``, and those of the customer alive now who stays alive: the rate
        given alive times the purchase exposure), ``p0`` (P(no purchase in the next ``churn_t``
        periods)) and ``lifetime`` (the time alive within the last horizon of ``ts``). The
        posterior is the one at ``as_of`` (the calendar is read from each customer's first
        purchase to ``as_of`` plus the horizon)."""
        self._check_fitted()
        unit = UNIT_DAYS[self.freq]
        cut = pd.Timestamp(as_of).normalize()
        ts = np.asarray(ts, float)
        span = float(max(ts.max(), churn_t))
        T = summary["T"].to_numpy(float)
        first = cut - pd.to_timedelta(np.round(T * unit), unit="D")
        last = first + pd.to_timedelta(np.round(summary["recency"].to_numpy(float) * unit), unit="D")
        idx = pd.Index(summary.index.astype(str), name="user_id")
        first, last = pd.Series(first, index=idx), pd.Series(last, index=idx)
        count = pd.Series(summary["frequency"].to_numpy(float) + 1.0, index=idx)
        if calendar is None and self._season() is not None:
            calendar = self._season().table(
                first.min(), cut + pd.Timedelta(days=(span + 1) * unit), self.freq, anchor=first.min()
            )
        pc, dc = self._columns()
        cols = list(dict.fromkeys(pc + dc))
        _, cal = _covariate_frame(None, calendar, cols)
        d = self._prepare_histories(first, last, count, cut, None, cal, None, span, cuts=(*ts, churn_t))
        alive, rx, aT, s, bT, g1, g2 = self._posterior(d)
        fut = d.future
        e1, e2, A0, B0, _, _ = self._exposures(g1, g2, d, fut)
        owner = d.owner[fut]
        u0 = d.u0[fut] - d.T[owner]  # time after as_of at each future piece's start
        u1 = d.u1[fut] - d.T[owner]
        gx, gw = np.polynomial.legendre.leggauss(int(self.nodes))
        h = 0.5 * (u1 - u0)
        v = h[:, None] * (gx[None, :] + 1.0)
        B = bT[owner][:, None] + B0[:, None] + e2[:, None] * v
        S = (bT[owner][:, None] / B) ** s  # P(still alive at each node | alive at as_of)
        L = (aT[owner][:, None] / (aT[owner][:, None] + A0[:, None] + e1[:, None] * v)) ** rx[owner][:, None]
        rate = rx[owner] / aT[owner] * e1  # E[lambda | alive] x the season's multiplier on the piece
        n = len(d.x)

        def per_user(w, upto):
            keep = u1 <= upto + 1e-9
            return np.bincount(owner[keep], weights=w[keep], minlength=n)

        expected_piece = alive[owner] * rate * h * (S @ gw)
        retained_piece = rate * (u1 - u0)
        out = {
            "alive": alive,
            "expected": np.column_stack([per_user(expected_piece, t) for t in ts]),
            "retained": np.column_stack([per_user(retained_piece, t) for t in ts]),
            "lifetime": alive * per_user(h * (S @ gw), float(ts.max())),
        }
        # P(no purchase in (0, churn_t] | alive): alive throughout with none, or dying at u with none before
        S_end = (bT / (bT + per_user(e2 * (u1 - u0), churn_t))) ** s
        A_end = per_user(e1 * (u1 - u0), churn_t)
        none_alive = S_end * (aT / (aT + A_end)) ** rx
        dying = per_user(h * ((s * e2[:, None] / B * S * L) @ gw), churn_t)
        out["p0"] = (1.0 - alive) + alive * (none_alive + dying)
        out["users"] = d.users
        return out

    def conditional_expected_purchases(
        self, t, transactions, covariates=None, calendar=None, customers=None
    ) -> pd.Series:
        """Expected repeat purchases in the next ``t`` periods after the fitted cut-off, per user
        (the argument order of every model: ``(t, data)``)."""
        return (
            self.expected_by_period(t, transactions, covariates, calendar, customers)
            .sum(axis=1)
            .rename("expected_purchases")
        )


def _horizon(t, transactions) -> float:
    """``t`` as a positive number of periods; the arguments the other way round (``(transactions,
    t)``, this model's order before 2026-12) refused with the order to use."""
    if isinstance(t, pd.DataFrame) or not isinstance(transactions, pd.DataFrame):
        raise TypeError(
            "the arguments are (t, transactions, ...), as every model's (t, rfm): the horizon first, "
            f"then the transactions; got {type(t).__name__} and {type(transactions).__name__}"
        )
    if not np.isscalar(t) or not float(t) > 0:
        raise ValueError(f"t must be a positive number of periods, got {t!r}")
    return float(t)


def _check_transactions(transactions) -> None:
    """Transactions (``user_id``, ``ts``), or an error that says what this model reads."""
    if not isinstance(transactions, pd.DataFrame):
        raise TypeError(f"transactions must be a DataFrame with user_id and ts, not {type(transactions).__name__}")
    missing = [c for c in ("user_id", "ts") if c not in transactions.columns]
    if missing:
        rfm = {"frequency", "recency", "T"} <= set(transactions.columns)
        raise ValueError(
            f"TimeVaryingParetoNBD reads transactions (user_id, ts: each purchase's date, to put it in its covariate "
            f"period); the table lacks {missing}"
            + (
                " and looks like an RFM summary, which has lost the dates"
                if rfm
                else f"; it has {list(transactions.columns)}"
            )
        )
