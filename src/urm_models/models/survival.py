"""Survival models over lifelines: when does a subscriber leave?

``SurvivalModel`` takes a DataFrame with categorical columns (encoded inside, the encoding
travels with the model), a duration column (e.g. ``tenure``) and an event column (1 = churned,
0 = still a customer: censored). Predictions are *conditional on the tenure already reached*:
a customer who has stayed ``t`` periods survives ``u`` more with probability S(t+u)/S(t).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..core.errors import ConvergenceError
from ._base import ModelWarning

__all__ = ["SurvivalModel", "contractual_clv"]


class SurvivalModel(BaseEstimator):
    """Cox proportional hazards (``"cox"``) or a Weibull / log-normal AFT model.

    Parameters
    ----------
    model : {"cox", "weibull", "lognormal"}
    penalizer : float
        L2 penalty (lifelines' ``penalizer``); a little keeps one-hot fits stable.
    strata : list of str, optional
        Cox only: columns to stratify on (each level gets its own baseline hazard), the usual
        remedy when a covariate violates proportional hazards.

    Attributes
    ----------
    fitter_ : the fitted lifelines model;  summary : its coefficient table;
    columns_ : encoded covariates;  duration_col_, event_col_;  max_duration_.
    """

    def __init__(self, model: str = "cox", penalizer: float = 0.001, strata: list[str] | None = None):
        self.model = model
        self.penalizer = penalizer
        self.strata = strata

    # -- encoding -------------------------------------------------------------------------
    def _encode(self, df: pd.DataFrame, fitting: bool = False) -> pd.DataFrame:
        cov = df.drop(columns=[c for c in (self.duration_col_, self.event_col_) if c in df.columns])
        strata = list(self.strata or [])
        if fitting:
            missing = [c for c in strata if c not in cov.columns]
            if missing:
                raise ValueError(f"strata column(s) {missing} not in the data")
            self.input_columns_ = [c for c in cov.columns]
            self.categorical_ = [
                c for c in cov.columns if c not in strata and not pd.api.types.is_numeric_dtype(cov[c])
            ]
        else:
            missing = [c for c in self.input_columns_ if c not in cov.columns]
            if missing:
                raise ValueError(f"data lack column(s) {missing} that the model was fitted on")
            cov = cov[self.input_columns_]
        nan = cov.isna().sum()
        if (nan > 0).any():
            detail = ", ".join(f"{c!r} ({n} rows)" for c, n in nan[nan > 0].items())
            raise ValueError(f"missing values in column(s) {detail}")
        enc = pd.get_dummies(cov, columns=self.categorical_, drop_first=False, dtype=float)
        if fitting:
            # drop one level per categorical (the most frequent) so the design has full rank
            drop = []
            for c in self.categorical_:
                top = cov[c].value_counts().index[0]
                drop.append(f"{c}_{top}")
            enc = enc.drop(columns=drop)
            const = [c for c in enc.columns if c not in strata and enc[c].nunique() <= 1]
            enc = enc.drop(columns=const)
            self.columns_ = list(enc.columns)
        else:
            enc = enc.reindex(columns=self.columns_, fill_value=0.0)
        return enc

    def fit(self, df: pd.DataFrame, duration_col: str, event_col: str) -> SurvivalModel:
        from lifelines import CoxPHFitter, LogNormalAFTFitter, WeibullAFTFitter

        for c in (duration_col, event_col):
            if c not in df.columns:
                raise ValueError(f"column {c!r} is not in the data")
        d = pd.to_numeric(df[duration_col], errors="coerce")
        bad = d.isna() | (d <= 0)
        if bad.any():
            raise ValueError(
                f"column {duration_col!r}: {int(bad.sum())} rows are missing or not "
                f"positive (drop tenure-0 rows: nothing is known about them yet)"
            )
        e = df[event_col]
        if not set(pd.unique(e)) <= {0, 1}:
            raise ValueError(f"column {event_col!r} must be 0 (censored) or 1 (churned)")
        if e.sum() == 0:
            raise ValueError(f"column {event_col!r} has no events: nothing to learn a hazard from")
        self.duration_col_, self.event_col_ = duration_col, event_col
        X = self._encode(df, fitting=True)
        X[duration_col] = d.astype(float).to_numpy()
        X[event_col] = e.astype(int).to_numpy()
        if self.model == "cox":
            fitter = CoxPHFitter(penalizer=self.penalizer)
            kw = {"strata": list(self.strata)} if self.strata else {}
        elif self.model in ("weibull", "lognormal"):
            if self.strata:
                raise ValueError("strata apply to the Cox model only")
            fitter = (WeibullAFTFitter if self.model == "weibull" else LogNormalAFTFitter)(penalizer=self.penalizer)
            kw = {}
        else:
            raise ValueError(f"model must be 'cox', 'weibull' or 'lognormal', not {self.model!r}")
        _fit_lifelines(fitter, X, duration_col, event_col, self.penalizer, **kw)
        self.fitter_ = fitter
        self.max_duration_ = float(d.max())
        self._train = X
        return self

    @property
    def summary(self) -> pd.DataFrame:
        """The package's summary schema (:mod:`urm_models.models.registry`): per coefficient (the
        Cox model's log hazard ratios; an AFT model's, indexed by parameter and covariate)
        ``estimate``, ``std_error``, ``lower_95``, ``upper_95``, then the rest of lifelines'
        table (``exp(coef)`` and its interval, ``z``, ``p``, ...)."""
        check_is_fitted(self, "fitter_")
        table = self.fitter_.summary
        named = {
            "coef": "estimate",
            "se(coef)": "std_error",
            "coef lower 95%": "lower_95",
            "coef upper 95%": "upper_95",
        }
        first = table[list(named)].rename(columns=named)
        return pd.concat([first, table.drop(columns=list(named))], axis=1)

    # -- predictions ----------------------------------------------------------------------
    def _X(self, df):
        check_is_fitted(self, "fitter_")
        X = self._encode(df)
        for c in self.strata or []:
            X[c] = df[c].to_numpy()
        return X

    def predict_survival(self, df: pd.DataFrame, times) -> pd.DataFrame:
        """Unconditional S(t) at ``times`` (rows) for each user (columns, df's index).

        lifelines returns a stratified Cox model's columns grouped by stratum, not in the
        input's order: each row gets its position as its label, and the columns are put back by
        label, never by position (docs/reliability.md, "Wrong user").

        Past the longest duration seen in training (``max_duration_``) Cox's baseline survival
        would stay flat (no event there to step down at): a customer at the longest tenure would
        never leave. There each user's survival goes on with a parametric tail, the constant
        hazard of their own last sixth of the window (``S(t) = S(t_max) exp(-h (t - t_max))``,
        ``h`` the user's mean hazard over ``[t_max - t_max/6, t_max]``). The AFT models
        (Weibull, log-normal) are parametric throughout."""
        times = np.atleast_1d(np.asarray(times, float))
        t_max = getattr(self, "max_duration_", np.inf)
        if self.model != "cox" or not (times > t_max).any():
            return self._lifelines_survival(df, times)
        span = t_max / 6.0
        grid = np.unique(np.r_[np.minimum(times, t_max), t_max - span, t_max])
        s = self._lifelines_survival(df, grid)
        with np.errstate(divide="ignore"):
            log_end = np.log(np.maximum(s.loc[t_max].to_numpy(), 1e-300))
            hazard = np.maximum((np.log(np.maximum(s.loc[t_max - span].to_numpy(), 1e-300)) - log_end) / span, 0.0)
        inside = s.loc[np.minimum(times, t_max)].to_numpy()
        beyond = np.maximum(times - t_max, 0.0)[:, None]
        return pd.DataFrame(inside * np.exp(-hazard[None, :] * beyond), index=times, columns=df.index)

    def _lifelines_survival(self, df: pd.DataFrame, times: np.ndarray) -> pd.DataFrame:
        """lifelines' S(t) at ``times``, the columns matched to ``df``'s rows by label."""
        X = self._X(df)
        X.index = pd.RangeIndex(len(X))
        s = self.fitter_.predict_survival_function(X, times=times)
        if sorted(s.columns) != list(range(len(X))):
            raise RuntimeError(f"lifelines returned {s.shape[1]} survival curves for {len(X)} rows")
        s = s[list(range(len(X)))]
        s.columns = df.index
        return s

    def _current(self, df):
        return pd.to_numeric(df[self.duration_col_]).to_numpy(float)

    def conditional_survival(self, df: pd.DataFrame, horizons) -> pd.DataFrame:
        """S(t + u) / S(t) for each user's current duration t and each horizon u (rows)."""
        horizons = np.atleast_1d(np.asarray(horizons, float))
        t = self._current(df)
        grid = np.unique(np.concatenate([t, (t[None, :] + horizons[:, None]).ravel()]))
        S = self.predict_survival(df, grid)
        Sv = S.to_numpy()
        pos = {v: i for i, v in enumerate(grid)}
        cols = np.arange(len(t))
        base = Sv[[pos[v] for v in t], cols]
        out = np.empty((len(horizons), len(t)))
        for i, u in enumerate(horizons):
            out[i] = Sv[[pos[v] for v in t + u], cols] / np.maximum(base, 1e-300)
        return pd.DataFrame(np.clip(out, 0.0, 1.0), index=horizons, columns=df.index)

    def churn_probability(self, df: pd.DataFrame, horizon: float) -> pd.Series:
        """P(churn within the next ``horizon`` periods | survived to the current duration)."""
        return (1.0 - self.conditional_survival(df, [horizon]).iloc[0]).rename("p_churn")

    def expected_remaining_lifetime(
        self, df: pd.DataFrame, horizon: float | None = None, step: float = 1.0
    ) -> pd.Series:
        """Mean remaining lifetime within the next ``horizon`` periods (restricted mean
        residual life, the integral of S(t+u)/S(t) for u in [0, horizon]); ``horizon``
        defaults to the longest duration seen in training. Beyond that duration Cox's survival
        follows the parametric tail of :meth:`predict_survival`, so a customer at the longest
        tenure is not given the whole horizon."""
        h = float(horizon if horizon is not None else self.max_duration_)
        u = np.arange(0.0, h + step / 2, step)
        cs = self.conditional_survival(df, u).to_numpy()
        return pd.Series(np.trapezoid(cs, u, axis=0), index=df.index, name="expected_remaining_lifetime")

    def median_remaining_lifetime(self, df: pd.DataFrame, horizon: float | None = None, step: float = 1.0) -> pd.Series:
        """Smallest u with S(t+u)/S(t) <= 0.5 (inf if not reached within ``horizon``)."""
        h = float(horizon if horizon is not None else 2 * self.max_duration_)
        u = np.arange(0.0, h + step / 2, step)
        cs = self.conditional_survival(df, u).to_numpy()
        below = cs <= 0.5
        first = np.where(below.any(axis=0), u[np.argmax(below, axis=0)], np.inf)
        return pd.Series(first, index=df.index, name="median_remaining_lifetime")

    def risk_score(self, df: pd.DataFrame) -> np.ndarray:
        """Higher = leaves sooner (Cox: partial hazard; AFT: minus the predicted median)."""
        X = self._X(df)
        if self.model == "cox":
            return np.asarray(self.fitter_.predict_log_partial_hazard(X), float).ravel()
        return -np.asarray(self.fitter_.predict_median(X), float).ravel()

    def score(self, df: pd.DataFrame) -> float:
        """Harrell's concordance index on ``df`` (needs its duration and event columns)."""
        from lifelines.utils import concordance_index

        return float(
            concordance_index(pd.to_numeric(df[self.duration_col_]), -self.risk_score(df), df[self.event_col_])
        )

    def proportional_hazards_test(self) -> pd.DataFrame:
        """Cox only: Schoenfeld-residual test per covariate (rank time transform); the
        ``violates`` column flags p < 0.05. Stratify on a violating categorical, or add a
        time interaction, when it matters for the use at hand."""
        from lifelines.statistics import proportional_hazard_test

        if self.model != "cox":
            raise ValueError("the proportional-hazards test applies to the Cox model")
        check_is_fitted(self, "fitter_")
        res = proportional_hazard_test(self.fitter_, self._train, time_transform="rank")
        out = res.summary[["test_statistic", "p"]].copy()
        out["violates"] = out["p"] < 0.05
        return out.sort_values("p")


def contractual_clv(
    model: SurvivalModel,
    df: pd.DataFrame,
    charge_col: str,
    horizon: int = 24,
    margin: float = 1.0,
    discount_rate: float = 0.01,
) -> pd.Series:
    """Expected discounted remaining revenue per user:
    ``sum_{k=1..horizon} S(t+k)/S(t) * charge * margin / (1+d)^k`` for current duration t."""
    if charge_col not in df.columns:
        raise ValueError(f"column {charge_col!r} is not in the data")
    k = np.arange(1, int(horizon) + 1, dtype=float)
    cs = model.conditional_survival(df, k).to_numpy()
    disc = (1.0 + discount_rate) ** -k
    value = (cs * disc[:, None]).sum(axis=0) * df[charge_col].to_numpy(float) * margin
    return pd.Series(value, index=df.index, name="clv")


def _separating(X: pd.DataFrame, duration_col: str, event_col: str) -> list[str]:
    """Covariates that (nearly) tell churners from the others: constant among one group and not
    overall (complete separation: their coefficient runs off without a penalty)."""
    events = X[event_col].to_numpy() == 1
    cols = [c for c in X.columns if c not in (duration_col, event_col)]

    def flat(frame):
        return {c for c in cols if frame[c].nunique() <= 1}

    return sorted((flat(X.loc[events]) | flat(X.loc[~events])) - flat(X))


def _fit_lifelines(fitter, X: pd.DataFrame, duration_col: str, event_col: str, penalizer: float, **kw) -> None:
    """Fit a lifelines model and take over its convergence troubles, as the BTYD models do:
    a fit that failed is our ConvergenceError, a completed fit with a caveat our ModelWarning;
    each names the cause (the columns, when we can tell them) and the fix. Other warnings pass
    through as they were (nothing is silenced)."""
    from lifelines.exceptions import ApproximationWarning, ConvergenceWarning, StatisticalWarning
    from lifelines.exceptions import ConvergenceError as LifelinesConvergenceError

    name = type(fitter).__name__

    def why() -> tuple[str, str]:
        cols = _separating(X, duration_col, event_col)
        cause = (
            f"column(s) {cols} separate churners from the others (constant within one group)"
            if cols
            else "collinear or nearly constant columns"
        )
        fix = f"raise the penalizer (penalizer={max(10 * penalizer, 0.01):g}; now {penalizer:g})"
        return cause, fix + (f" or drop {cols}" if cols else "")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded here, every one handled below
        try:
            fitter.fit(X, duration_col=duration_col, event_col=event_col, **kw)
        except LifelinesConvergenceError as exc:
            cause, fix = why()
            raise ConvergenceError(
                f"{name} did not converge ({str(exc).splitlines()[0][:100]}): {cause}. Try to {fix}."
            ) from None
    for w in caught:
        text = str(w.message).strip().splitlines()[0]
        if issubclass(w.category, ConvergenceWarning):
            cause, fix = why()
            if any(k in text for k in ("failed to converge", "suspiciously close", "norm(delta)")):
                raise ConvergenceError(f"{name} did not converge ({text[:100]}): {cause}. Try to {fix}.")
            warnings.warn(
                f"{name}: {text[:200]} Cause: {cause}; its coefficients are unreliable. Fix: {fix}.",
                ModelWarning,
                stacklevel=3,
            )
        elif issubclass(w.category, (StatisticalWarning, ApproximationWarning)):
            cause, fix = why()
            warnings.warn(
                f"{name}: {text[:200]} Cause: {cause}; the standard errors in summary are not to be "
                f"trusted. Fix: {fix}.",
                ModelWarning,
                stacklevel=3,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
