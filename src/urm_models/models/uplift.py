"""Uplift models: what a contact changes for each user, learned from a randomised campaign.

A response model answers "who will buy if contacted?"; a churn model "who will leave if left
alone?". Neither is the question a campaign asks: **whose outcome does the contact change?**
Users who buy anyway (sure things) and users who leave anyway (lost causes) score high on one
of those models and gain nothing from a contact; some users are put off by it. The uplift model
estimates each user's conditional average treatment effect ``tau_a(x) = E[Y | x, arm a] -
E[Y | x, control]`` for every treatment arm ``a``, from users randomised between the arms.

Four meta-learners over gradient-boosted trees (XGBoost; the package's boosted models: each
booster stops early on a held-out fifth of its rows, stratified by arm and outcome). The rows
are put in one canonical order before anything is fitted (sorted by a hash of their content:
features, outcome, arm), so the validation fifths, the cross-fitting halves and the trees depend
on the users and the seed, never on the order the rows came in:

* ``"s"`` (single model, the default): one model of the outcome on the features and the arm;
  the effect is its prediction with the arm set to ``a`` minus with the arm set to the control.
  It shrinks effects towards zero where the arm does not help the fit: the most stable ranking
  where effects are small against the noise, as in real campaigns (Hillstrom: docs/benchmarks.md,
  "Uplift"). Its default trees are two levels deep (``max_depth=2``): an arm and one feature per
  tree, enough for effects that differ by user attributes; on Hillstrom's two arms and two
  binary outcomes, six splits each, depth 2 ranked better than 3 in all four (Qini 0.067 vs
  0.062 on women's e-mail visits). Strong, interacting effects want deeper trees (on simulated
  persuadables and sleeping dogs depth 4 beat 2): set ``max_depth``.
* ``"t"`` (two models): one outcome model per arm; the effect is their difference.
* ``"x"`` (Kuenzel et al. 2019): the T-learner's models impute each user's effect (a treated
  user's outcome minus the control model's prediction, and the other way round), two
  effect models learn those, weighted by the arm's share.
* ``"dr"`` (doubly robust, Kennedy 2023): outcome models fitted on two halves of the users,
  each predicting the other half (cross-fitting), give the AIPW pseudo-outcome
  ``mu_a - mu_c + 1[arm a](y - mu_a)/e_a - 1[control](y - mu_c)/e_c``, whose mean is the effect
  even where the outcome models are wrong; an effect model learns it.

The propensities ``e`` are the arms' shares: the campaign must be randomised (a campaign that
chose whom to contact needs a propensity model, which this does not fit). Binary outcomes
(visit, conversion) use classifiers, amounts (spend, purchases) regressors: squared error, or,
for amounts that are never negative and mostly zero (spend: 99% of Hillstrom's customers spend
nothing), the Tweedie loss, whose trees split on the arm where squared error stops after one
tree that never does (every effect ~0 where the measured average effect of the women's e-mail on
spend is $0.42).

**Calibrated to the measured average effect.** Each arm's predicted effects are shifted so
that their mean over the training users equals the arm's average effect estimated on them
(AIPW, ``summary``): the ranking is the learner's, the level the experiment's. Without it the
S-learner's shrinkage put the mean predicted effect of a contact on spend at a third of the
measured one, and a policy weighing an arm's effect against its cost contacted too few.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from . import boosting as boosting_defaults
from .boosting import BoostingOptions

__all__ = ["UpliftModel", "LEARNERS", "canonical_order", "shared_boosters"]

LEARNERS = ("s", "t", "x", "dr")

#: boosters fitted inside :func:`shared_boosters`, by everything that determines them
_SHARED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("urm_shared_boosters", default=None)


@contextlib.contextmanager
def shared_boosters():
    """Within this block, a booster that another :class:`UpliftModel` already fitted on the same
    rows, outcome, seed and settings is reused instead of fitted again. XGBoost's ``hist`` on one
    thread is deterministic, so the models are the ones a fit outside the block gives; what is
    saved is the time: the X-learner's first stage is the T-learner's outcome models, which
    cross-fitting (``experiments.selection.cross_fit``) fits for both on every fold."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def canonical_order(Z: np.ndarray, y: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """The positions of the rows sorted by a 64-bit hash of their content (encoded features,
    outcome, arm): the same users in any order give the same sequence (identical rows are
    interchangeable), so whatever is drawn by position afterwards depends on the seed only. The
    numbers are hashed in single precision: features summed in parallel (DuckDB) differ in their
    last bits between runs, and that must not move a user to another validation fifth."""
    frame = pd.DataFrame(np.asarray(Z, dtype=float).astype(np.float32))
    frame["_y"] = np.asarray(y, dtype=float).astype(np.float32)
    frame["_arm"] = pd.Series(arm, dtype=object).astype(str).to_numpy()
    key = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return np.argsort(key, kind="stable")


class UpliftModel(BaseEstimator):
    """Per-user effect of each treatment arm against the control.

    Parameters
    ----------
    learner : {"s", "t", "x", "dr"}
        The meta-learner (module docstring).
    control : the control arm's label (default 0: arms given as 0/1 with 0 the control).
    outcome : {"auto", "binary", "continuous"}
        ``"auto"``: binary when ``y`` holds only 0 and 1.
    loss : {"auto", "squared", "tweedie", "poisson"}
        The outcome models' loss for amounts (binary outcomes: log loss): ``"auto"`` is
        squared error; ``"tweedie"`` (compound Poisson-gamma, variance power ``tweedie_power``)
        suits amounts that are mostly zero with a heavy right tail (spend), ``"poisson"``
        counts (purchases). Effect models (X, DR) always use squared error.
    tweedie_power : float in (1, 2)
    boosting : :class:`~urm_models.models.boosting.BoostingOptions`
        The boosters' settings (default :data:`urm_models.models.boosting.UPLIFT`):
        ``n_estimators`` is an upper bound, early stopping on ``validation_fraction`` of the
        rows picks the count.
    calibrate : bool
        Shift each arm's effects so that their mean on the training users is the measured
        average effect (module docstring); ``effect_offset_`` holds the shifts.
    random_state : int

    Attributes
    ----------
    arms_ (control first), treatments_, control_, outcome_type_ ("binary" or "continuous"),
    propensity_ (each arm's share of the training users), feature_names_in_, models_ (the
    fitted boosters by role), n_trees_ (trees each kept), loss_ (the loss the amounts were
    fitted with), effect_offset_ (the calibration shift of each arm), summary (the average effect of each
    arm on the training users, estimated by AIPW with the fitted outcome models, with standard
    errors and 95% intervals; ``mean_prediction`` and ``share_positive`` of the predicted effects).
    """

    def __init__(
        self,
        learner: str = "s",
        control=0,
        outcome: str = "auto",
        loss: str = "auto",
        tweedie_power: float = 1.5,
        boosting: BoostingOptions = boosting_defaults.UPLIFT,
        calibrate: bool = True,
        random_state: int = 0,
    ):
        self.learner = learner
        self.control = control
        self.outcome = outcome
        self.loss = loss
        self.tweedie_power = tweedie_power
        self.boosting = boosting
        self.calibrate = calibrate
        self.random_state = random_state

    def __setstate__(self, state):
        # before 2026-12-08 the tree settings were nine attributes of the model
        super().__setstate__(boosting_defaults.from_state(state, boosting_defaults.UPLIFT))

    # -- inputs -----------------------------------------------------------------------------
    def _frame(self, X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X), columns=[f"x{i}" for i in range(np.asarray(X).shape[1])])
        return X

    def _encode(self, X: pd.DataFrame, fitting: bool = False) -> np.ndarray:
        if fitting:
            cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])]
            nums = [c for c in X.columns if c not in cats]
            self.columns_ = ColumnTransformer(
                [
                    ("num", "passthrough", nums),
                    ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats),
                ],
                verbose_feature_names_out=False,
            )
            Xc = X.copy()
            for c in cats:
                Xc[c] = Xc[c].astype(object).where(Xc[c].notna(), "(missing)").astype(str)
            return self.columns_.fit_transform(Xc).astype(float)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks column(s) {missing} that the uplift model was fitted on")
        Xc = X[list(self.feature_names_in_)].copy()
        for c in self.columns_.transformers_[1][2]:
            Xc[c] = Xc[c].astype(object).where(Xc[c].notna(), "(missing)").astype(str)
        return self.columns_.transform(Xc).astype(float)

    # -- boosters ---------------------------------------------------------------------------
    def _booster(self, classify: bool, seed: int, effect: bool = False):
        from xgboost import XGBClassifier, XGBRegressor

        cls = XGBClassifier if classify else XGBRegressor
        extra = {}
        if not classify and not effect and self.loss_ in ("tweedie", "poisson"):
            extra = (
                {"objective": "reg:tweedie", "tweedie_variance_power": self.tweedie_power}
                if self.loss_ == "tweedie"
                else {"objective": "count:poisson"}
            )
            extra["eval_metric"] = (
                f"tweedie-nloglik@{self.tweedie_power:g}" if self.loss_ == "tweedie" else "poisson-nloglik"
            )
        return cls(
            **{"eval_metric": "logloss" if classify else "rmse", **extra},
            **self.boosting.xgb_params(),
            tree_method="hist",
            n_jobs=1,
            random_state=seed,
            early_stopping_rounds=self.boosting.early_stopping_rounds,
        )

    def _fit_one(
        self, name: str, Z: np.ndarray, y: np.ndarray, strata: np.ndarray, classify: bool, effect: bool = False
    ):
        """One booster, stopped early on a held-out share of its rows (stratified by ``strata``)."""
        seed = int(self.random_state or 0) + len(self.models_)
        counts = pd.Series(strata).value_counts()
        stratify = strata if counts.min() >= 2 else None
        tr, va = train_test_split(
            np.arange(len(y)), test_size=self.boosting.validation_fraction, random_state=seed, stratify=stratify
        )
        model = self._booster(classify, seed, effect)
        shared, key = _SHARED.get(), None
        if shared is not None:
            digest = hashlib.blake2b(digest_size=16)
            for part in (Z, y, tr, va):
                digest.update(np.ascontiguousarray(part).tobytes())
            key = (name, repr(sorted(model.get_params().items())), Z.shape, digest.hexdigest())
        if key is not None and key in shared:
            model = shared[key]
        else:
            model.fit(Z[tr], y[tr], eval_set=[(Z[va], y[va])], verbose=False)
            if key is not None:
                shared[key] = model
        self.models_[name] = model
        self.n_trees_[name] = int(model.best_iteration) + 1
        return model

    def _predict_one(self, model, Z: np.ndarray) -> np.ndarray:
        if hasattr(model, "predict_proba"):
            return model.predict_proba(Z)[:, 1]
        return model.predict(Z)

    def _arm_columns(self, arm_labels: np.ndarray) -> np.ndarray:
        """One indicator column per treatment arm (the control is all zeros)."""
        return np.column_stack([(arm_labels == a).astype(float) for a in self.treatments_])

    # -- fit --------------------------------------------------------------------------------
    def fit(self, X, y, arm) -> UpliftModel:
        """Learn the effects from users ``X`` (a DataFrame of pre-campaign features: numbers and
        categories), their outcome ``y`` and the ``arm`` each was randomised to."""
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, not {self.learner!r}")
        if self.outcome not in ("auto", "binary", "continuous"):
            raise ValueError(f"outcome must be 'auto', 'binary' or 'continuous', not {self.outcome!r}")
        if self.loss not in ("auto", "squared", "tweedie", "poisson"):
            raise ValueError(f"loss must be 'auto', 'squared', 'tweedie' or 'poisson', not {self.loss!r}")
        if self.loss == "tweedie" and not 1 < self.tweedie_power < 2:
            raise ValueError(f"tweedie_power must lie in (1, 2), got {self.tweedie_power}")
        X = self._frame(X)
        y = np.asarray(y, dtype=float)
        arm = np.asarray(arm, dtype=object)
        if not (len(X) == len(y) == len(arm)):
            raise ValueError(f"X, y and arm must have one row per user: {len(X)}, {len(y)}, {len(arm)}")
        if not np.isfinite(y).all():
            raise ValueError(f"y has {int((~np.isfinite(y)).sum())} missing or infinite values")
        if self.loss in ("tweedie", "poisson") and (y < 0).any():
            raise ValueError(f"loss={self.loss!r} needs outcomes >= 0; y has {int((y < 0).sum())} negative values")
        labels = list(dict.fromkeys(arm.tolist()))
        if self.control not in labels:
            raise ValueError(f"the control arm {self.control!r} is not among the arms {labels}: pass control=")
        if len(labels) < 2:
            raise ValueError(f"only one arm ({labels}): uplift needs a control and a treatment")
        binary = bool(np.isin(y, (0.0, 1.0)).all())
        if self.outcome == "binary" and not binary:
            raise ValueError("outcome='binary' but y holds other values than 0 and 1")
        self.outcome_type_ = (
            "binary" if (self.outcome == "binary" or (self.outcome == "auto" and binary)) else "continuous"
        )
        classify = self.outcome_type_ == "binary"
        self.control_ = self.control
        self.arms_ = [self.control, *sorted((a for a in labels if a != self.control), key=str)]
        self.treatments_ = self.arms_[1:]
        small = {a: int((arm == a).sum()) for a in self.arms_ if (arm == a).sum() < 20}
        if small:
            raise ValueError(f"arms with fewer than 20 users cannot be learned: {small}")
        self.propensity_ = pd.Series({a: float((arm == a).mean()) for a in self.arms_})
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.loss_ = "binary" if classify else self._amount_loss(y)
        self.models_, self.n_trees_ = {}, {}
        Z = self._encode(X, fitting=True)
        order = canonical_order(Z, y, arm)
        Z, y, arm = Z[order], y[order], arm[order]
        strata = np.array([f"{a}|{v > 0}" for a, v in zip(arm, y, strict=True)], dtype=object)
        fit = getattr(self, f"_fit_{self.learner}")
        fit(Z, y, arm, strata, classify)
        self.effect_offset_ = pd.Series(0.0, index=self.treatments_, dtype=float)
        self._memo = {}  # the training rows' predictions, made once for the summary and the calibration
        try:
            summary = self._training_summary(Z, y, arm)
            if self.calibrate:
                self.effect_offset_ = (summary["estimate"] - summary["mean_prediction"]).astype(float)
                effects = self._effects(Z)
                for a in self.treatments_:
                    pair = (arm == a) | (arm == self.control)
                    summary.loc[a, "mean_prediction"] = float(np.mean(effects[a][pair]))
                    summary.loc[a, "share_positive"] = float(np.mean(effects[a][pair] > 0))
        finally:
            del self._memo
        self._summary = summary
        return self

    def _amount_loss(self, y: np.ndarray) -> str:
        """``loss="auto"`` for amounts: Tweedie when they are never negative and at least half are
        zero (spend, purchases in a short window), squared error otherwise."""
        if self.loss != "auto":
            return self.loss
        return "tweedie" if (y >= 0).all() and (y == 0).mean() >= 0.5 else "squared"

    def _fit_s(self, Z, y, arm, strata, classify):
        self._fit_one("outcome", np.column_stack([Z, self._arm_columns(arm)]), y, strata, classify)

    def _fit_t(self, Z, y, arm, strata, classify):
        for a in self.arms_:
            rows = arm == a
            self._fit_one(f"outcome[{a}]", Z[rows], y[rows], strata[rows], classify)

    def _fit_x(self, Z, y, arm, strata, classify):
        self._fit_t(Z, y, arm, strata, classify)
        mu_c = self._predict_one(self.models_[f"outcome[{self.control}]"], Z)
        for a in self.treatments_:
            mu_a = self._predict_one(self.models_[f"outcome[{a}]"], Z)
            treated, ctrl = arm == a, arm == self.control
            self._fit_one(f"effect_treated[{a}]", Z[treated], y[treated] - mu_c[treated], strata[treated], False, True)
            self._fit_one(f"effect_control[{a}]", Z[ctrl], mu_a[ctrl] - y[ctrl], strata[ctrl], False, True)

    def _fit_dr(self, Z, y, arm, strata, classify):
        # cross-fitting: each half's outcome predictions come from models fitted on the other half
        rng = np.random.default_rng(int(self.random_state or 0))
        fold = np.zeros(len(y), dtype=int)
        for s in np.unique(strata):
            idx = np.flatnonzero(strata == s)
            fold[idx] = rng.permutation(len(idx)) % 2
        mu = {a: np.zeros(len(y)) for a in self.arms_}
        for k in (0, 1):
            train, other = fold != k, fold == k
            for a in self.arms_:
                rows = train & (arm == a)
                model = self._fit_one(f"outcome[{a}]#{k}", Z[rows], y[rows], strata[rows], classify)
                mu[a][other] = self._predict_one(model, Z[other])
        for a in self.treatments_:
            pair = (arm == a) | (arm == self.control)
            e_a = (arm[pair] == a).mean()
            t = (arm == a).astype(float)
            c = (arm == self.control).astype(float)
            phi = mu[a] - mu[self.control] + t * (y - mu[a]) / e_a - c * (y - mu[self.control]) / (1 - e_a)
            self._fit_one(f"effect[{a}]", Z[pair], phi[pair], strata[pair], False, True)

    # -- predict ----------------------------------------------------------------------------
    def _check(self):
        check_is_fitted(self, "models_", msg="this %(name)s is not fitted yet: call fit(X, y, arm) first")

    def predict_outcomes(self, X) -> pd.DataFrame:
        """Expected outcome of each user under each arm (columns: the arms, control first). The
        S- and T-learners model them directly; the X- and DR-learners add their effects to
        the control's outcome model. The treatment arms' outcomes carry the calibration shift,
        so that their differences from the control's are :meth:`predict`'s effects."""
        self._check()
        X = self._frame(X)
        Z = self._encode(X)
        out = self._outcomes(Z)
        return pd.DataFrame(out, index=X.index)[self.arms_]

    def _outcomes(self, Z) -> dict:
        if self.learner in ("s", "t"):
            raw = self._model_outcomes(Z)
            return {a: raw[a] + (self.effect_offset_[a] if a != self.control else 0.0) for a in self.arms_}
        base = self._control_outcome(Z)
        eff = self._effects(Z)
        return {self.control: base, **{a: base + eff[a] for a in self.treatments_}}

    def _remembered(self, what: str, Z, compute):
        """``compute()``, once per ``what`` and array ``Z`` while :meth:`fit` runs: its summary and
        calibration ask for the same predictions on the training rows up to three times."""
        memo = self.__dict__.get("_memo")
        if memo is None:
            return compute()
        key = (what, id(Z))
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def _control_outcome(self, Z):
        return self._remembered("control", Z, lambda: self._control_outcome_of(Z))

    def _control_outcome_of(self, Z):
        if self.learner == "dr":
            return np.mean([self._predict_one(self.models_[f"outcome[{self.control}]#{k}"], Z) for k in (0, 1)], axis=0)
        return self._predict_one(self.models_[f"outcome[{self.control}]"], Z)

    def _effects(self, Z) -> dict:
        """Each treatment arm's effect per user: the learner's, plus the calibration shift."""
        out = self._remembered("effects", Z, lambda: self._learner_effects(Z))
        return {a: out[a] + self.effect_offset_[a] for a in self.treatments_}

    def _learner_effects(self, Z) -> dict:
        if self.learner == "x":
            out = {}
            for a in self.treatments_:
                g = self.propensity_[a] / (self.propensity_[a] + self.propensity_[self.control])
                tau1 = self.models_[f"effect_treated[{a}]"].predict(Z)
                tau0 = self.models_[f"effect_control[{a}]"].predict(Z)
                out[a] = g * tau0 + (1 - g) * tau1
        elif self.learner == "dr":
            out = {a: self.models_[f"effect[{a}]"].predict(Z) for a in self.treatments_}
        else:
            outcomes = self._model_outcomes(Z)
            out = {a: outcomes[a] - outcomes[self.control] for a in self.treatments_}
        return out

    def _model_outcomes(self, Z) -> dict:
        """The outcome models' predictions per arm from encoded features (the S-learner's one
        model with the arm set; otherwise each arm's own outcome model: the T-learner's, and the
        X-learner's first stage, which is the same)."""
        return self._remembered("outcomes", Z, lambda: self._model_outcomes_of(Z))

    def _model_outcomes_of(self, Z) -> dict:
        if self.learner == "s":
            model = self.models_["outcome"]
            return {
                a: self._predict_one(model, np.column_stack([Z, self._arm_columns(np.full(len(Z), a, dtype=object))]))
                for a in self.arms_
            }
        return {a: self._predict_one(self.models_[f"outcome[{a}]"], Z) for a in self.arms_}

    def response(self, X) -> pd.DataFrame:
        """The response model inside the learner: each arm's own outcome model, i.e. P(outcome |
        x, arm) learned from that arm's users only (T- and X-learners): who responds when
        contacted. Targeting by it ranks the likeliest responders, not the users a contact
        changes; it is the baseline every uplift ranking is compared with."""
        self._check()
        if self.learner not in ("t", "x"):
            raise ValueError(f"the {self.learner!r}-learner has no per-arm outcome models: use learner='t' or 'x'")
        X = self._frame(X)
        return pd.DataFrame(self._model_outcomes(self._encode(X)), index=X.index)[self.arms_]

    def predict(self, X) -> pd.DataFrame:
        """The effect of each treatment arm against the control per user (columns: the
        treatment arms), in the outcome's unit: a change of probability for a binary outcome."""
        self._check()
        X = self._frame(X)
        Z = self._encode(X)
        return pd.DataFrame(self._effects(Z), index=X.index)[self.treatments_]

    # -- summary ----------------------------------------------------------------------------
    def _training_summary(self, Z, y, arm) -> pd.DataFrame:
        effects = self._effects(Z)
        mu = self._outcomes(Z)
        rows = []
        z = stats.norm.ppf(0.975)
        for a in self.treatments_:
            pair = (arm == a) | (arm == self.control)
            e = (arm[pair] == a).mean()
            t = (arm[pair] == a).astype(float)
            yy, m1, m0 = y[pair], mu[a][pair], mu[self.control][pair]
            psi = m1 - m0 + t * (yy - m1) / e - (1 - t) * (yy - m0) / (1 - e)
            est, se = psi.mean(), psi.std(ddof=1) / np.sqrt(len(psi))
            rows.append(
                {
                    "arm": a,
                    "estimate": est,
                    "std_error": se,
                    "lower_95": est - z * se,
                    "upper_95": est + z * se,
                    "mean_prediction": float(np.mean(effects[a])),
                    "share_positive": float(np.mean(effects[a] > 0)),
                    "users": int(pair.sum()),
                }
            )
        return pd.DataFrame(rows).set_index("arm")

    @property
    def summary(self) -> pd.DataFrame:
        """Per treatment arm: the average effect on the training users (AIPW with the fitted outcome
        models: ``estimate``, ``std_error``, ``lower_95``, ``upper_95``), the mean predicted effect
        and the share of users predicted to gain."""
        self._check()
        return self._summary
