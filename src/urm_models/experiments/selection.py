"""The decision a campaign supports, chosen honestly: every candidate judged on users it never saw.

Picking the best of several learners on one held-out split and reporting that same split's
Qini overstates what the winner does on fresh users (on Hillstrom's men's e-mail about 3x), and
the pick itself is mostly noise: run inside a training part, it was worse than keeping the
default in 10 of the 13 splits where it changed learner. So (docs/architecture.md, "Campaigns
and decisions"):

* **Cross-fitting.** The users are split into ``folds`` by a keyed hash of their ids, within
  each arm x (outcome > 0) stratum (:func:`hashed_folds`: the same users in any row order get the
  same folds). Every candidate is fitted on the other folds and predicts the held-out one, so
  each user's score comes from models that never saw them, and every user counts.
* **The rankings** (S, T, X, DR learners and the **response model**, each arm's own outcome
  model: who responds when contacted) are compared by their out-of-fold Qini coefficient,
  averaged over the treatment arms, with a paired bootstrap (users resampled within each arm, the
  same draws for every ranking). The default S-learner stays unless another ranks
  **significantly** better (the interval of the paired difference above 0): a close call goes to
  the default. The registry's metric is the chosen ranking's out-of-fold Qini with its interval.
* **The policies** (each contacting at most ``share`` of the users, in money at most what the
  economics allow) are valued on the same out-of-fold assignments by inverse-propensity
  weighting, in ``value_outcome`` per user over contacting no one, net of the contact costs:
  **personalised** by each ranking, **best single arm** (the arm with the best measured lift x
  value - cost on the training folds, to a random ``share`` of the users, or to everyone without
  a budget) and **no one**. The simpler policy wins a close call: the best single arm if its
  value is positive, else no one; a personalised policy (by the chosen ranking) only where its
  paired gain over that is positive beyond noise (the 95% interval above 0).
* **Is there heterogeneity to personalise?** (:func:`effect_heterogeneity`) For a reader: the best
  linear predictor of the effect (Chernozhukov et al. 2018): the AIPW pseudo-outcome of each
  held-out user regressed on the centred out-of-fold predicted effect; the intercept is the
  average effect, the slope 1 where the predicted differences are right and 0 where the
  learner found nothing; and the measured effect by fifth of the predicted one (calibration by
  group).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..evaluation.uplift import qini_coefficients
from ..models import UpliftModel
from ..models.uplift import shared_boosters
from .policy import (
    UpliftPolicy,
    arm_values,
    compare_policies,
    hashed_rank,
    incremental_value,
    score_policy,
    single_arm_policy,
    uplift_policy,
    value_per_unit,
    value_terms,
)

#: candidate rankings: the product's learners, then the response model (a ranking by P(outcome |
#: contacted), no effect model)
NAMES = {"s": "S", "t": "T", "x": "X", "dr": "DR"}
RESPONSE = "response model"
DEFAULT = "S"


def hashed_folds(keys, strata, k: int, seed: int = 0) -> np.ndarray:
    """Fold numbers ``0 .. k-1`` for users ``keys`` (ids), stratified by ``strata``: within each
    stratum the users sorted by a keyed hash of id and ``seed`` are dealt round the folds. The
    same users in any row order get the same folds."""
    if int(k) != k or k < 2:
        raise ValueError(f"folds must be a whole number >= 2, got {k}")
    keys = pd.Index(keys).astype(str)
    if keys.has_duplicates:
        raise ValueError("user ids must be unique to fold them")
    ranks = hashed_rank(keys, seed)
    strata = pd.Series(np.asarray(strata, dtype=object)).astype(str).to_numpy()
    fold = np.empty(len(keys), dtype=int)
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        order = idx[np.argsort(ranks[idx], kind="stable")]
        fold[order] = np.arange(len(order)) % k
    return fold


@dataclass
class CrossFit:
    """Out-of-fold predictions of every candidate for every user of a campaign."""

    users: pd.Index
    arm: pd.Series
    y: pd.Series
    fold: np.ndarray
    control: str
    treatments: tuple
    #: ranking name -> users x treatment arms (effects; the response model: P(outcome | arm))
    scores: dict = field(default_factory=dict)
    #: users x arms: each arm's own outcome model (T), for the pseudo-outcomes
    outcomes: pd.DataFrame | None = None


def cross_fit(
    campaign,
    outcome: str,
    *,
    learners=("s", "t", "x", "dr"),
    folds: int = 5,
    seed: int = 0,
    model=None,
    response: bool = True,
):
    """Every learner in ``learners`` and (``response``) the response model fitted on all folds
    but one and predicting that one (:func:`hashed_folds`), for every fold. ``model``: the
    :class:`~urm_models.models.UpliftModel` whose settings the learners share. Without the
    response model there are no per-arm outcome predictions for :func:`effect_heterogeneity`."""
    from sklearn.base import clone

    unknown = [lr for lr in learners if lr not in NAMES]
    if unknown or not learners:
        raise ValueError(f"learners must be among {list(NAMES)}, got {list(learners)}")
    data = campaign.data.set_index("user_id")
    X, arm = campaign.X, data["arm"].astype(str)
    y = data[outcome].astype(float)
    control = str(campaign.control)
    fold = hashed_folds(X.index, arm + "|" + (y > 0).astype(str), folds, seed)
    base = model if model is not None else UpliftModel(control=control, random_state=seed)
    parts = {NAMES[lr]: [] for lr in learners}
    if response:
        parts[RESPONSE] = []
    outcomes = []
    for k in range(folds):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        fitted = {}
        # the T-learner holds the response; the X-learner's first stage is its outcome models, fitted once
        with shared_boosters():
            for lr in dict.fromkeys([*learners, *(["t"] if response else [])]):
                m = clone(base).set_params(learner=lr, control=control)
                fitted[lr] = m.fit(X.iloc[tr], y.iloc[tr].to_numpy(), arm.iloc[tr])
                if lr in learners:
                    parts[NAMES[lr]].append(fitted[lr].predict(X.iloc[te]))
        if response:
            resp = fitted["t"].response(X.iloc[te])
            resp.columns = [str(c) for c in resp.columns]
            outcomes.append(resp)
            parts[RESPONSE].append(resp[list(campaign.treatments)])
    cf = CrossFit(
        users=X.index,
        arm=arm,
        y=y,
        fold=fold,
        control=control,
        treatments=tuple(str(a) for a in campaign.treatments),
    )
    for name, p in parts.items():
        frame = pd.concat(p).reindex(X.index)
        frame.columns = [str(c) for c in frame.columns]
        cf.scores[name] = frame
    cf.outcomes = pd.concat(outcomes).reindex(X.index) if outcomes else None
    return cf


def _arm_weights(arm: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap draws as weights (draws x users: how often each user was drawn), the users
    resampled within each arm (the arms' sizes kept); the first row is the users as they are."""
    rng = np.random.default_rng(seed)
    w = np.zeros((int(n_boot) + 1, len(arm)))
    w[0] = 1.0
    for a in np.unique(arm):
        g = np.flatnonzero(arm == a)
        for b in range(1, int(n_boot) + 1):
            w[b, g] = np.bincount(rng.integers(0, len(g), len(g)), minlength=len(g))
    return w


def compare_rankings(cf: CrossFit, *, n_boot: int = 200, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Out-of-fold Qini of every ranking per treatment arm and averaged over them (``qini``),
    with percentile bootstrap intervals, and its paired difference from the default S-learner
    (``vs_default``, with its interval; the same resampled users for every ranking)."""
    arm = cf.arm.to_numpy()
    y = cf.y.to_numpy()
    names = list(cf.scores)
    default = DEFAULT if DEFAULT in names else names[0]
    w = _arm_weights(arm, n_boot, seed)
    per_arm = {}
    for a in cf.treatments:
        rows = np.flatnonzero(np.isin(arm, [a, cf.control]))
        t = (arm[rows] == a).astype(int)
        per_arm[a] = qini_coefficients(y[rows], {n: cf.scores[n][a].to_numpy()[rows] for n in names}, t, w[:, rows])
    mean = sum(per_arm.values()) / len(per_arm)  # draws x rankings
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    table = []
    for n in names:
        boot, diff = mean[n].to_numpy()[1:], (mean[n] - mean[default]).to_numpy()[1:]
        row = {f"qini[{a}]": float(per_arm[a][n].iloc[0]) for a in cf.treatments}
        row.update(
            qini=float(mean[n].iloc[0]),
            qini_lower=float(np.percentile(boot, lo)) if n_boot else np.nan,
            qini_upper=float(np.percentile(boot, hi)) if n_boot else np.nan,
            vs_default=float(mean[n].iloc[0] - mean[default].iloc[0]),
            vs_default_lower=float(np.percentile(diff, lo)) if n_boot else np.nan,
            vs_default_upper=float(np.percentile(diff, hi)) if n_boot else np.nan,
        )
        table.append({"ranking": n, **row})
    out = pd.DataFrame(table).set_index("ranking")
    out.attrs["default"] = default
    return out


def choose_ranking(table: pd.DataFrame) -> tuple[str, str]:
    """The default unless another ranking's out-of-fold Qini is above it beyond noise (the lower
    end of the paired interval above 0); among those, the largest gain. Returns the name and why."""
    default = table.attrs.get("default", DEFAULT)
    better = table[(table.index != default) & (table["vs_default_lower"] > 0)]
    if better.empty:
        best = table["qini"].idxmax()
        if best == default:
            why = f"the default {default}-learner ranks best out of fold"
        else:
            r = table.loc[best]
            why = (
                f"{best} ranks {r['vs_default']:+.4f} Qini against the default {default}-learner out of fold, within "
                f"noise (95% {r['vs_default_lower']:+.4f} to {r['vs_default_upper']:+.4f}): the default stays"
            )
        return default, why
    best = better["vs_default"].idxmax()
    r = table.loc[best]
    return best, (
        f"{best} ranks better than the default {default}-learner out of fold beyond noise: Qini "
        f"{r['vs_default']:+.4f} (95% {r['vs_default_lower']:+.4f} to {r['vs_default_upper']:+.4f})"
    )


def effect_heterogeneity(
    cf: CrossFit, ranking: str, *, groups: int = 5, alpha: float = 0.05
) -> tuple[pd.DataFrame, dict]:
    """Does the predicted effect tell users apart? Per treatment arm, on the out-of-fold
    predictions of ``ranking`` (an effect learner): the best linear predictor (the AIPW
    pseudo-outcome regressed on 1 and the centred predicted effect, HC1 errors: ``average_effect``
    and ``slope`` with intervals; ``slope`` 1: the predicted differences are right, 0: none
    found) and the measured against the predicted effect by ``groups`` groups of the predicted
    effect (``calibration[arm]``: a table per arm)."""
    if ranking == RESPONSE:
        raise ValueError("the response model predicts outcomes, not effects: test an effect learner")
    z = stats.norm.ppf(1 - alpha / 2)
    arm, y = cf.arm.to_numpy(), cf.y.to_numpy()
    rows, calib = [], {}
    for a in cf.treatments:
        pair = np.isin(arm, [a, cf.control])
        t = (arm[pair] == a).astype(float)
        e = t.mean()
        mu1 = cf.outcomes[a].to_numpy()[pair]
        mu0 = cf.outcomes[cf.control].to_numpy()[pair]
        yy = y[pair]
        phi = mu1 - mu0 + t * (yy - mu1) / e - (1 - t) * (yy - mu0) / (1 - e)
        s = cf.scores[ranking][a].to_numpy()[pair]
        sc = s - s.mean()
        D = np.column_stack([np.ones(len(s)), sc])
        beta, *_ = np.linalg.lstsq(D, phi, rcond=None)
        resid = phi - D @ beta
        n, p = D.shape
        bread = np.linalg.pinv(D.T @ D)
        meat = (D * resid[:, None] ** 2).T @ D
        se = np.sqrt(np.diag(bread @ meat @ bread) * n / (n - p))
        rows.append(
            {
                "arm": a,
                "average_effect": beta[0],
                "average_effect_lower": beta[0] - z * se[0],
                "average_effect_upper": beta[0] + z * se[0],
                "slope": beta[1],
                "slope_lower": beta[1] - z * se[1],
                "slope_upper": beta[1] + z * se[1],
                "slope_p_value": float(2 * stats.norm.sf(abs(beta[1] / se[1]))) if se[1] > 0 else np.nan,
                "predicted_sd": float(s.std()),
                "users": int(pair.sum()),
            }
        )
        order = np.argsort(-s, kind="stable")
        g = []
        for i, idx in enumerate(np.array_split(order, groups), start=1):
            m, sd = phi[idx].mean(), phi[idx].std(ddof=1) / np.sqrt(len(idx))
            g.append(
                {
                    "group": i,
                    "users": len(idx),
                    "predicted": float(s[idx].mean()),
                    "measured": float(m),
                    "lower": float(m - z * sd),
                    "upper": float(m + z * sd),
                }
            )
        calib[a] = pd.DataFrame(g).set_index("group")
    table = pd.DataFrame(rows).set_index("arm")
    table["heterogeneity"] = np.where(
        table["slope_lower"] > 0,
        "found: the predicted effect ranks the measured one",
        "not found: the slope's interval holds 0",
    )
    return table, calib


def _fold_campaign(campaign, rows: np.ndarray):
    from dataclasses import replace

    return replace(campaign, data=campaign.data.iloc[rows].reset_index(drop=True))


def compare_policies_out_of_fold(
    campaign,
    cf: CrossFit,
    outcome: str,
    *,
    value_outcome: str,
    cost=0.0,
    share: float | None = 0.3,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """The policies of every ranking, the best single arm and no one, each user assigned by the
    models and measurements of the folds that did not hold them; values by inverse-propensity
    weighting (:func:`~urm_models.experiments.policy.policy_value`)."""
    control = cf.control
    treatments = list(cf.treatments)
    costs = arm_values(cost, treatments, "cost")
    parts: dict[str, list] = {f"personalised: {n}": [] for n in cf.scores}
    parts["best single arm"] = []
    parts["no one"] = []
    best_arms, values_by_fold = [], []
    ids = campaign.data["user_id"].astype(str)
    for k in np.unique(cf.fold):
        te = cf.fold == k
        sub = _fold_campaign(campaign, np.flatnonzero(ids.isin(cf.users[~te]).to_numpy()))
        values, _ = value_per_unit(sub, outcome, value_outcome, alpha)
        values = {str(a): v for a, v in values.items()}
        values_by_fold.append(values)
        users = cf.users[te]
        for n, sc in cf.scores.items():
            s = sc.loc[users]
            if n == RESPONSE:
                resp = pd.DataFrame({a: s[a] * values[a] for a in treatments}, index=users)
                pol = score_policy(resp, control=control, share=share if share is not None else 1.0)
            else:
                pol = uplift_policy(incremental_value(s, value=values, cost=costs), control=control, share=share)
            parts[f"personalised: {n}"].append(pol)
        ytr, atr = cf.y[~te], cf.arm[~te]
        lift = {a: (ytr[atr == a].mean() - ytr[atr == control].mean()) * values[a] - costs[a] for a in treatments}
        best = max(lift, key=lift.get)
        best_arms.append(best)
        parts["best single arm"].append(single_arm_policy(users, best, control=control, share=share, seed=seed))
        parts["no one"].append(single_arm_policy(users, control, control=control))
    policies = {n: pd.concat(p).reindex(cf.users) for n, p in parts.items()}
    propensity = cf.arm.value_counts(normalize=True).to_dict()
    yv = campaign.data.set_index("user_id")[value_outcome].astype(float).reindex(cf.users)
    kw = dict(control=control, propensity=propensity, cost=costs, alpha=alpha)
    table = compare_policies(policies, yv, cf.arm, **kw)
    terms = {n: value_terms(p, yv, cf.arm, **kw) for n, p in policies.items()}
    return {
        "values": table,
        "terms": terms,
        "policies": policies,
        "best_arms": best_arms,
        "values_by_fold": values_by_fold,
    }


def paired(terms_a: np.ndarray, terms_b: np.ndarray, alpha: float = 0.05) -> dict:
    """Mean of ``a - b`` over the same users with its normal interval."""
    d = np.asarray(terms_a) - np.asarray(terms_b)
    est, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
    z = stats.norm.ppf(1 - alpha / 2)
    return {"difference": est, "std_error": se, "lower": est - z * se, "upper": est + z * se}


@dataclass
class Decision:
    """What :func:`choose` found: the rankings' out-of-fold Qini (``rankings``) and the chosen
    ``ranking`` (``ranking_reason``); the heterogeneity test of the chosen effect learner
    (``heterogeneity``, ``calibration``); the policies' out-of-fold values (``policies``), the
    chosen ``mode`` ("personalised", "single arm", "no one"), its ``arm`` and ``reason``; the
    chosen policy against each other (``differences``); the measured value of a unit of the
    outcome (``value_per_unit``, ``basis``)."""

    rankings: pd.DataFrame
    ranking: str
    ranking_reason: str
    heterogeneity: pd.DataFrame
    calibration: dict
    policies: pd.DataFrame
    differences: pd.DataFrame
    mode: str
    arm: str | None
    reason: str
    value_per_unit: dict
    basis: str
    share: float | None
    folds: int
    cross_fit: CrossFit = field(repr=False)
    policy_assignments: dict = field(repr=False, default_factory=dict)

    @property
    def learner(self) -> str:
        """The learner the product refits: the chosen one, the T-learner for the response model."""
        inv = {v: k for k, v in NAMES.items()}
        return "t" if self.ranking == RESPONSE else inv[self.ranking]

    @property
    def chosen_policy(self) -> str:
        return {
            "personalised": f"personalised: {self.ranking}",
            "single arm": "best single arm",
            "no one": "no one",
        }[self.mode]


def choose(
    campaign,
    outcome: str,
    *,
    value_outcome: str | None = None,
    cost=0.0,
    share: float | None = 0.3,
    learners=("s", "t", "x", "dr"),
    folds: int = 5,
    seed: int = 0,
    model=None,
    n_boot: int = 200,
    alpha: float = 0.05,
) -> Decision:
    """Cross-fit every candidate on ``campaign`` and choose the ranking and the policy (module
    docstring). ``cost``: per contact, a number or ``{arm: cost}``, in ``value_outcome``'s unit;
    ``share``: at most this share of the users contacted (None: no limit)."""
    value_outcome = value_outcome or outcome
    cf = cross_fit(campaign, outcome, learners=learners, folds=folds, seed=seed, model=model)
    rankings = compare_rankings(cf, n_boot=n_boot, seed=seed, alpha=alpha)
    ranking, ranking_reason = choose_ranking(rankings)
    effect_learner = ranking if ranking != RESPONSE else rankings.attrs["default"]
    het, calib = effect_heterogeneity(cf, effect_learner, alpha=alpha)
    pol = compare_policies_out_of_fold(
        campaign, cf, outcome, value_outcome=value_outcome, cost=cost, share=share, seed=seed, alpha=alpha
    )
    values, terms = pol["values"], pol["terms"]
    money = campaign.unit(value_outcome)
    single = values.loc["best single arm"]
    arms_seen = pd.Series(pol["best_arms"]).value_counts()
    all_values, basis = value_per_unit(campaign, outcome, value_outcome, alpha)
    all_values = {str(a): v for a, v in all_values.items()}
    costs = arm_values(cost, list(cf.treatments), "cost")
    data = campaign.data
    lift = {
        a: (data.loc[data["arm"] == a, outcome].mean() - data.loc[data["arm"] == cf.control, outcome].mean())
        * all_values[a]
        - float(costs[a])
        for a in cf.treatments
    }
    best_arm = max(lift, key=lift.get)
    if single["value"] > 0:
        fallback = "best single arm"
        fallback_words = (
            f"the best single arm ({best_arm}; {single['value']:.4f} {money} per user, 95% {single['lower']:.4f} to "
            f"{single['upper']:.4f}, out of fold)"
        )
    else:
        fallback = "no one"
        fallback_words = f"no contact (the best single arm earns {single['value']:.4f} {money} per user out of fold)"
    personal = f"personalised: {ranking}"
    gain = paired(terms[personal], terms[fallback], alpha)
    if gain["lower"] > 0:
        mode = "personalised"
        reason = (
            f"personalised by the {ranking}{'-learner' if ranking != RESPONSE else ''}: its out-of-fold gain over "
            f"{fallback_words} is {gain['difference']:+.4f} {money} per user (95% {gain['lower']:+.4f} to "
            f"{gain['upper']:+.4f}), above 0 beyond noise"
        )
    else:
        mode = "single arm" if fallback == "best single arm" else "no one"
        reason = (
            f"{'not personalised' if mode == 'single arm' else 'no contact'}: the {ranking} policy's out-of-fold gain "
            f"over {fallback_words} is {gain['difference']:+.4f} {money} per user (95% {gain['lower']:+.4f} to "
            f"{gain['upper']:+.4f}), within noise: the simpler policy"
        )
    chosen = {"personalised": personal, "single arm": "best single arm", "no one": "no one"}[mode]
    diffs = pd.DataFrame({n: paired(terms[chosen], terms[n], alpha) for n in terms if n != chosen}).T
    diffs.index.name = "against"
    if len(arms_seen) > 1:
        reason += f" (the folds' best single arm varied: {arms_seen.to_dict()})"
    return Decision(
        rankings=rankings,
        ranking=ranking,
        ranking_reason=ranking_reason,
        heterogeneity=het,
        calibration=calib,
        policies=values,
        differences=diffs,
        mode=mode,
        arm=best_arm if mode == "single arm" else (best_arm if mode == "personalised" else None),
        reason=reason,
        value_per_unit=all_values,
        basis=basis,
        share=share,
        folds=folds,
        cross_fit=cf,
        policy_assignments=pol["policies"],
    )


def fit_policy(
    campaign,
    outcome: str,
    decision: Decision,
    *,
    value_outcome: str | None = None,
    cost=0.0,
    budget: float | None = None,
    seed: int = 0,
    model=None,
):
    """The chosen decision refitted on every user of ``campaign``: an
    :class:`~urm_models.experiments.policy.UpliftPolicy` of the chosen learner (the T-learner for
    the response model), the measured value of a unit of ``outcome``, the ``cost``, the budget
    (``decision.share`` and the money ``budget``) and the mode and its reason."""
    from sklearn.base import clone

    value_outcome = value_outcome or outcome
    base = model if model is not None else UpliftModel(control=campaign.control, random_state=seed)
    m = clone(base).set_params(learner=decision.learner, control=campaign.control)
    X = campaign.X
    data = campaign.data.set_index("user_id")
    m.fit(X, data[outcome].to_numpy(float), data["arm"].astype(str))
    ctrl = data.loc[data["arm"].astype(str) == str(campaign.control), outcome].astype(float)
    baseline = {"mean": float(ctrl.mean()), "sd": float(ctrl.std(ddof=1)), "binary": campaign.binary(outcome)}
    return UpliftPolicy(
        m,
        decision.value_per_unit,
        cost=cost,
        outcome=outcome,
        value_outcome=value_outcome,
        basis=decision.basis,
        window=campaign.window,
        unit=campaign.unit(value_outcome),
        features_spec=campaign.features_spec,
        mode=decision.mode,
        arm=decision.arm if decision.mode == "single arm" else None,
        ranking="response" if decision.ranking == RESPONSE else "effect",
        share=decision.share,
        budget=budget,
        reason=decision.reason,
        seed=seed,
        baseline=baseline,
    )


__all__ = [
    "hashed_folds",
    "cross_fit",
    "CrossFit",
    "compare_rankings",
    "choose_ranking",
    "effect_heterogeneity",
    "compare_policies_out_of_fold",
    "choose",
    "Decision",
    "fit_policy",
    "paired",
]
