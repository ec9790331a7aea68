"""Whom to contact, with which arm, and what that is worth: policies from measured effects.

A **policy** gives each user an arm (the control label for "no contact"). The uplift policy
(:func:`uplift_policy`) contacts the users whose expected incremental value is largest:
``effect of the arm on the outcome x the outcome's value - the arm's cost``, each user with the
arm that pays most for them, as many as the budget allows and only where it pays. The policies
it replaces (:func:`score_policy`): targeting by a response model (the likeliest buyers), by
churn risk (the likeliest leavers), contacting everyone with one arm, no one.

Which policy is better is measured on held-out users of a randomised campaign, without any
model's word for it (:func:`policy_value`): a user whose random arm matches what the policy
would give them shows what the policy earns; weighting them by the inverse of that arm's
share (inverse-propensity weighting) gives an unbiased estimate of the policy's mean outcome
per user. The doubly robust version adds an outcome model's predictions for every user and
weights only its errors: also unbiased (the shares are known in an experiment), with a smaller
variance when the model is good. Each value is reported against contacting no one (incremental
outcome per user, net of the contact costs), with a 95% interval from the per-user terms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..models import UpliftModel
from .analysis import lift_table


def arm_values(value, arms, what: str) -> dict:
    if isinstance(value, dict):
        missing = [a for a in arms if a not in value]
        if missing:
            raise ValueError(f"{what} lacks arm(s) {missing}")
        return {a: value[a] for a in arms}
    return {a: value for a in arms}


def incremental_value(effects: pd.DataFrame, *, value=1.0, cost=0.0) -> pd.DataFrame:
    """Per user and treatment arm: ``effect x value - cost``. ``effects`` are the uplift model's
    predictions (users x treatment arms, in the outcome's unit); ``value`` what one unit of the
    outcome is worth (a number, a per-user Series such as each user's CLV, or ``{arm: ...}``);
    ``cost`` what one contact with the arm costs (a number or ``{arm: cost}``)."""
    values = arm_values(value, effects.columns, "value")
    costs = arm_values(cost, effects.columns, "cost")
    out = {}
    for a in effects.columns:
        v = values[a]
        if isinstance(v, pd.Series):
            v = v.reindex(effects.index)
            if v.isna().any():
                raise ValueError(f"value has no entry for {int(v.isna().sum())} users of the effects")
        out[a] = effects[a].astype(float) * v - float(costs[a])
    return pd.DataFrame(out, index=effects.index)


def _ranked(best: pd.Series) -> pd.Index:
    """Users by ``best`` descending, ties by user (so that a ranking never depends on row order)."""
    order = (
        best.to_frame("v")
        .assign(_u=best.index.astype(str))
        .sort_values(["v", "_u"], ascending=[False, True], kind="mergesort")
    )
    return order.index


def _cap(n: int, share: float | None, budget: float | None, costs: pd.Series | None) -> np.ndarray:
    """How many of the ranked users fit under ``share`` of the users and the money ``budget``."""
    limit = n if share is None else int(np.floor(share * n + 1e-9))
    if budget is not None and costs is not None:
        spent = np.cumsum(costs.to_numpy(float))
        limit = min(limit, int(np.searchsorted(spent, budget + 1e-9, side="right")))
    return max(0, limit)


def uplift_policy(
    net: pd.DataFrame, *, control, share: float | None = None, budget: float | None = None, cost=0.0
) -> pd.Series:
    """Each user's arm from their expected incremental value per arm (``net``:
    :func:`incremental_value`): the arm with the largest value, for the users where it is
    positive, best first, at most ``share`` of all users and ``budget`` in contact costs
    (``cost``: a number or ``{arm: cost}``); everyone else gets ``control``."""
    _check_limits(share, budget)
    best_arm = net.idxmax(axis=1)
    best = net.max(axis=1)
    order = _ranked(best[best > 0])
    costs = pd.Series(arm_values(cost, net.columns, "cost"))
    k = _cap(len(net), share, budget, costs[best_arm[order]].set_axis(order) if budget is not None else None)
    out = pd.Series(control, index=net.index, dtype=object, name="arm")
    chosen = order[:k]
    out[chosen] = best_arm[chosen]
    return out


def score_policy(
    scores: pd.DataFrame, *, control, share: float | None = None, budget: float | None = None, cost=0.0
) -> pd.Series:
    """Targeting by a score instead of an effect (a response model's predicted outcome under
    each arm, or a churn model's risk): each user's best-scoring arm, the highest scores first,
    up to ``share`` of the users or ``budget``; positive or not (a score says who, not whether
    it pays)."""
    _check_limits(share, budget)
    if share is None and budget is None:
        raise ValueError("score targeting needs a share or a budget: a score never says when to stop")
    best_arm = scores.idxmax(axis=1)
    order = _ranked(scores.max(axis=1))
    costs = pd.Series(arm_values(cost, scores.columns, "cost"))
    k = _cap(len(scores), share, budget, costs[best_arm[order]].set_axis(order) if budget is not None else None)
    out = pd.Series(control, index=scores.index, dtype=object, name="arm")
    out[order[:k]] = best_arm[order[:k]]
    return out


def hashed_rank(index: pd.Index, seed: int = 0) -> np.ndarray:
    """A random order of the users drawn from their ids (a keyed hash of id and ``seed``): the
    same users in any row order get the same ranks, and a user keeps their draw across runs."""
    keys = pd.Index(index).astype(str)
    h = pd.util.hash_pandas_object(pd.Series(keys + f"\x1f{int(seed)}"), index=False).to_numpy()
    order = np.lexsort((keys.to_numpy(), h))
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[order] = np.arange(len(keys))
    return ranks


def single_arm_policy(index: pd.Index, arm, *, control, share: float | None = None, seed: int = 0) -> pd.Series:
    """Everyone (or a random ``share``, drawn by :func:`hashed_rank`) gets ``arm``: the blanket
    campaign."""
    out = pd.Series(control, index=index, dtype=object, name="arm")
    if share is None:
        out[:] = arm
    else:
        _check_limits(share, None)
        k = int(np.floor(share * len(index) + 1e-9))
        out.iloc[np.flatnonzero(hashed_rank(index, seed) < k)] = arm
    return out


def _check_limits(share, budget):
    if share is not None and not 0 <= share <= 1:
        raise ValueError(f"share must lie in [0, 1], got {share}")
    if budget is not None and budget < 0:
        raise ValueError(f"budget must be non-negative, got {budget}")


def policy_value(
    policy: pd.Series,
    y: pd.Series,
    arm: pd.Series,
    *,
    control,
    propensity: dict | pd.Series,
    outcomes: pd.DataFrame | None = None,
    cost=0.0,
    alpha: float = 0.05,
) -> dict:
    """What ``policy`` (an arm per user) earns per user over contacting no one, estimated on
    users randomised to ``arm`` with known shares ``propensity`` (``{arm: share}``): net of the
    contact ``cost`` (a number or ``{arm: cost}``), in ``y``'s unit.

    Without ``outcomes``: inverse-propensity weighting, ``1[A = pi] y / e(pi) - 1[A = c] y /
    e(c) - cost(pi)`` averaged over the users. With ``outcomes`` (an outcome model's predictions
    per arm for these users, fitted on other users): the doubly robust estimate, ``mu(pi) +
    1[A = pi](y - mu(pi)) / e(pi)`` minus the same for the control. Returns ``value`` (per
    user), ``std_error``, ``lower``, ``upper``, ``total`` (over these users), ``contacted``
    (share of users the policy contacts), ``method``.
    """
    idx = policy.index
    y = y.reindex(idx).astype(float)
    a = arm.reindex(idx)
    if y.isna().any() or a.isna().any():
        raise ValueError("y and arm need a value for every user of the policy")
    e = pd.Series(propensity, dtype=float)
    arms = [x for x in e.index]
    unknown = sorted(set(policy.unique()) - set(arms), key=str)
    if unknown:
        raise ValueError(f"the policy gives arm(s) {unknown} that the campaign did not randomise: {arms}")
    costs = pd.Series(arm_values(cost, [x for x in arms if x != control], "cost"), dtype=float)
    costs[control] = 0.0
    pi = policy.to_numpy(object)
    av = a.to_numpy(object)
    yv = y.to_numpy()
    e_pi = e.reindex(pi).to_numpy()
    e_c = float(e[control])
    match_pi = (av == pi).astype(float)
    match_c = (av == control).astype(float)
    if outcomes is None:
        psi = match_pi * yv / e_pi - match_c * yv / e_c
        method = "inverse-propensity weighting"
    else:
        mu = outcomes.reindex(idx)
        if mu.isna().any().any():
            raise ValueError("outcomes need a prediction for every user of the policy and every arm")
        mu_pi = mu.to_numpy()[np.arange(len(idx)), mu.columns.get_indexer(pi)]
        mu_c = mu[control].to_numpy()
        psi = (mu_pi + match_pi * (yv - mu_pi) / e_pi) - (mu_c + match_c * (yv - mu_c) / e_c)
        method = "doubly robust"
    psi = psi - costs.reindex(pi).to_numpy()
    n = len(psi)
    est = float(psi.mean())
    se = float(psi.std(ddof=1) / np.sqrt(n))
    z = stats.norm.ppf(1 - alpha / 2)
    return {
        "value": est,
        "std_error": se,
        "lower": est - z * se,
        "upper": est + z * se,
        "total": est * n,
        "contacted": float((pi != control).mean()),
        "users": n,
        "method": method,
    }


def compare_policies(policies: dict, y: pd.Series, arm: pd.Series, **kwargs) -> pd.DataFrame:
    """:func:`policy_value` of each named policy, best first."""
    rows = {name: policy_value(p, y, arm, **kwargs) for name, p in policies.items()}
    out = pd.DataFrame(rows).T
    for c in ("value", "std_error", "lower", "upper", "total", "contacted"):
        out[c] = out[c].astype(float)
    out["users"] = out["users"].astype(int)
    out.index.name = "policy"
    return out.sort_values("value", ascending=False)


# ------------------------------------------------------------------------------ on a campaign


def value_per_unit(campaign, outcome: str, value_outcome: str, alpha: float = 0.05) -> tuple[dict, str]:
    """What one unit of ``outcome`` is worth in ``value_outcome`` for each treatment arm,
    measured: the lift of ``value_outcome`` over the lift of ``outcome`` (on Hillstrom, the
    incremental dollars per incremental visit). Returns ``({arm: value}, basis)``. Where the
    lift of ``outcome`` is not significant the ratio is noise: the arm's mean ``value_outcome``
    per unit of ``outcome`` among its users is used instead, and the basis says so."""
    if outcome == value_outcome:
        return {a: 1.0 for a in campaign.treatments}, f"{value_outcome} itself"
    lo, lv = lift_table(campaign, outcome, alpha=alpha), lift_table(campaign, value_outcome, alpha=alpha)
    values, notes = {}, []
    data = campaign.data
    for a in campaign.treatments:
        if lo.loc[a, "lift_lower"] > 0 and lv.loc[a, "lift"] > 0:
            values[a] = float(lv.loc[a, "lift"] / lo.loc[a, "lift"])
        else:
            rows = data["arm"] == a
            units = data.loc[rows, outcome].sum()
            values[a] = float(data.loc[rows, value_outcome].sum() / units) if units else 0.0
            notes.append(a)
    basis = f"measured: lift in {value_outcome} / lift in {outcome} per arm"
    if notes:
        basis += (
            f"; for {notes} (lift in {outcome} not significant) the mean {value_outcome} per {outcome} of the "
            "arm's users, not a measured effect"
        )
    return values, basis


def evaluate_policies(
    campaign,
    outcome: str,
    *,
    value_outcome: str | None = None,
    share: float = 0.3,
    cost=0.0,
    folds: int = 5,
    seed: int = 0,
    model=None,
    alpha: float = 0.05,
    test_users=None,
) -> dict:
    """Targeting policies compared on held-out users of ``campaign``, by cross-fitting: the users
    are split into ``folds`` (stratified by arm and outcome); each fold's users get the arms the
    policies choose with models fitted on the other folds only, so every user is held out from
    the models that decide for them, and all users count in the comparison.

    Policies (each contacting at most ``share`` of the users): **uplift** (``model``, default
    :class:`~urm_models.models.UpliftModel`, on ``outcome``: the arm with the largest expected
    incremental ``value_outcome`` net of ``cost``, where positive); **response model** (the
    likeliest to respond: a T-learner's outcome model of each treatment arm, i.e. P(outcome |
    x, arm) for the users of that arm only, times the arm's value: who buys if contacted);
    **churn risk** (the least likely to reach the outcome without a contact, by the control
    arm's outcome model, sent the best single arm); **everyone** with the best single arm;
    **best arm for a random share**; **no one**. Values are in ``value_outcome`` per user over
    contacting no one, net of ``cost``, by inverse-propensity weighting (:func:`policy_value`:
    no model's word in the comparison of the models' policies). The value of a unit of
    ``outcome`` is measured on each fold's training users (:func:`value_per_unit`).

    ``test_users`` (user ids) replaces the cross-fitting by one split: the models learn on the
    other users and the policies are compared on these only.

    Returns ``values`` (the comparison table), ``difference`` (uplift minus each other policy,
    paired on the same users, with intervals), ``policies`` (the arm per user of each),
    ``value_per_unit`` and its ``basis``.
    """
    from sklearn.model_selection import StratifiedKFold

    value_outcome = value_outcome or outcome
    data = campaign.data.set_index("user_id")
    X, arm = campaign.X, data["arm"]
    y = data[outcome].to_numpy(float)
    control = campaign.control
    model = model if model is not None else UpliftModel(control=control, random_state=seed)
    strata = arm.astype(str) + "|" + (y > 0).astype(str)
    if test_users is None:
        splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, strata))
    else:
        held = X.index.isin(pd.Index(test_users).astype(str))
        if not held.any() or held.all():
            raise ValueError("test_users must hold some of the campaign's users, not all")
        splits = [(np.flatnonzero(~held), np.flatnonzero(held))]
    parts = {name: [] for name in ("uplift", "response model", "churn risk")}
    best_arms = []
    for train, test in splits:
        sub = type(campaign)(**{**campaign.__dict__, "data": campaign.data.iloc[train].reset_index(drop=True)})
        values, _ = value_per_unit(sub, outcome, value_outcome, alpha)
        costs = arm_values(cost, campaign.treatments, "cost")
        up = _clone(model, control).fit(X.iloc[train], y[train], arm.iloc[train])
        net = incremental_value(up.predict(X.iloc[test]), value=values, cost=costs)
        parts["uplift"].append(uplift_policy(net, control=control, share=share))
        t = _clone(model, control, learner="t").fit(X.iloc[train], y[train], arm.iloc[train])
        mu = t.predict_outcomes(X.iloc[test])
        response = pd.DataFrame({a: mu[a] * values[a] for a in campaign.treatments}, index=mu.index)
        parts["response model"].append(score_policy(response, control=control, share=share))
        lift = {
            a: (
                y[train][arm.iloc[train].to_numpy() == a].mean()
                - y[train][arm.iloc[train].to_numpy() == control].mean()
            )
            * values[a]
            - float(costs[a])
            for a in campaign.treatments
        }
        best = max(lift, key=lift.get)
        best_arms.append(best)
        # the least likely to reach the outcome without a contact come first
        parts["churn risk"].append(score_policy(pd.DataFrame({best: -mu[control]}), control=control, share=share))
    scored = X.index[np.concatenate([test for _, test in splits])]
    policies = {name: pd.concat(p).reindex(scored) for name, p in parts.items()}
    best = max(set(best_arms), key=best_arms.count)
    policies[f"everyone: {best}"] = single_arm_policy(scored, best, control=control)
    policies[f"random {share:.0%}: {best}"] = single_arm_policy(scored, best, control=control, share=share, seed=seed)
    policies["no one"] = single_arm_policy(scored, control, control=control, share=0.0)
    propensity = arm.value_counts(normalize=True).to_dict()
    yv = data[value_outcome].astype(float).reindex(scored)
    kw = dict(control=control, propensity=propensity, cost=cost, alpha=alpha)
    table = compare_policies(policies, yv, arm.reindex(scored), **kw)
    terms = {name: value_terms(p, yv, arm, **kw) for name, p in policies.items()}
    z = stats.norm.ppf(1 - alpha / 2)
    diff = []
    for name in policies:
        if name == "uplift":
            continue
        d = terms["uplift"] - terms[name]
        est, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
        diff.append({"policy": name, "difference": est, "std_error": se, "lower": est - z * se, "upper": est + z * se})
    values, basis = value_per_unit(campaign, outcome, value_outcome, alpha)
    return {
        "values": table,
        "difference": pd.DataFrame(diff).set_index("policy"),
        "policies": policies,
        "value_per_unit": values,
        "basis": basis,
        "share": share,
        "folds": folds,
    }


def _clone(model, control, learner=None):
    from sklearn.base import clone

    params = {"control": control}
    if learner is not None:
        params["learner"] = learner
    return clone(model).set_params(**params)


def value_terms(policy, y, arm, *, control, propensity, cost=0.0, alpha=0.05) -> np.ndarray:
    """The per-user inverse-propensity terms of :func:`policy_value` (to pair two policies)."""
    e = pd.Series(propensity, dtype=float)
    costs = pd.Series(arm_values(cost, [a for a in e.index if a != control], "cost"), dtype=float)
    costs[control] = 0.0
    pi = policy.to_numpy(object)
    av = arm.reindex(policy.index).to_numpy(object)
    yv = y.reindex(policy.index).to_numpy(float)
    return (av == pi) * yv / e.reindex(pi).to_numpy() - (av == control) * yv / e[control] - costs.reindex(pi).to_numpy()


#: what a registered decision does: contact by each user's own effect, one arm for everyone, or no one
MODES = ("personalised", "single arm", "no one")


class UpliftPolicy:
    """The decision a campaign's measurements support, as one object (registered as
    ``urm-uplift``): a fitted :class:`~urm_models.models.UpliftModel` of ``outcome``, what one
    unit of it is worth in ``value_outcome`` per arm (``value_per_unit``, with its ``basis``), what a
    contact with each arm costs, and the ``mode`` chosen by cross-fitting
    (:mod:`~urm_models.experiments.selection`, ``reason`` says why):

    * ``"personalised"``: each user the arm with the largest expected incremental value net of its
      cost, where positive (``ranking="effect"``), or, where the response model ranked the effect
      best, the likeliest responders with their best-scoring arm (``ranking="response"``);
    * ``"single arm"``: ``arm`` for everyone (the best arm of the campaign: no ranking beat it);
    * ``"no one"``: no contact pays.

    ``predict(X)`` scores each row on its own (the pyfunc): columns ``effect[<arm>]`` (on the
    outcome), ``incremental_value[<arm>]`` (net of the cost, in ``value_outcome``),
    ``recommended_arm`` (without a budget), ``expected_incremental_value`` (the recommended arm's
    effect times its value, **before** the contact's cost, 0 for the control; under ``"single
    arm"`` the arm's measured average effect, the same for everyone) and ``priority`` (what orders
    the contacts). :meth:`recommend` applies the budget (``share`` of the users, money ``budget``)
    to users identified by their ids: what the relationship table publishes."""

    def __init__(
        self,
        model,
        value_per_unit: dict,
        *,
        cost=0.0,
        outcome: str,
        value_outcome: str,
        basis: str = "",
        window: str = "",
        unit: str = "",
        features_spec: dict | None = None,
        mode: str = "personalised",
        arm=None,
        ranking: str = "effect",
        share: float | None = None,
        budget: float | None = None,
        reason: str = "",
        seed: int = 0,
        baseline: dict | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if ranking not in ("effect", "response"):
            raise ValueError(f"ranking must be 'effect' or 'response', not {ranking!r}")
        if mode == "single arm" and arm is None:
            raise ValueError("mode='single arm' needs the arm")
        self.model = model
        self.value_per_unit = {str(k): float(v) for k, v in value_per_unit.items()}
        self.cost = cost
        self.outcome = outcome
        self.value_outcome = value_outcome
        self.basis = basis
        self.window = window
        self.unit = unit
        #: a campaign built from transactions: how its features are computed at a scoring date
        #: (``experiments.campaign.features_at``); empty: the features of a campaign table
        self.features_spec = dict(features_spec or {})
        self.mode = mode
        self.arm = None if arm is None else str(arm)
        self.ranking = ranking
        self.share = share
        self.budget = budget
        self.reason = reason
        self.seed = int(seed)
        #: the outcome without a contact in the measured campaign (``mean``, ``sd``, ``binary``): what
        #: the next campaign's holdout is sized against (``experiments.planning.plan_campaign``)
        self.baseline = dict(baseline or {})

    def __setstate__(self, state):
        # a decision pickled before the modes existed was personalised without a budget
        defaults = {
            "mode": "personalised",
            "arm": None,
            "ranking": "effect",
            "share": None,
            "budget": None,
            "reason": "",
            "seed": 0,
            "baseline": {},
        }
        self.__dict__.update({**defaults, **state})

    @property
    def control(self):
        return self.model.control_

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.model.feature_names_in_]

    def describe(self) -> dict:
        """The decision in words and numbers: what the table's metadata records."""
        what = {
            "personalised": "each user's own best arm, where its expected value exceeds its cost"
            + (" (ranked by the response model)" if self.ranking == "response" else ""),
            "single arm": f"{self.arm} for every user (within the budget, drawn at random)",
            "no one": "no contact",
        }[self.mode]
        return {
            "mode": self.mode,
            "decision": what,
            "reason": self.reason,
            "outcome": self.outcome,
            "value_outcome": self.value_outcome,
            "value_per_unit": {
                a: f"{v:g} {self.unit} per unit of {self.outcome}" for a, v in self.value_per_unit.items()
            },
            "values": dict(self.value_per_unit),
            "value_basis": self.basis,
            "control": str(self.control),
            "baseline": dict(self.baseline),
            "window": self.window,
            "budget_share": self.share,
            "budget": self.budget,
        }

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        effects = self.model.predict(X)
        effects.columns = [str(c) for c in effects.columns]
        costs = arm_values(self.cost, effects.columns, "cost")
        net = incremental_value(effects, value=self.value_per_unit, cost=costs)
        out = pd.DataFrame(index=X.index)
        for a in effects.columns:
            out[f"effect[{a}]"] = effects[a].to_numpy()
        for a in net.columns:
            out[f"incremental_value[{a}]"] = net[a].to_numpy()
        control = str(self.control)
        if self.mode == "personalised":
            if self.ranking == "response":
                resp = self.model.response(X)
                resp.columns = [str(c) for c in resp.columns]
                score = pd.DataFrame({a: resp[a] * self.value_per_unit[a] for a in effects.columns}, index=X.index)
                chosen = score.idxmax(axis=1).to_numpy()
                priority = score.max(axis=1).to_numpy()
                contact = np.ones(len(X), dtype=bool)
            else:
                chosen = net.idxmax(axis=1).to_numpy()
                priority = net.max(axis=1).to_numpy()
                contact = priority > 0
            gross = effects.to_numpy()[np.arange(len(effects)), effects.columns.get_indexer(chosen)] * np.array(
                [self.value_per_unit[a] for a in chosen]
            )
        elif self.mode == "single arm":
            average = float(self.model.summary.loc[self._model_arm(self.arm), "estimate"])
            chosen = np.full(len(X), self.arm, dtype=object)
            gross = np.full(len(X), average * self.value_per_unit[self.arm])
            contact = np.ones(len(X), dtype=bool)  # the decision, valued out of fold, was to send it
            priority = np.zeros(len(X))
        else:
            chosen = np.full(len(X), control, dtype=object)
            gross = np.zeros(len(X))
            contact = np.zeros(len(X), dtype=bool)
            priority = np.zeros(len(X))
        out["recommended_arm"] = np.where(contact, chosen, control)
        out["expected_incremental_value"] = np.where(contact, gross, 0.0)
        out["priority"] = np.where(contact, priority, -np.inf)
        return out

    def _model_arm(self, arm: str):
        for a in self.model.treatments_:
            if str(a) == arm:
                return a
        raise ValueError(f"arm {arm!r} is not a treatment arm of the model: {self.model.treatments_}")

    def recommend(self, X: pd.DataFrame) -> pd.DataFrame:
        """:meth:`predict` for users indexed by their ids, then the budget: the contacts with the
        highest ``priority`` (under ``"single arm"`` a random draw by :func:`hashed_rank`), at most
        ``share`` of the users and ``budget`` in contact costs; the others get the control and an
        expected incremental value of 0."""
        pred = self.predict(X)
        control = str(self.control)
        contact = pred["recommended_arm"] != control
        if self.share is None and self.budget is None:
            return pred
        if self.mode == "single arm":
            key = pd.Series(-hashed_rank(X.index, self.seed).astype(float), index=X.index)
        else:
            key = pred["priority"]
        order = _ranked(key[contact])
        costs = arm_values(self.cost, [str(a) for a in self.model.treatments_], "cost")
        spend = pd.Series([float(costs[a]) for a in pred.loc[order, "recommended_arm"]], index=order)
        k = _cap(len(pred), self.share, self.budget, spend if self.budget is not None else None)
        dropped = order[k:]
        pred.loc[dropped, "recommended_arm"] = control
        pred.loc[dropped, "expected_incremental_value"] = 0.0
        pred.loc[dropped, "priority"] = -np.inf
        return pred
