"""Churn classifier: a scikit-learn estimator over a DataFrame of mixed columns.

``ChurnClassifier`` wraps a Pipeline (feature engineering, a ColumnTransformer for numeric and
categorical columns, then a model: XGBoost with early stopping, or a logistic baseline on
spline-expanded numeric columns), calibrates its probabilities on held-out predictions
(isotonic or sigmoid, chosen by cross-validated Brier score): for XGBoost the predictions each
bag makes on the split it stops early on, so calibration costs no extra training; for the
logistic model out-of-fold predictions.
Each prediction is explained with exact tree SHAP contributions (XGBoost's ``pred_contribs``)
summed back to the input columns.

The defaults (3 bags, learning rate 0.05) were chosen on Telco against the former 5 bags at 0.02
with 5-fold out-of-fold calibration: the same 5-fold ROC-AUC (0.851 on seeds 0-2) for about a
tenth of the fitting time (docs/benchmarks.md, "Churn classifier").
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.calibration import _SigmoidCalibration
from sklearn.compose import ColumnTransformer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..data.contract import TELCO_SERVICES
from . import boosting as boosting_defaults
from .boosting import BoostingOptions

__all__ = ["ChurnClassifier", "FeatureEngineer"]


class FeatureEngineer(TransformerMixin, BaseEstimator):
    """Adds derived columns when their inputs are present (and nothing otherwise).

    * ``n_services``: number of ``Yes`` among the service columns, plus 1 for internet service;
    * ``charges_ratio``: ``totalcharges / (tenure * monthlycharges)`` (1 when tenure is 0): a
      customer whose past bills differ from today's charge has changed plan;
    * ``log_tenure``: ``log1p(tenure)``.
    """

    def fit(self, X, y=None):
        # Telco-style service columns: a customer's number of services is a strong, simple signal
        self.services_ = [c for c in TELCO_SERVICES if c in X.columns]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X):
        X = X.copy()
        if self.services_:
            yes = sum((X[c].astype(str).str.lower() == "yes").astype(int) for c in self.services_)
            if "internetservice" in X:
                yes = yes + (X["internetservice"].astype(str).str.lower() != "no").astype(int)
            X["n_services"] = yes.astype(float)
        if {"totalcharges", "tenure", "monthlycharges"} <= set(X.columns):
            denom = X["tenure"].astype(float) * X["monthlycharges"].astype(float)
            X["charges_ratio"] = np.where(denom > 0, X["totalcharges"].astype(float) / denom.where(denom > 0, 1.0), 1.0)
        if "tenure" in X:
            X["log_tenure"] = np.log1p(X["tenure"].astype(float))
        return X

    def get_feature_names_out(self, input_features=None):
        names = list(self.feature_names_in_)
        if self.services_:
            names.append("n_services")
        if {"totalcharges", "tenure", "monthlycharges"} <= set(names):
            names.append("charges_ratio")
        if "tenure" in names:
            names.append("log_tenure")
        return np.asarray(names, dtype=object)


class _XGBEarlyStopping(ClassifierMixin, BaseEstimator):
    """Bagged XGBoost (hist): each bag trains on its own stratified split of the training data
    and stops early on the rest; its trees up to the best iteration are kept.

    ``refit=True`` refits each bag on all the data with that number of trees, which costs a
    second training per bag and, on Telco and CDNOW, scored no better (see docs/benchmarks.md).
    """

    def __init__(
        self,
        boosting: BoostingOptions = boosting_defaults.CHURN,
        scale_pos_weight=1.0,
        n_bags=5,
        monotone_constraints=None,
        refit=False,
        random_state=None,
    ):
        self.boosting = boosting
        self.scale_pos_weight = scale_pos_weight
        self.n_bags = n_bags
        self.monotone_constraints = monotone_constraints
        self.refit = refit
        self.random_state = random_state

    def _xgb(self, n_estimators, seed, **extra):
        from xgboost import XGBClassifier

        return XGBClassifier(
            **self.boosting.xgb_params(n_estimators),
            scale_pos_weight=self.scale_pos_weight,
            tree_method="hist",
            eval_metric="logloss",
            n_jobs=1,
            random_state=seed,
            monotone_constraints=self.monotone_constraints,
            **extra,
        )

    def fit(self, X, y):
        from xgboost import DMatrix

        y = np.asarray(y)
        X = np.asarray(X, dtype=float)
        base = self.random_state if self.random_state is not None else 0
        self.boosters_, self.best_n_estimators_ = [], []
        # each row's mean log-odds over the bags that held it out (NaN if none did): what
        # ChurnClassifier calibrates on; not kept in the fitted model (:meth:`held_out_margin`)
        margin_sum, margin_n = np.zeros(len(y)), np.zeros(len(y))
        for b in range(max(1, int(self.n_bags))):
            tr, va = train_test_split(
                np.arange(len(y)), test_size=self.boosting.validation_fraction, stratify=y, random_state=base + b
            )
            probe = self._xgb(None, base + b, early_stopping_rounds=self.boosting.early_stopping_rounds)
            probe.fit(X[tr], y[tr], eval_set=[(X[va], y[va])], verbose=False)
            n = int(probe.best_iteration) + 1
            self.best_n_estimators_.append(n)
            if self.refit:
                self.boosters_.append(self._xgb(n, base + b).fit(X, y).get_booster())
            else:
                self.boosters_.append(probe.get_booster()[:n])
            margin_sum[va] += self.boosters_[-1].predict(DMatrix(X[va]), output_margin=True)
            margin_n[va] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            self._held_out = np.where(margin_n > 0, margin_sum / margin_n, np.nan)
        self.classes_ = np.array([0, 1])
        return self

    def held_out_margin(self) -> np.ndarray:
        """The log-odds of the last fit on the rows each bag held out for early stopping (NaN
        for rows no bag held out), once: the fitted model does not keep them."""
        out = self.__dict__.pop("_held_out", None)
        if out is None:
            raise RuntimeError("held_out_margin() is available once, right after fit")
        return out

    def __setstate__(self, state):
        # models pickled before 2026-11-22 kept one refitted XGBClassifier per bag
        if "models_" in state and "boosters_" not in state:
            state["boosters_"] = [m.get_booster() for m in state.pop("models_")]
            state.setdefault("refit", True)
        # before 2026-12-08 the tree settings were nine attributes (their defaults then: these)
        legacy = replace(boosting_defaults.CHURN, learning_rate=0.02, early_stopping_rounds=100)
        self.__dict__.update(boosting_defaults.from_state(state, legacy))

    def _predict(self, X, **kwargs) -> np.ndarray:
        from xgboost import DMatrix

        dm = DMatrix(np.asarray(X, dtype=float))
        return np.mean([bst.predict(dm, **kwargs) for bst in self.boosters_], axis=0)

    def decision_function(self, X):
        """Mean log-odds over the bags."""
        return self._predict(X, output_margin=True)

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        return (self.decision_function(X) >= 0).astype(int)

    def contributions(self, X) -> np.ndarray:
        """Exact tree SHAP values of the mean log-odds: (n, n_features + 1), last = bias."""
        return self._predict(X, pred_contribs=True)


class ChurnClassifier(ClassifierMixin, BaseEstimator):
    """P(churn) from a user table of numeric and categorical columns.

    Parameters
    ----------
    model : {"xgboost", "logistic"}
    calibration : {"auto", "isotonic", "sigmoid", None}
        Probability calibration fitted on out-of-fold predictions; "auto" picks isotonic,
        sigmoid or no calibration, whichever has the lowest cross-validated Brier score.
    class_weight : {None, "balanced"}
        Re-weight the classes in the model (calibration then maps the scores back to
        probabilities).
    feature_engineering : bool
        Add :class:`FeatureEngineer` columns.
    boosting : :class:`~urm_models.models.boosting.BoostingOptions`
        The XGBoost trees' settings (default :data:`urm_models.models.boosting.CHURN`):
        ``n_estimators`` is an upper bound; early stopping on a validation split picks the count.
    n_bags : int
        XGBoost models whose log-odds are averaged; each trains on its own stratified split and
        keeps its trees up to the best iteration on the rest of the data.
    monotone : "auto", dict or None
        Monotone constraints ``{column: +1 | -1}`` on numeric columns; "auto" constrains churn
        risk to fall with ``tenure`` (and ``log_tenure``) and rise with ``monthlycharges`` when
        those columns exist.
    C, n_knots : logistic settings (inverse L2 strength; spline knots per numeric column)
    cv : int or None
        Folds for out-of-fold predictions to fit the calibration on. None: for XGBoost, the
        predictions of each bag on the rows it held out for early stopping (no extra training);
        for the logistic model, 5 folds.
    random_state : int or None

    Attributes
    ----------
    feature_names_in_, categorical_columns_, numeric_columns_, pipeline_ (fitted on all rows),
    calibration_method_, calibrator_, feature_importance_ (mean |contribution| per input column),
    summary (the same table).
    """

    def __init__(
        self,
        model: str = "xgboost",
        calibration: str | None = "auto",
        class_weight: str | None = None,
        feature_engineering: bool = True,
        boosting: BoostingOptions = boosting_defaults.CHURN,
        n_bags: int = 3,
        monotone="auto",
        C: float = 1.0,
        n_knots: int = 5,
        cv: int | None = None,
        random_state: int | None = None,
    ):
        self.model = model
        self.calibration = calibration
        self.class_weight = class_weight
        self.feature_engineering = feature_engineering
        self.boosting = boosting
        self.n_bags = n_bags
        self.monotone = monotone
        self.C = C
        self.n_knots = n_knots
        self.cv = cv
        self.random_state = random_state

    def __setstate__(self, state):
        # before 2026-12-08 the tree settings were nine attributes of the classifier
        super().__setstate__(boosting_defaults.from_state(state, boosting_defaults.CHURN))

    # -- input checks ---------------------------------------------------------------------
    def _check_X(self, X, fitting: bool) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame of user attributes, not {type(X).__name__}")
        if fitting:
            for bad in ("user_id", "churn"):
                if bad in X.columns:
                    raise ValueError(
                        f"X has column {bad!r}: drop the id and the label before fitting "
                        f"(e.g. X = telco.drop(columns=['user_id', 'churn']))"
                    )
            if X.shape[1] == 0:
                raise ValueError("X has no columns")
        else:
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks column(s) {missing} that the model was fitted on")
            X = X[list(self.feature_names_in_)]
        nan = X.isna().sum()
        nan = nan[nan > 0]
        if len(nan):
            detail = ", ".join(f"{c!r} ({n} rows)" for c, n in nan.items())
            raise ValueError(f"X has missing values in column(s) {detail}; impute or drop them first")
        if fitting:
            const = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
            if const:
                raise ValueError(f"X has constant column(s) {const}: they carry no information; drop them")
        return X

    def _pipeline(self, X: pd.DataFrame, y: np.ndarray) -> Pipeline:
        steps = []
        Xe = X
        if self.feature_engineering:
            fe = FeatureEngineer().fit(X)
            steps.append(("features", fe))
            Xe = fe.transform(X)
        cats = [c for c in Xe.columns if not pd.api.types.is_numeric_dtype(Xe[c]) or pd.api.types.is_bool_dtype(Xe[c])]
        nums = [c for c in Xe.columns if c not in cats]
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        if self.model == "xgboost":
            onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, drop="if_binary")
            pos = float(np.mean(y))
            spw = (1 - pos) / pos if self.class_weight == "balanced" else 1.0
            ct = ColumnTransformer(
                [("num", "passthrough", nums), ("cat", onehot, cats)], verbose_feature_names_out=False
            )
            mono = self.monotone
            if mono == "auto":
                mono = {"tenure": -1, "log_tenure": -1, "monthlycharges": 1}
            cons = None
            if mono:
                names = list(clone(ct).fit(Xe, y).get_feature_names_out())
                unknown = [c for c in mono if c not in names and self.monotone != "auto"]
                if unknown:
                    raise ValueError(f"monotone constraint on column(s) {unknown} not among the numeric features")
                cons = tuple(int(mono.get(n, 0)) for n in names)
            est = _XGBEarlyStopping(
                boosting=self.boosting,
                n_bags=self.n_bags,
                monotone_constraints=cons,
                scale_pos_weight=spw,
                random_state=self.random_state,
            )
        elif self.model == "logistic":
            wide = [c for c in nums if Xe[c].nunique() > 10]
            narrow = [c for c in nums if c not in wide]
            ct = ColumnTransformer(
                [
                    (
                        "spline",
                        Pipeline([("s", SplineTransformer(n_knots=self.n_knots, degree=3)), ("z", StandardScaler())]),
                        wide,
                    ),
                    ("num", StandardScaler(), narrow),
                    ("cat", onehot, cats),
                ],
                verbose_feature_names_out=False,
            )
            est = LogisticRegression(C=self.C, max_iter=5000, class_weight=self.class_weight)
        else:
            raise ValueError(f"model must be 'xgboost' or 'logistic', not {self.model!r}")
        steps += [("columns", ct), ("model", est)]
        return Pipeline(steps)

    # -- fit / predict ----------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y) -> ChurnClassifier:
        X = self._check_X(X, fitting=True)
        y = np.asarray(y)
        if y.shape[0] != len(X):
            raise ValueError(f"y has {y.shape[0]} rows, X has {len(X)}")
        if pd.isna(y).any():
            raise ValueError(f"y has {int(pd.isna(y).sum())} missing labels")
        classes = np.unique(y)
        if len(classes) != 2 or not set(classes.tolist()) <= {0, 1}:
            raise ValueError(f"y must hold both classes 0 and 1; it holds {classes.tolist()}")
        if self.calibration not in ("auto", "isotonic", "sigmoid", None):
            raise ValueError(f"calibration must be 'auto', 'isotonic', 'sigmoid' or None, not {self.calibration!r}")
        y = y.astype(int)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])
        self.categorical_columns_ = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        self.numeric_columns_ = [c for c in X.columns if c not in self.categorical_columns_]

        self.pipeline_ = self._pipeline(X, y).fit(X, y)
        self.calibration_method_ = None
        self.calibrator_ = None
        est = self.pipeline_.named_steps["model"]
        held_out = est.held_out_margin() if isinstance(est, _XGBEarlyStopping) else None
        if self.calibration is not None:
            if self.cv is None and held_out is not None:
                seen = ~np.isnan(held_out)
                held_p, labels = expit(held_out[seen]), y[seen]
            else:
                held_p, labels = self._out_of_fold(X, y), y
            methods = ["isotonic", "sigmoid"] if self.calibration == "auto" else [self.calibration]
            scores = {m: self._cv_calibration_brier(m, held_p, labels) for m in methods}
            if self.calibration == "auto":
                # a boosted model fitted on log loss is often calibrated already: keep it as is
                # unless a calibrator lowers the cross-validated Brier score
                scores["none"] = float(brier_score_loss(labels, held_p))
            self.calibration_scores_ = scores
            best = min(scores, key=scores.get)
            if best != "none":
                self.calibration_method_ = best
                self.calibrator_ = _make_calibrator(best).fit(held_p, labels)
        self._fit_importance(X)
        return self

    def _out_of_fold(self, X, y) -> np.ndarray:
        oof = np.zeros(len(y))
        skf = StratifiedKFold(self.cv or 5, shuffle=True, random_state=self.random_state)
        for tr, te in skf.split(X, y):
            p = self._pipeline(X.iloc[tr], y[tr]).fit(X.iloc[tr], y[tr])
            oof[te] = p.predict_proba(X.iloc[te])[:, 1]
        return oof

    def _cv_calibration_brier(self, method, oof, y) -> float:
        skf = StratifiedKFold(5, shuffle=True, random_state=self.random_state)
        out = np.zeros(len(y))
        for tr, te in skf.split(oof.reshape(-1, 1), y):
            out[te] = _make_calibrator(method).fit(oof[tr], y[tr]).predict(oof[te])
        return brier_score_loss(y, np.clip(out, 0, 1))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        X = self._check_X(X, fitting=False)
        p = self.pipeline_.predict_proba(X)[:, 1]
        if self.calibrator_ is not None:
            p = np.clip(self.calibrator_.predict(p), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict_proba_uncalibrated(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        p = self.pipeline_.predict_proba(self._check_X(X, fitting=False))[:, 1]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    # -- explanations -----------------------------------------------------------------------
    def _contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-user contributions to the (uncalibrated) log-odds, summed per input column;
        engineered columns keep their own names."""
        pre = Pipeline(self.pipeline_.steps[:-1])
        Z = pre.transform(X)
        names = list(pre.get_feature_names_out())
        est = self.pipeline_.named_steps["model"]
        if isinstance(est, _XGBEarlyStopping):
            contrib = est.contributions(Z)[:, :-1]
        else:  # linear model: exact contributions relative to the training mean
            contrib = (Z - self._z_mean) * est.coef_[0]
        source = [self._source_column(n) for n in names]
        df = pd.DataFrame(contrib, columns=names, index=X.index)
        return df.T.groupby(source, sort=False).sum().T

    def _source_column(self, name: str) -> str:
        """The input (or engineered) column that a transformed feature comes from."""
        cols = sorted(
            list(self.feature_names_in_) + ["n_services", "charges_ratio", "log_tenure"], key=len, reverse=True
        )
        for c in cols:
            if name == c or name.startswith(c + "_") or name.startswith(c + " "):
                return c
        return name

    #: rows the global importance is averaged over (a fixed random sample of larger tables:
    #: exact SHAP values on every row would cost more than the fit)
    IMPORTANCE_ROWS = 500

    def _fit_importance(self, X):
        pre = Pipeline(self.pipeline_.steps[:-1])
        self._z_mean = np.asarray(pre.transform(X)).mean(axis=0)
        if len(X) > self.IMPORTANCE_ROWS:
            rows = np.random.default_rng(0).choice(len(X), self.IMPORTANCE_ROWS, replace=False)
            X = X.iloc[np.sort(rows)]
        c = self._contributions(X)
        imp = c.abs().mean().sort_values(ascending=False)
        self.feature_importance_ = pd.DataFrame({"mean_abs_contribution": imp, "share": imp / imp.sum()})
        self.feature_importance_.index.name = "column"

    @property
    def summary(self) -> pd.DataFrame:
        """The package's summary schema (:mod:`urm_models.models.registry`) for what the
        classifier estimates of each input column: ``estimate``, its global importance (the mean
        |contribution to the log-odds|, :attr:`feature_importance_`), and ``share`` of the total;
        no standard error (the importance of one fit)."""
        check_is_fitted(self, "feature_importance_")
        fi = self.feature_importance_
        return pd.DataFrame({"estimate": fi["mean_abs_contribution"], "share": fi["share"]}, index=fi.index)

    def explain(self, X: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        """Each user's top reasons: the columns that push their churn log-odds up the most.

        Returns ``reason_1..top`` (column names) and ``contribution_1..top`` (log-odds), from
        exact tree SHAP values for XGBoost (coefficient x centred feature for the logistic model).
        """
        check_is_fitted(self, "pipeline_")
        X = self._check_X(X, fitting=False)
        c = self._contributions(X)
        vals = c.to_numpy()
        order = np.argsort(-vals, axis=1)[:, :top]
        cols = np.asarray(c.columns)
        out = {}
        for k in range(order.shape[1]):
            out[f"reason_{k + 1}"] = cols[order[:, k]]
            out[f"contribution_{k + 1}"] = vals[np.arange(len(vals)), order[:, k]]
        return pd.DataFrame(out, index=X.index)


def _make_calibrator(method: str):
    if method == "isotonic":
        return _Isotonic()
    return _Sigmoid()


class _Isotonic:
    def fit(self, p, y):
        self.model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        return self

    def predict(self, p):
        return self.model.predict(p)


class _Sigmoid:
    """Platt scaling on the log-odds of the scores."""

    def fit(self, p, y):
        self.model = _SigmoidCalibration().fit(_logit(p), y)
        return self

    def predict(self, p):
        return self.model.predict(_logit(p))


def _logit(p):
    p = np.clip(np.asarray(p, float), 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)
