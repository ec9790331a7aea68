"""Uplift models, their evaluation and the policies built on them: against simulated campaigns
with known effects, the shipped Hillstrom experiment and hand-computed metrics."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from urm_models.data import campaign_files
from urm_models.data.simulate import simulate_campaign
from urm_models.evaluation import uplift as ev
from urm_models.experiments import policy as P
from urm_models.experiments.campaign import from_transactions, oracle_effects
from urm_models.models import NotFittedError, UpliftModel, boosting
from urm_models.models.uplift import shared_boosters


@pytest.fixture(scope="module")
def simulated():
    """A two-arm campaign of 40,000 simulated users (persuadables, sure things, lost causes,
    sleeping dogs) built from its transactions and assignment file, with the true effects."""
    tx, asg, truth = simulate_campaign(40_000, {"email": 1.0, "coupon": 2.0}, window=8, seed=11)
    camp = from_transactions(tx, asg, window=8, control="control", name="sim")
    return camp, truth.reindex(camp.data["user_id"])


@pytest.fixture(scope="module")
def simulated_pair():
    """One contact (strength 2) against the control, 40,000 simulated users."""
    tx, asg, truth = simulate_campaign(40_000, {"coupon": 2.0}, window=8, seed=11)
    camp = from_transactions(tx, asg, window=8, control="control", name="sim")
    return camp, truth.reindex(camp.data["user_id"])


@pytest.fixture(scope="module")
def hillstrom():
    return campaign_files.load_hillstrom()


# ------------------------------------------------------------------------------ metrics


def test_qini_by_hand():
    # 4 treated (t=1) and 4 control users; scores rank t-responders first
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    t = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    u = np.array([8, 7, 2, 1, 3, 6, 5, 4])
    curve = ev.qini_curve(y, u, t)
    # top 2: two treated responders, no control yet -> 2; top 5 (3 treated incl. 2 responders,
    # 2 controls, none responding) -> 2; at the end: 2 - 1 * 4/4 = 1
    assert curve["targeted"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert curve["incremental"].tolist()[:3] == [0, 1, 2]
    assert curve["incremental"].iloc[-1] == pytest.approx(1.0)
    perfect = y * t - y * (1 - t)
    assert ev.qini_coefficient(y, perfect, t) == pytest.approx(1.0)
    assert ev.qini_coefficient(y, -perfect, t) < 0
    assert ev.uplift_at_k(y, u, t, 0.5) == pytest.approx(2 / 2 - 0 / 2)
    # ties enter together: a constant score is the random diagonal
    assert ev.qini_coefficient(y, np.zeros(8), t) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="treated must be 0/1"):
        ev.qini_coefficient(y, u, t * 2)


@pytest.mark.slow
def test_random_ranking_scores_near_zero_and_bootstrap_brackets(hillstrom):
    c = hillstrom.restrict(["Womens E-Mail"])
    y, t = c.data["visit"].to_numpy(), (c.data["arm"] == "Womens E-Mail").to_numpy(int)
    u = np.random.default_rng(0).random(len(y))
    res = ev.evaluate(y, u, t, n_boot=60, seed=1)
    assert abs(res["qini"]) < 0.03
    assert res["qini_lower"] < res["qini"] < res["qini_upper"]
    assert res["qini_lower"] < 0 < res["qini_upper"]


# ------------------------------------------------------------------------------ models


@pytest.mark.slow
def test_estimator_conventions(simulated):
    camp, _ = simulated
    m = UpliftModel(learner="t", control="control", boosting=replace(boosting.UPLIFT, max_depth=3), random_state=2)
    assert clone(m).get_params() == m.get_params()
    with pytest.raises(NotFittedError, match="not fitted"):
        m.predict(camp.X.head())
    small = camp.data.head(3_000)
    assert m.fit(small[list(camp.features)], small["converted"], small["arm"]) is m
    assert m.arms_ == ["control", "coupon", "email"] and m.outcome_type_ == "binary"
    assert list(m.predict(small[list(camp.features)]).columns) == ["coupon", "email"]
    assert set(m.summary.columns) >= {"estimate", "std_error", "lower_95", "upper_95"}
    with pytest.raises(ValueError, match="control arm 'none' is not among"):
        UpliftModel(control="none").fit(small[list(camp.features)], small["converted"], small["arm"])
    with pytest.raises(ValueError, match="lacks column"):
        m.predict(small[list(camp.features)].drop(columns=["frequency"]))


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["s", "t", "x", "dr"])
def test_learners_rank_simulated_users_by_their_true_effect(simulated_pair, learner):
    """Held-out users (30%) ranked by each learner's predicted effect, over the learner's seeds
    0, 1 and 2: a mean Qini at least 0.3 of the oracle's (the ranking by every user's true
    effect, which no model can reach: who is a sleeping dog is partly chance; means measured
    0.34-0.66 at depth 4) and a mean rank correlation with the truth above 0.12, for a binary
    and a count outcome. One seed alone is not a claim: the T-learner on purchases ranged from
    0.29 to 0.65 of the oracle over the seeds, and the features' last bits (the BTYD scores'
    fits, which change with the machine's BLAS threads) move a user's row to another
    validation fifth as a seed does."""
    c, truth = simulated_pair
    d = c.data
    t = (d["arm"] == "coupon").to_numpy(int)
    for outcome in ("converted", "purchases"):
        y = d[outcome].to_numpy(float)
        tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0, stratify=t * 2 + (y > 0))
        true = oracle_effects(truth.loc[d["user_id"].iloc[te]], outcome, "coupon").to_numpy()
        oracle = ev.qini_coefficient(y[te], true, t[te])
        qini, rho = [], []
        for seed in (0, 1, 2):
            m = UpliftModel(
                learner=learner, control="control", boosting=replace(boosting.UPLIFT, max_depth=4), random_state=seed
            )
            m.fit(c.X.iloc[tr], y[tr], d["arm"].iloc[tr])
            u = m.predict(c.X.iloc[te])["coupon"].to_numpy()
            qini.append(ev.qini_coefficient(y[te], u, t[te]))
            rho.append(spearmanr(u, true)[0])
        assert np.mean(qini) > 0.3 * oracle, (learner, outcome, qini, oracle)
        assert np.mean(rho) > 0.12, (learner, outcome, rho)


@pytest.mark.slow
def test_summary_interval_covers_the_true_average_effect(simulated):
    camp, truth = simulated
    m = UpliftModel(control="control", random_state=0).fit(camp.X, camp.data["purchases"], camp.data["arm"])
    for arm in ("email", "coupon"):
        row = m.summary.loc[arm]
        pair = camp.data["arm"].isin(["control", arm]).to_numpy()
        true = truth.loc[pair, f"effect_purchases[{arm}]"].mean()
        assert row["lower_95"] <= true <= row["upper_95"], (arm, row.to_dict(), true)


@pytest.mark.slow
def test_default_model_on_hillstrom_beats_response_ranking(hillstrom):
    """Women's e-mail vs none, visit, 70/30 split stratified by arm x outcome (the benchmark's
    setup, docs/benchmarks.md): the default uplift model ranks the effect better than the
    response model P(visit | e-mail) on each of the seeds 0, 1, 2."""
    c = hillstrom.restrict(["Womens E-Mail"])
    d = c.data
    y, t = d["visit"].to_numpy(float), (d["arm"] == "Womens E-Mail").to_numpy(int)
    for seed in (0, 1, 2):
        tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=t * 2 + y)
        up = UpliftModel(control="No E-Mail", random_state=seed).fit(c.X.iloc[tr], y[tr], d["arm"].iloc[tr])
        resp = UpliftModel(learner="t", control="No E-Mail", random_state=seed).fit(
            c.X.iloc[tr], y[tr], d["arm"].iloc[tr]
        )
        q_up = ev.qini_coefficient(y[te], up.predict(c.X.iloc[te])["Womens E-Mail"], t[te])
        q_resp = ev.qini_coefficient(y[te], resp.predict_outcomes(c.X.iloc[te])["Womens E-Mail"], t[te])
        assert q_up > q_resp + 0.01 and q_up > 0.05, (seed, q_up, q_resp)
    deciles = ev.uplift_by_decile(y[te], up.predict(c.X.iloc[te])["Womens E-Mail"].to_numpy(), t[te])
    assert deciles.loc[1, "uplift"] > deciles.loc[10, "uplift"]
    assert (deciles["lower"] <= deciles["uplift"]).all() and (deciles["uplift"] <= deciles["upper"]).all()


# ------------------------------------------------------------------------------ policies


def test_policies_respect_the_budget_and_pay_only_where_positive():
    idx = pd.Index([f"u{i}" for i in range(10)])
    effects = pd.DataFrame({"a": np.linspace(-0.2, 0.7, 10), "b": np.linspace(0.5, -0.4, 10)}, index=idx)
    net = P.incremental_value(effects, value={"a": 10.0, "b": 20.0}, cost={"a": 1.0, "b": 3.0})
    assert net.loc["u9", "a"] == pytest.approx(0.7 * 10 - 1)
    pol = P.uplift_policy(net, control="none", share=0.3)
    assert (pol != "none").sum() == 3
    assert pol["u0"] == "b" and pol["u9"] == "a"  # each user's better arm
    everyone_positive = P.uplift_policy(net, control="none")
    assert (everyone_positive != "none").sum() == int((net.max(axis=1) > 0).sum())
    money = P.uplift_policy(net, control="none", budget=5.0, cost={"a": 1.0, "b": 3.0})
    spent = sum({"a": 1.0, "b": 3.0}[a] for a in money if a != "none")
    assert spent <= 5.0 and (money != "none").sum() >= 2
    scores = P.score_policy(effects, control="none", share=0.2)
    assert (scores != "none").sum() == 2
    with pytest.raises(ValueError, match="share or a budget"):
        P.score_policy(effects, control="none")


@pytest.mark.slow
def test_policy_value_is_unbiased_on_a_simulated_campaign(simulated):
    """The inverse-propensity and doubly robust values of a policy hold its true value (the
    mean true effect of what it gives each user) within their 95% intervals."""
    camp, truth = simulated
    d = camp.data.set_index("user_id")
    rng = np.random.default_rng(5)
    pol = pd.Series(rng.choice(["control", "email", "coupon"], len(d), p=[0.4, 0.3, 0.3]), index=d.index)
    true = np.select(
        [pol == "email", pol == "coupon"],
        [truth["effect_purchases[email]"].to_numpy(), truth["effect_purchases[coupon]"].to_numpy()],
        0.0,
    ).mean()
    prop = d["arm"].value_counts(normalize=True).to_dict()
    ipw = P.policy_value(pol, d["purchases"], d["arm"], control="control", propensity=prop)
    mu = pd.DataFrame(
        {a: truth[f"expected_purchases[{a}]"].to_numpy() for a in ("control", "email", "coupon")}, index=d.index
    )
    dr = P.policy_value(pol, d["purchases"], d["arm"], control="control", propensity=prop, outcomes=mu)
    for v in (ipw, dr):
        assert v["lower"] <= true <= v["upper"], (v, true)
    assert dr["std_error"] < ipw["std_error"]
    assert ipw["contacted"] == pytest.approx(0.6, abs=0.01)


@pytest.mark.slow
def test_policy_on_unchosen_splits_is_never_worse_than_the_best_single_arm(hillstrom):
    """The policy acceptance line on splits nobody chose: women's e-mail vs none, visit learned,
    spend earned, at most 30% contacted, 3-fold cross-fitting with the fold seeds 0-8 (every
    user held out from the models that decide for them). Per seed the default learner's
    personalised policy against the best single arm for a random 30% (paired, the same users):
    never significantly below it on any seed, and over the nine seeds its mean gain's interval
    (t over the seeds) holds 0 or lies above it. On main the acceptance test asserted a gain over
    response targeting on seeds 0-2 only; on seeds 3-5 it lost. What this measures (the gain is
    +0.004 $/user, within noise: the chooser then keeps the single arm) is in
    docs/architecture.md, "Campaigns and decisions"."""
    from urm_models.experiments import selection

    c = hillstrom.restrict(["Womens E-Mail"])
    gains = []
    for seed in range(9):
        cf = selection.cross_fit(c, "visit", learners=("s",), folds=3, seed=seed, response=False)
        pol = selection.compare_policies_out_of_fold(c, cf, "visit", value_outcome="spend", share=0.3, seed=seed)
        g = selection.paired(pol["terms"]["personalised: S"], pol["terms"]["best single arm"])
        assert g["upper"] > 0, (seed, g)  # never significantly worse than the best single arm
        assert pol["values"].loc["personalised: S", "contacted"] == pytest.approx(0.3, abs=0.001)
        gains.append(g["difference"])
    gains = np.array(gains)
    half = 2.306 * gains.std(ddof=1) / 3  # t(8), 97.5%, over nine seeds
    assert gains.mean() + half > 0, gains


# ------------------------------------------------------------------------------ the defects of issue 29


@pytest.mark.slow
def test_same_users_in_another_row_order_give_the_same_model(hillstrom):
    """Validation fifths, cross-fitting halves and trees depend on the users and the seed, not on
    the order of the rows (on main the sorted rows gave 351 vs 211 trees)."""
    c = hillstrom.restrict(["Mens E-Mail"])
    X, y, arm = c.X, c.data["visit"].to_numpy(float), c.data["arm"]
    perm = np.argsort(X["history"].to_numpy(), kind="stable")  # the rows sorted by a feature
    for learner in ("s", "dr"):
        a = UpliftModel(learner=learner, control="No E-Mail", random_state=3).fit(X, y, arm)
        b = UpliftModel(learner=learner, control="No E-Mail", random_state=3).fit(X.iloc[perm], y[perm], arm.iloc[perm])
        assert a.n_trees_ == b.n_trees_
        np.testing.assert_array_equal(a.predict(X).to_numpy(), b.predict(X).to_numpy())


def test_shared_boosters_reuse_the_t_learners_models_in_the_x_learner_and_change_nothing(simulated):
    """Inside ``shared_boosters`` the X-learner takes the T-learner's outcome models (the same
    objects: not fitted twice) and predicts exactly what it predicts fitted alone; a model on
    other rows or with other settings fits its own."""
    camp, _ = simulated
    rows = np.arange(len(camp.X)) < 6_000
    X, y, arm = camp.X[rows], camp.data["converted"].to_numpy(float)[rows], camp.data["arm"][rows]
    base = UpliftModel(control="control", boosting=replace(boosting.UPLIFT, n_estimators=200), random_state=2)
    alone = clone(base).set_params(learner="x").fit(X, y, arm)
    with shared_boosters():
        t = clone(base).set_params(learner="t").fit(X, y, arm)
        x = clone(base).set_params(learner="x").fit(X, y, arm)
        deeper = clone(base).set_params(learner="t", boosting=replace(base.boosting, max_depth=3)).fit(X, y, arm)
        fewer = clone(base).set_params(learner="t").fit(X[:-50], y[:-50], arm[:-50])
    for a in x.arms_:
        assert x.models_[f"outcome[{a}]"] is t.models_[f"outcome[{a}]"]
        assert deeper.models_[f"outcome[{a}]"] is not t.models_[f"outcome[{a}]"]
        assert fewer.models_[f"outcome[{a}]"] is not t.models_[f"outcome[{a}]"]
    assert x.n_trees_ == alone.n_trees_
    np.testing.assert_array_equal(x.predict(X).to_numpy(), alone.predict(X).to_numpy())


def test_fit_predicts_the_training_rows_once_per_model(simulated, monkeypatch):
    """The summary and the calibration read the same predictions on the training rows: each
    outcome model predicts them once per arm (the S-learner's model once with each arm set);
    the fitted model then predicts as before (no remembered predictions are kept)."""
    camp, _ = simulated
    rows = np.arange(len(camp.X)) < 6_000
    X, y, arm = camp.X[rows], camp.data["converted"].to_numpy(float)[rows], camp.data["arm"][rows]
    calls = []
    original = UpliftModel._predict_one
    monkeypatch.setattr(UpliftModel, "_predict_one", lambda self, m, Z: calls.append(len(Z)) or original(self, m, Z))
    for learner, expected in (("s", 3), ("t", 3)):
        calls.clear()
        m = UpliftModel(
            learner=learner, control="control", boosting=replace(boosting.UPLIFT, n_estimators=100), random_state=1
        ).fit(X, y, arm)
        assert calls == [len(X)] * expected, learner
        assert "_memo" not in m.__dict__
        calls.clear()
        m.predict(X.iloc[:10])
        assert calls == [10] * expected


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["Womens E-Mail", "Mens E-Mail"])
def test_amount_outcomes_do_not_collapse(hillstrom, arm):
    """Spend on Hillstrom (99% zeros, a heavy tail): every learner's predicted effects average
    the measured effect of the e-mail (on main the S-learner kept one tree: $0 for everyone
    while its own summary said $0.42) and differ between users."""
    c = hillstrom.restrict([arm])
    d = c.data
    measured = d.loc[d["arm"] == arm, "spend"].mean() - d.loc[d["arm"] == "No E-Mail", "spend"].mean()
    for learner in ("s", "t", "x", "dr"):
        m = UpliftModel(learner=learner, control="No E-Mail").fit(c.X, d["spend"], d["arm"])
        eff = m.predict(c.X)[arm]
        row = m.summary.loc[arm]
        assert row["lower_95"] < measured < row["upper_95"]
        assert eff.mean() == pytest.approx(row["estimate"], abs=1e-6), (learner, eff.mean(), row["estimate"])
        assert abs(eff.mean() - measured) < 0.05 * abs(measured), (learner, eff.mean(), measured)
        assert eff.std() > 0.01 * abs(measured), (learner, eff.std())
    assert m.loss_ == "tweedie"


@pytest.mark.slow
def test_amount_effects_average_the_true_effect_on_a_simulated_campaign(simulated_pair):
    """Spend and purchases of a simulated campaign: the mean predicted effect lies in the
    summary's interval, which holds the true average effect, and the effects rank the truth (depth 4:
    the simulated effects interact, docs/architecture.md)."""
    camp, truth = simulated_pair
    d = camp.data
    for outcome in ("spend", "purchases"):
        m = UpliftModel(control="control", boosting=replace(boosting.UPLIFT, max_depth=4), random_state=1).fit(
            camp.X, d[outcome], d["arm"]
        )
        eff = m.predict(camp.X)["coupon"]
        row = m.summary.loc["coupon"]
        true = truth[f"effect_{outcome}[coupon]"].to_numpy()
        assert row["lower_95"] <= true.mean() <= row["upper_95"], (outcome, row.to_dict(), true.mean())
        assert row["lower_95"] <= eff.mean() <= row["upper_95"]
        assert spearmanr(eff, true)[0] > 0.1, outcome


def test_folds_do_not_depend_on_row_order():
    from urm_models.experiments.selection import hashed_folds

    ids = pd.Index([f"u{i}" for i in range(1_000)])
    strata = np.array(["a", "b"] * 500)
    f = hashed_folds(ids, strata, 5, seed=2)
    perm = np.random.default_rng(0).permutation(1_000)
    g = hashed_folds(ids[perm], strata[perm], 5, seed=2)
    assert (pd.Series(f, index=ids) == pd.Series(g, index=ids[perm]).reindex(ids)).all()
    counts = pd.crosstab(strata, f)
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()  # stratified: equal shares of each stratum
    assert not (hashed_folds(ids, strata, 5, seed=3) == f).all()


def _noise_campaign(n, effects, seed):
    """A two-arm campaign whose effect is ``effects(x)`` on a binary outcome, x uniform."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    arm = np.where(rng.random(n) < 0.5, "mail", "none")
    p = 0.2 + np.where(arm == "mail", effects(x), 0.0)
    y = (rng.random(n) < p).astype(int)
    df = pd.DataFrame({"user_id": [f"u{i:05d}" for i in range(n)], "arm": arm, "y": y, "spend": y * 10.0})
    df[["x0", "x1", "x2"]] = x
    return campaign_files.campaign_from_frame(df, control="none", outcomes=["y", "spend"], features=["x0", "x1", "x2"])


@pytest.mark.slow
def test_personalise_only_where_it_pays():
    """Without heterogeneity (the same effect for everyone) the chooser keeps the simpler policy
    and says so; with strong heterogeneity it personalises, the heterogeneity test finds it and
    the effect's groups line up with the prediction."""
    from urm_models.experiments import selection

    flat = _noise_campaign(8_000, lambda x: np.full(len(x), 0.05), seed=1)
    d = selection.choose(flat, "y", value_outcome="spend", share=0.3, learners=("s",), folds=3, n_boot=50)
    assert d.mode in ("single arm", "no one") and "within noise" in d.reason, d.reason
    assert d.heterogeneity.loc["mail", "slope_lower"] < 1  # nothing real to find
    steep = _noise_campaign(8_000, lambda x: 0.3 * (x[:, 0] > 0.7) - 0.15 * (x[:, 0] < 0.3), seed=2)
    d = selection.choose(steep, "y", value_outcome="spend", share=0.3, learners=("s",), folds=3, n_boot=50)
    assert d.mode == "personalised" and "beyond noise" in d.reason, d.reason
    assert d.heterogeneity.loc["mail", "slope_lower"] > 0
    cal = d.calibration["mail"]
    assert cal["measured"].iloc[0] > cal["measured"].iloc[-1]
    policy = selection.fit_policy(steep, "y", d, value_outcome="spend", seed=0)
    rec = policy.recommend(steep.X)
    assert (rec["recommended_arm"] == "mail").mean() == pytest.approx(0.3, abs=0.002)
    assert policy.describe()["reason"] == d.reason


def test_close_calls_keep_the_default_ranking():
    from urm_models.experiments.selection import choose_ranking

    t = pd.DataFrame(
        {
            "qini": [0.05, 0.06, 0.09],
            "vs_default": [0, 0.01, 0.04],
            "vs_default_lower": [0, -0.01, 0.01],
            "vs_default_upper": [0, 0.03, 0.07],
        },
        index=["S", "T", "response model"],
    )
    t.attrs["default"] = "S"
    assert choose_ranking(t)[0] == "response model"
    t.loc["response model", "vs_default_lower"] = -0.001
    name, why = choose_ranking(t)
    assert name == "S" and "within noise" in why
