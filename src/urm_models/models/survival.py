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
            self.categorical_ = [c for c in cov.columns if c not in strata and not pd.api.types.is_numeric_dtype(cov[c])]
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
            raise ValueError(f"column {duration_col!r}: {int(bad.sum())} rows are missing or not "
                             f"positive (drop tenure-0 rows: nothing is known about them yet)")
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter.fit(X, duration_col=duration_col, event_col=event_col, **kw)
        self.fitter_ = fitter
        self.max_duration_ = float(d.max())
        self._train = X
        return self

    @property
    def summary(self) -> pd.DataFrame:
        check_is_fitted(self, "fitter_")
        return self.fitter_.summary

    # -- predictions ----------------------------------------------------------------------
    def _X(self, df):
        check_is_fitted(self, "fitter_")
        X = self._encode(df)
        for c in self.strata or []:
            X[c] = df[c].to_numpy()
        return X

    def predict_survival(self, df: pd.DataFrame, times) -> pd.DataFrame:
        """Unconditional S(t) at ``times`` (rows) for each user (columns, df's index)."""
        times = np.atleast_1d(np.asarray(times, float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = self.fitter_.predict_survival_function(self._X(df), times=times)
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

    def expected_remaining_lifetime(self, df: pd.DataFrame, horizon: float | None = None,
                                    step: float = 1.0) -> pd.Series:
        """Mean remaining lifetime within the next ``horizon`` periods (restricted mean
        residual life, the integral of S(t+u)/S(t) for u in [0, horizon]); ``horizon``
        defaults to the longest duration seen in training (beyond it the data say nothing)."""
        h = float(horizon if horizon is not None else self.max_duration_)
        u = np.arange(0.0, h + step / 2, step)
        cs = self.conditional_survival(df, u).to_numpy()
        return pd.Series(np.trapezoid(cs, u, axis=0), index=df.index, name="expected_remaining_lifetime")

    def median_remaining_lifetime(self, df: pd.DataFrame, horizon: float | None = None,
                                  step: float = 1.0) -> pd.Series:
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.model == "cox":
                return np.asarray(self.fitter_.predict_log_partial_hazard(X), float).ravel()
            return -np.asarray(self.fitter_.predict_median(X), float).ravel()

    def score(self, df: pd.DataFrame) -> float:
        """Harrell's concordance index on ``df`` (needs its duration and event columns)."""
        from lifelines.utils import concordance_index

        return float(concordance_index(pd.to_numeric(df[self.duration_col_]), -self.risk_score(df),
                                       df[self.event_col_]))

    def proportional_hazards_test(self) -> pd.DataFrame:
        """Cox only: Schoenfeld-residual test per covariate (rank time transform); the
        ``violates`` column flags p < 0.05. Stratify on a violating categorical, or add a
        time interaction, when it matters for the use at hand."""
        from lifelines.statistics import proportional_hazard_test

        if self.model != "cox":
            raise ValueError("the proportional-hazards test applies to the Cox model")
        check_is_fitted(self, "fitter_")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = proportional_hazard_test(self.fitter_, self._train, time_transform="rank")
        out = res.summary[["test_statistic", "p"]].copy()
        out["violates"] = out["p"] < 0.05
        return out.sort_values("p")


def contractual_clv(model: SurvivalModel, df: pd.DataFrame, charge_col: str, horizon: int = 24,
                    margin: float = 1.0, discount_rate: float = 0.01) -> pd.Series:
    """Expected discounted remaining revenue per user:
    ``sum_{k=1..horizon} S(t+k)/S(t) * charge * margin / (1+d)^k`` for current duration t."""
    if charge_col not in df.columns:
        raise ValueError(f"column {charge_col!r} is not in the data")
    k = np.arange(1, int(horizon) + 1, dtype=float)
    cs = model.conditional_survival(df, k).to_numpy()
    disc = (1.0 + discount_rate) ** -k
    value = (cs * disc[:, None]).sum(axis=0) * df[charge_col].to_numpy(float) * margin
    return pd.Series(value, index=df.index, name="clv")
