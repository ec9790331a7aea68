"""A purchase model learned on shifted windows of the data's own past.

The BTYD models extrapolate from a parametric story. This model learns instead what the
activity at a date tells about the purchases of the next ``window`` periods, from the
calibration period itself: features at ``origin`` (RFM, trailing-window counts and spend,
inter-purchase gaps, the first purchase's amount, and a BTYD model's own predictions fitted at
that origin), target = repeat purchase days in ``(origin, origin + window]``, for several
origins stacked (``origin = cutoff - window - shift``), so no row after ``cutoff`` is read.
A gradient-boosted model with a Poisson loss (XGBoost) fits them; applied at ``cutoff`` it
predicts the next ``window`` periods.

The window is chosen from the data (the longest, up to a quarter, whose training cohort is at
least as old as the window; see the class docstring), so no data set needs one picked by hand.
Horizons longer than ``window`` (CDNOW: a 39-week holdout, and every customer's first purchase
in the first 13 of 39 calibration weeks, so no window of 39 weeks fits before the cut-off) are
reached with the BTYD decay: each customer's prediction is multiplied by the BTYD model's
``E[X(t)] / E[X(window)]`` for that customer, fitted at ``cutoff``. The level comes from the
data, the shape of the decay from the BTYD model.

The predictive distribution of a customer's count is negative binomial around that mean:
``P(X = n) = NB(n; shape k, mean mu)``, the count of a Poisson process whose rate is gamma
distributed with shape ``k`` about the boosted mean (variance ``mu + mu^2 / k``; ``k`` does not
change with the horizon, as in the NBD). ``k`` is fitted by maximum likelihood on out-of-fold
predictions of the training windows (users split in two halves, each half predicted by a
booster fitted on the other), so it measures the error the model makes on users it has not
seen, not its fit to its own rows; one ``k`` for the customers with a single purchase day and
one for those with repeats (on CDNOW 0.28 and 1.14: whether a one-time buyer comes back is far
less predictable than how often a repeat buyer does). The mean is the forecast for totals, squared error and CLV;
the median, the forecast for absolute error (most customers buy nothing). docs/architecture.md
("Purchases on shifted windows") has the measurements and where it fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import gammaln
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .. import features
from ..core.errors import ConvergenceError
from ..core.units import FREQ, UNIT_DAYS
from ..features.calendar import SeasonCalendar
from . import boosting as boosting_defaults
from . import registry
from ._base import NOT_FITTED
from .boosting import BoostingOptions

__all__ = ["ShiftedWindowPurchases"]

MIN_WINDOW = 2  # the shortest window the model chooses by itself, in periods
MAX_ORIGINS = 4  # training origins tried when the shifts are chosen by the model
WINDOWS = (4, 13, 26)  # the trailing windows of the activity features, in periods


def nb_shape(mu, y) -> float:
    """Maximum-likelihood shape ``k`` of a negative binomial with known means ``mu`` for the
    counts ``y`` (variance ``mu + mu^2 / k``), searched over ``exp(-8) .. exp(8)``."""
    mu, y = np.asarray(mu, float), np.asarray(y, float)

    def nll(log_k):
        k = np.exp(log_k)
        return -np.sum(
            gammaln(y + k) - gammaln(k) - gammaln(y + 1.0) + k * np.log(k / (k + mu)) + y * np.log(mu / (k + mu))
        )

    return float(np.exp(optimize.minimize_scalar(nll, bounds=(-8.0, 8.0), method="bounded", options={"xatol": 1e-6}).x))


class ShiftedWindowPurchases(BaseEstimator):
    """Expected purchases per user from a boosted Poisson model trained on shifted windows.

    Parameters
    ----------
    window : periods of ``freq`` the model predicts directly (and the length of each training
        target); longer horizons use the BTYD decay (see the module docstring). ``None`` (the
        default): chosen from the data, the longest window up to ``max_window`` whose latest
        origin (``cutoff - window``) is admissible: at least ``min_users`` users known there and
        the median of them at least ``window`` periods old (the rule of
        ``features.churn_window``: a cohort younger than the window it should predict says little
        about it). CDNOW (median first purchase 1997-02-13): 9 weeks at a 1997-06-30 cut-off (the
        median customer is 19.7 weeks old), 13 at 1997-09-30 (33 weeks). When not even a window
        of 2 periods is admissible the fit refuses and names the earliest cut-off that allows one.
    shifts : training origins, in periods before ``cutoff - window`` (0: the latest window that
        ends at the cut-off); only the admissible ones are used. ``None`` (the default): every
        ``window // 4`` periods (at least 1), at most four origins: on CDNOW at 1997-09-30 shifts
        0, 3 and 6 (the median customer 20, 17 and 14 weeks old; 9 would be 11); at 1997-06-30
        shift 0 only.
    max_window : the longest window chosen by itself (13 weeks, a quarter: longer windows train
        on younger cohorts; 16 weeks at 1997-09-30 over-predicts the CDNOW holdout by 15%).
    freq : time unit of ``window``, ``shifts`` and the horizons.
    base : the BTYD model whose predictions are features and whose decay carries the window to
        longer horizons: ``"ParetoNBD"``, ``"BetaGeo"`` or ``"ModifiedBetaGeo"``.
    boosting : :class:`~urm_models.models.boosting.BoostingOptions` of the XGBoost regressor
        (default :data:`urm_models.models.boosting.SHIFTED`: a fixed number of trees, no early
        stopping).
    random_state : seed of XGBoost's row and column subsampling.

    Attributes
    ----------
    cutoff_ : the date it was fitted at;  window_, shifts_ : the window and shifts used
    origins_ : the training origins used;  penalized_origins_ : those whose Pareto/NBD needed
        ``penalizer=1e-3`` (at a young origin its dropout rates may not be identified)
    booster_ : the fitted XGBRegressor;  feature_names_ : its inputs
    dispersion_ : the negative binomial shapes ``k`` of the predictive distribution (out of
        fold), a Series indexed ``one_time``, ``repeat`` (a group with fewer than ``min_users``
        training rows gets the shape of all rows)
    base_model_ : the BTYD model fitted at ``cutoff`` (the decay)
    n_training_rows_ : user-origin rows it learned from
    """

    def __init__(
        self,
        window: int | None = None,
        shifts=None,
        freq: str = FREQ,
        base: str = "ParetoNBD",
        max_window: int = 13,
        boosting: BoostingOptions = boosting_defaults.SHIFTED,
        min_users: int = 100,
        random_state: int = 0,
        season=None,
    ):
        self.window = window
        self.shifts = shifts
        self.freq = freq
        self.base = base
        self.max_window = max_window
        self.boosting = boosting
        self.min_users = min_users
        self.random_state = random_state
        self.season = season

    def __setstate__(self, state):
        # before 2026-12-08 the tree settings were four attributes of the model
        super().__setstate__(boosting_defaults.from_state(state, boosting_defaults.SHIFTED))

    def _season(self):
        """The season calendar (``features.calendar.SeasonCalendar``) of ``season``, or None."""
        if getattr(self, "season", None) is None:
            return None
        return SeasonCalendar(self.season)

    def _season_shares(self, start, window: int) -> dict:
        """Each season's share of the days of the trailing activity windows before ``start``
        (the inputs ``season_<column>_past_<w>``: activity in a season says less about the quiet
        months after it); empty without a calendar. The season of the window predicted enters as
        the booster's offset (:meth:`_log_multiplier`)."""
        cal = self._season()
        if cal is None:
            return {}
        unit = pd.Timedelta(days=UNIT_DAYS[self.freq])
        start = pd.Timestamp(start)
        out = {}
        for w in WINDOWS:
            out.update({f"season_{c}_past_{w}": float(v) for c, v in cal.share(start - w * unit, start).items()})
        return out

    def _season_effect(self, transactions, cut) -> pd.Series:
        """Each season's effect on the purchase rate (log of the multiplier at a share of 1), from
        the daily repeat purchase days of the calibration period (the last three years at most):
        a Poisson regression on a trend in time and the season shares, with the log of the users
        known each day as its offset. A season that never varies there (CDNOW's November-December
        before the first November) has no effect it could learn: 0, and ``season_notes_`` says so."""
        from scipy import optimize

        cal = self._season()
        d = pd.DataFrame(
            {"u": transactions["user_id"].astype(str), "d": pd.to_datetime(transactions["ts"]).dt.normalize()}
        )
        d = d[d["d"] <= cut].drop_duplicates()
        first = d.groupby("u")["d"].transform("min")
        start = max(d["d"].min(), cut - pd.Timedelta(days=3 * 365))
        days = pd.date_range(start, cut, freq="D")
        repeat = d[(d["d"] > first) & (d["d"] >= start)].groupby("d").size().reindex(days, fill_value=0).to_numpy(float)
        known = np.searchsorted(np.sort(d.groupby("u")["d"].min().to_numpy()), days.to_numpy(), side="right")
        S = cal.days(days[0], days[-1] + pd.Timedelta(days=1))
        ok = known > 0
        varying = [c for c in S.columns if np.ptp(S.loc[ok, c].to_numpy()) > 0]
        self.season_notes_ = [
            f"season {c!r} takes one value over the calibration period: no effect learnt (0)"
            for c in S.columns
            if c not in varying
        ]
        effect = pd.Series(0.0, index=S.columns)
        if not varying or repeat[ok].sum() == 0:
            return effect
        years = (days - days[0]).days.to_numpy(float)[ok] / 365.25
        Z = np.column_stack([np.ones(ok.sum()), years, S.loc[ok, varying].to_numpy(float)])
        y, off = repeat[ok], np.log(known[ok])

        def nll(b):
            eta = np.clip(Z @ b + off, -50, 50)
            return float(np.sum(np.exp(eta) - y * eta)), Z.T @ (np.exp(eta) - y)

        b0 = np.zeros(Z.shape[1])
        b0[0] = np.log(max(y.sum(), 1.0) / np.exp(off).sum())
        fit = optimize.minimize(nll, b0, jac=True, method="L-BFGS-B")
        effect[varying] = fit.x[2:]
        return effect

    def _log_multiplier(self, start, window: int) -> float:
        """The log of the seasons' mean multiplier of the purchase rate over the ``window`` periods
        after ``start`` (0 without a calendar): the booster's offset for that window."""
        if self._season() is None:
            return 0.0
        unit = pd.Timedelta(days=UNIT_DAYS[self.freq])
        days = self._season().days(
            pd.Timestamp(start) + pd.Timedelta(days=1), pd.Timestamp(start) + window * unit + pd.Timedelta(days=1)
        )
        return float(
            np.log(np.mean(np.exp(days[self.season_effect_.index].to_numpy() @ self.season_effect_.to_numpy())))
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "booster_")

    # -- features ---------------------------------------------------------------------------
    def _base_model(self):
        bases = registry.model_names(base=True)
        if self.base not in bases:
            raise ValueError(f"base must be one of {sorted(bases)}, not {self.base!r}")
        return registry.spec(self.base).cls()

    def _fit_base(self, rfm):
        """The base BTYD model fitted to ``rfm``; at a young origin (a few weeks of history) a
        Pareto/NBD can fail to tell the customers' dropout rates apart (its identification guard
        raises); it is then fitted with ``penalizer=1e-3`` (``penalized_origins_`` lists where)."""
        try:
            return self._base_model().fit(rfm), False
        except ConvergenceError:
            return self._base_model().set_params(penalizer=1e-3).fit(rfm), True

    def _design(self, act: pd.DataFrame, btyd, window: int, shares: dict | None = None) -> pd.DataFrame:
        """The booster's inputs from activity features (``features.activity_features`` at the
        date the prediction starts): the activity columns, the BTYD model's expectation over
        ``window`` and P(alive), and ``log_first_amount`` (``ln(1 + first day's amount)``, which
        the activity columns hold: ``total_spend - frequency * monetary``)."""
        rfm = act[["frequency", "recency", "T"]]
        x, tx, T, P, codes = btyd._histories(rfm)
        X = act.copy()
        X["btyd_window"] = btyd._conditional_expected(float(window), x, tx, T, P)[codes]
        X["p_alive"] = btyd._p_alive(x, tx, T, P)[codes]
        first = act["total_spend"].to_numpy(float) - act["frequency"].to_numpy(float) * act["monetary"].to_numpy(float)
        X["log_first_amount"] = np.log1p(np.maximum(first, 0.0))
        for c, v in (shares or {}).items():  # the season's share of the window predicted, the same for everyone
            X[c] = v
        return X

    def _features(self, transactions, origin, window: int):
        """The training rows at ``origin``: inputs, the target (repeat purchase days in the next
        ``window`` periods), and whether the origin's BTYD model needed a penalizer."""
        end = origin + pd.Timedelta(days=window * UNIT_DAYS[self.freq])
        rfm = features.rfm_summary(transactions, origin, freq=self.freq, holdout_end=end)
        btyd, penalized = self._fit_base(rfm)
        act = features.activity_features(transactions, origin, freq=self.freq, windows=WINDOWS)
        X = self._design(act, btyd, window, self._season_shares(origin, window))
        return X, rfm["frequency_holdout"].reindex(X.index).to_numpy(float), penalized

    def _check(self):
        if self.freq not in UNIT_DAYS:
            raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {self.freq!r}")
        if self.window is not None and (int(self.window) != self.window or self.window < 1):
            raise ValueError(f"window must be a positive whole number of periods or None, got {self.window}")
        if int(self.max_window) != self.max_window or self.max_window < MIN_WINDOW:
            raise ValueError(f"max_window must be a whole number of periods >= {MIN_WINDOW}, got {self.max_window}")
        if self.shifts is not None and (not len(self.shifts) or min(self.shifts) < 0):
            raise ValueError(f"shifts must be non-negative periods or None, got {self.shifts}")
        if self.boosting.early_stopping_rounds is not None:
            raise ValueError(
                "ShiftedWindowPurchases grows boosting.n_estimators trees (every window is training data: "
                "no rows are held out to stop on); pass a BoostingOptions with early_stopping_rounds=None"
            )

    def _admissible(self, first: pd.Series, origin: pd.Timestamp, window: int) -> bool:
        """Whether ``origin`` can train a window of ``window`` periods: at least ``min_users``
        users known there and the median of them at least ``window`` periods old (a cohort
        younger than the window it should predict says little about it)."""
        known = first[first <= origin]
        unit = pd.Timedelta(days=UNIT_DAYS[self.freq])
        return len(known) >= self.min_users and (origin - known).median() >= window * unit

    def _windows(self, first: pd.Series, cut: pd.Timestamp) -> tuple[int, list[int]]:
        """The window and the shifts used at ``cut`` (see the class docstring), or a ValueError
        that says how much history is needed."""
        unit = pd.Timedelta(days=UNIT_DAYS[self.freq])

        def origin(window, shift):
            return (cut - (window + shift) * unit).normalize()

        if self.window is None:
            fits = [
                w for w in range(int(self.max_window), MIN_WINDOW - 1, -1) if self._admissible(first, origin(w, 0), w)
            ]
            if not fits:
                later = next(
                    (
                        cut + k * unit
                        for k in range(1, 1041)
                        if self._admissible(first, (cut + (k - MIN_WINDOW) * unit).normalize(), MIN_WINDOW)
                    ),
                    None,
                )
                known = first[first <= cut]
                age = (cut - known).median() / unit if len(known) else 0.0
                raise ValueError(
                    f"too little history before {cut:%Y-%m-%d} to learn a window of even {MIN_WINDOW} {self.freq}: "
                    f"it needs at least {self.min_users} users known {MIN_WINDOW} {self.freq} before the cut-off "
                    f"and the median of them at least {MIN_WINDOW} {self.freq} old there (the median user is "
                    f"{age:.1f} {self.freq} old at the cut-off, {len(known)} users known); "
                    + (
                        f"the earliest cut-off these transactions allow is {later:%Y-%m-%d}"
                        if later is not None
                        else "no later cut-off within 20 years allows it with these users"
                    )
                )
            window = fits[0]
        else:
            window = int(self.window)
        if self.shifts is None and self._season() is not None:
            # with a season calendar the windows cover the year: origins a quarter apart, so that no
            # season is over-represented in what it learns from (the admissible ones)
            step = max(1, int(round(365.25 / 4 / UNIT_DAYS[self.freq])))
            candidates = [k * step for k in range(MAX_ORIGINS)]
        elif self.shifts is None:
            step = max(1, window // 4)
            candidates = [k * step for k in range(MAX_ORIGINS)]
        else:
            candidates = sorted({int(s) for s in self.shifts})
        shifts = [s for s in candidates if self._admissible(first, origin(window, s), window)]
        if not shifts:
            raise ValueError(
                f"no training window of {window} {self.freq} fits before {cut:%Y-%m-%d}: "
                f"at each origin (shifts {candidates}) fewer than {self.min_users} users "
                f"are known or the median of them has less than {window} {self.freq} of "
                f"history (first purchase {first.min():%Y-%m-%d}); choose a later cutoff, a "
                f"shorter window, or window=None to let the model choose"
            )
        return window, shifts

    # -- fit / predict ----------------------------------------------------------------------
    def fit(self, transactions: pd.DataFrame, cutoff) -> ShiftedWindowPurchases:
        """Learn from shifted windows that end on or before ``cutoff``; returns self."""
        import xgboost as xgb

        self._check()
        cut = pd.Timestamp(cutoff).normalize()
        unit = pd.Timedelta(days=UNIT_DAYS[self.freq])
        first = pd.to_datetime(transactions.groupby("user_id")["ts"].min()).dt.normalize()
        window, shifts = self._windows(first, cut)
        self.season_notes_ = []
        if self._season() is not None:
            self.season_effect_ = self._season_effect(transactions, cut)
        Xs, ys, offsets, used, penalized = [], [], [], [], []
        for shift in shifts:
            origin = (cut - (window + shift) * unit).normalize()
            X, y, pen = self._features(transactions, origin, window)
            Xs.append(X)
            ys.append(y)
            offsets.append(np.full(len(y), self._log_multiplier(origin, window)))
            used.append(origin)
            if pen:
                penalized.append(origin)
        X = pd.concat(Xs)
        y = np.concatenate(ys)
        margin = np.concatenate(offsets)  # the season of each window, a known multiplier of its rate
        # with a base margin XGBoost adds no base score: the offset carries the mean level too, else
        # the trees start from a rate of about 1 and a small booster never comes down from it
        self.season_level_ = float(np.log(max(y.sum(), 1e-9) / np.exp(margin).sum())) if len(y) else 0.0
        margin = margin + self.season_level_
        self.feature_names_ = list(X.columns)

        def booster():
            return xgb.XGBRegressor(
                objective="count:poisson",
                **self.boosting.xgb_params(),
                random_state=self.random_state,
                tree_method="hist",
                # one thread: a few thousand rows per tree; two OpenMP threads spin-wait on each
                # other when the other core is busy (46 s instead of 0.3 s measured in a refresh)
                n_jobs=1,
            )

        Xa = X.to_numpy(float)
        seasonal = self._season() is not None
        self.booster_ = booster().fit(Xa, y, base_margin=margin) if seasonal else booster().fit(Xa, y)
        # the spread of the predictive distribution, from the error on users not trained on: a
        # user's rows (one per origin) stay in one half
        users = np.unique(X.index.to_numpy())
        half = pd.Series(np.random.default_rng(self.random_state).permutation(len(users)) % 2, index=users)
        fold = half.reindex(X.index).to_numpy()
        out_of_fold = np.empty(len(y))
        for j in (0, 1):
            if seasonal:
                b = booster().fit(Xa[fold != j], y[fold != j], base_margin=margin[fold != j])
                out_of_fold[fold == j] = b.predict(Xa[fold == j], base_margin=margin[fold == j])
            else:
                out_of_fold[fold == j] = booster().fit(Xa[fold != j], y[fold != j]).predict(Xa[fold == j])
        repeat = X["frequency"].to_numpy() > 0
        pooled = None
        shapes = {}
        for name, rows in (("one_time", ~repeat), ("repeat", repeat)):
            if rows.sum() >= self.min_users:
                shapes[name] = nb_shape(out_of_fold[rows], y[rows])
            else:
                pooled = nb_shape(out_of_fold, y) if pooled is None else pooled
                shapes[name] = pooled
        self.dispersion_ = pd.Series(shapes, name="dispersion")
        self.window_ = window
        self.shifts_ = shifts
        self.origins_ = used
        self.penalized_origins_ = penalized
        self.n_training_rows_ = int(len(y))
        self.cutoff_ = cut
        self.base_model_ = self._fit_base(features.rfm_summary(transactions, cut, freq=self.freq))[0]
        return self

    @property
    def activity_columns_(self) -> list[str]:
        """The activity features (``features.activity_features`` with windows 4, 13 and 26
        periods) a prediction needs: what a scorer reads from the table of activity."""
        check_is_fitted(self, msg=NOT_FITTED)
        derived = ("btyd_window", "p_alive", "log_first_amount")
        return [c for c in self.feature_names_ if c not in derived and not c.startswith("season_")]

    def _means(self, transactions, t) -> tuple[pd.DataFrame, np.ndarray]:
        """Expected purchases after the fitted cut-off, one column per horizon in ``t``, and the
        shape ``k`` of each user."""
        check_is_fitted(self, msg=NOT_FITTED)
        act = features.activity_features(transactions, self.cutoff_, freq=self.freq, windows=WINDOWS)
        return self._means_of(act, t)

    def _means_of(self, act: pd.DataFrame, t, as_of=None) -> tuple[pd.DataFrame, np.ndarray]:
        """As :meth:`_means` from activity features at any date ``as_of`` (the date the horizons
        start; the fitted cut-off by default): the booster and the base model fitted at the
        cut-off, applied to that activity. With a season calendar the horizon is cut into windows
        of ``window_`` periods, each predicted with its own season shares, and spread over time
        with the base model's decay (without one every window's prediction is the same and this is
        the decay from the first)."""
        check_is_fitted(self, msg=NOT_FITTED)
        ts = np.atleast_1d(np.asarray(t, float))
        if ts.ndim != 1 or not (ts > 0).all():
            raise ValueError(f"t must be positive, got {t}")
        missing = [c for c in self.activity_columns_ if c not in act.columns]
        if missing:
            raise ValueError(
                f"the activity features lack {missing} (features.activity_features with windows {WINDOWS} gives them)"
            )
        btyd = self.base_model_
        x, tx, T, P, codes = btyd._histories(act[["frequency", "recency", "T"]])
        at_window = btyd._conditional_expected(float(self.window_), x, tx, T, P)
        if self._season() is None:
            X = self._design(act[self.activity_columns_], btyd, self.window_)
            direct = self.booster_.predict(X[self.feature_names_].to_numpy(float))
            decay = np.column_stack([btyd._conditional_expected(h, x, tx, T, P) / at_window for h in ts])
            means = pd.DataFrame(direct[:, None] * decay[codes], index=act.index, columns=ts)
        else:
            start = pd.Timestamp(self.cutoff_ if as_of is None else as_of).normalize()
            w = float(self.window_)
            blocks = int(np.ceil(ts.max() / w))
            cum = {}

            def E(h):  # the base model's cumulative expectation, per distinct history
                h = round(float(h), 9)
                if h not in cum:
                    cum[h] = btyd._conditional_expected(h, x, tx, T, P) if h > 0 else np.zeros(len(x))
                return cum[h]

            out = np.zeros((len(act), len(ts)))
            X = self._design(act[self.activity_columns_], btyd, self.window_, self._season_shares(start, self.window_))
            Xa = X[self.feature_names_].to_numpy(float)
            for k in range(blocks):
                offset = self._log_multiplier(start + pd.Timedelta(days=k * w * UNIT_DAYS[self.freq]), self.window_)
                direct = self.booster_.predict(Xa, base_margin=np.full(len(Xa), offset + self.season_level_))
                for j, h in enumerate(ts):
                    if h > k * w:
                        out[:, j] += direct * ((E(min(h, (k + 1) * w)) - E(k * w)) / at_window)[codes]
            means = pd.DataFrame(out, index=act.index, columns=ts)
        shape = np.where(act["frequency"].to_numpy() > 0, self.dispersion_["repeat"], self.dispersion_["one_time"])
        return means, shape[:, None]

    @staticmethod
    def _distribution(mean, shape):
        return stats.nbinom(shape, shape / (shape + np.asarray(mean, float)))

    def predict(self, transactions: pd.DataFrame, t, point: str = "mean"):
        """Purchases in the next ``t`` periods after the fitted cut-off, per user whose first
        purchase is on or before it (``transactions`` after the cut-off are ignored).

        ``point="mean"``: expected purchases (for totals, squared error, CLV);
        ``point="median"``: the median of the predictive distribution (for absolute error).
        ``t`` a number: a Series; a sequence of horizons: a DataFrame with one column per horizon
        (the features are computed once).
        """
        if point not in ("mean", "median"):
            raise ValueError(f"point must be 'mean' or 'median', not {point!r}")
        out, shape = self._means(transactions, t)
        if point == "median":
            out = pd.DataFrame(self._distribution(out.to_numpy(), shape).median(), index=out.index, columns=out.columns)
        if np.ndim(t) == 0:
            return out.iloc[:, 0].rename("median_purchases" if point == "median" else "expected_purchases")
        return out

    def probability_of_n_purchases(self, transactions: pd.DataFrame, t, n):
        """P(exactly ``n`` purchases in the next ``t`` periods), per user (the negative binomial
        around :meth:`predict`'s mean; see the module docstring).

        ``n`` a whole number: a Series; a sequence of them: a DataFrame with one column per ``n``.
        """
        ns = np.atleast_1d(np.asarray(n))
        if ns.ndim != 1 or not np.all((ns >= 0) & (ns == np.floor(ns))):
            raise ValueError(f"n must be a non-negative integer, got {n}")
        if np.ndim(t) != 0:
            raise ValueError(f"t must be one horizon, got {t}")
        means, shape = self._means(transactions, t)
        mean = means.iloc[:, 0]
        pmf = self._distribution(mean.to_numpy()[:, None], shape).pmf(ns.astype(int)[None, :])
        if np.ndim(n) == 0:
            return pd.Series(pmf[:, 0], index=mean.index, name=f"p_{int(ns[0])}_purchases")
        return pd.DataFrame(pmf, index=mean.index, columns=ns.astype(int))

    def probability_no_purchase(self, transactions: pd.DataFrame, t) -> pd.Series:
        """P(no purchase in the next ``t`` periods), per user."""
        return self.probability_of_n_purchases(transactions, t, 0).rename("p_no_purchase")
