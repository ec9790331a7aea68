"""Uplift models, their evaluation and the policies built on them: against simulated campaigns
with known effects, the shipped Hillstrom experiment and hand-computed metrics."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from urm_models import campaigns
from urm_models.evaluation import uplift as ev
from urm_models.experiments import policy as P
from urm_models.experiments.campaign import from_transactions, oracle_effects
from urm_models.models import NotFittedError, UpliftModel
from urm_models.simulate import simulate_campaign


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
    return campaigns.load_hillstrom()


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


def test_random_ranking_scores_near_zero_and_bootstrap_brackets(hillstrom):
    c = hillstrom.restrict(["Womens E-Mail"])
    y, t = c.data["visit"].to_numpy(), (c.data["arm"] == "Womens E-Mail").to_numpy(int)
    u = np.random.default_rng(0).random(len(y))
    res = ev.evaluate(y, u, t, n_boot=60, seed=1)
    assert abs(res["qini"]) < 0.03
    assert res["qini_lower"] < res["qini"] < res["qini_upper"]
    assert res["qini_lower"] < 0 < res["qini_upper"]


# ------------------------------------------------------------------------------ models


def test_estimator_conventions(simulated):
    camp, _ = simulated
    m = UpliftModel(learner="t", control="control", max_depth=3, random_state=2)
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


@pytest.mark.parametrize("learner", ["s", "t", "x", "dr"])
def test_learners_rank_simulated_users_by_their_true_effect(simulated_pair, learner):
    """Held-out users (30%) ranked by each learner's predicted effect: a Qini at least 0.3 of the
    oracle's (the ranking by every user's true effect, which no model can reach: who is a
    sleeping dog is partly chance; measured 0.33-0.68 at depth 4) and a positive rank
    correlation with the truth, for a binary and a count outcome."""
    c, truth = simulated_pair
    d = c.data
    t = (d["arm"] == "coupon").to_numpy(int)
    for outcome in ("converted", "purchases"):
        y = d[outcome].to_numpy(float)
        tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0, stratify=t * 2 + (y > 0))
        m = UpliftModel(learner=learner, control="control", max_depth=4, random_state=0)
        m.fit(c.X.iloc[tr], y[tr], d["arm"].iloc[tr])
        u = m.predict(c.X.iloc[te])["coupon"].to_numpy()
        true = oracle_effects(truth.loc[d["user_id"].iloc[te]], outcome, "coupon").to_numpy()
        oracle = ev.qini_coefficient(y[te], true, t[te])
        q = ev.qini_coefficient(y[te], u, t[te])
        assert q > 0.3 * oracle, (learner, outcome, q, oracle)
        assert spearmanr(u, true)[0] > 0.12


def test_summary_interval_covers_the_true_average_effect(simulated):
    camp, truth = simulated
    m = UpliftModel(control="control", random_state=0).fit(camp.X, camp.data["purchases"], camp.data["arm"])
    for arm in ("email", "coupon"):
        row = m.summary.loc[arm]
        pair = camp.data["arm"].isin(["control", arm]).to_numpy()
        true = truth.loc[pair, f"effect_purchases[{arm}]"].mean()
        assert row["lower_95"] <= true <= row["upper_95"], (arm, row.to_dict(), true)


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


def test_uplift_policy_earns_more_incremental_spend_than_response_targeting(hillstrom):
    """The acceptance line of the policy: women's e-mail vs none, the 70/30 split of the
    benchmark (seeds 0, 1, 2), at most 30% of the held-out users contacted: the uplift policy's
    incremental spend per user (inverse-propensity, with its interval) is above response-model
    targeting's, on average over the seeds and on each. The three-arm campaign does not show it
    (docs/architecture.md, "Campaigns and decisions")."""
    c = hillstrom.restrict(["Womens E-Mail"])
    d = c.data
    diffs = []
    for seed in (0, 1, 2):
        _, te = train_test_split(
            np.arange(len(d)), test_size=0.3, random_state=seed, stratify=d["arm"] + d["visit"].astype(str)
        )
        res = P.evaluate_policies(
            c,
            "visit",
            value_outcome="spend",
            share=0.3,
            seed=seed,
            test_users=d["user_id"].iloc[te],
            model=UpliftModel(random_state=seed),
        )
        values = res["values"]
        assert values.loc["uplift", "lower"] < values.loc["uplift", "value"] < values.loc["uplift", "upper"]
        assert values.loc["uplift", "contacted"] == pytest.approx(0.3, abs=0.001)
        assert values.loc["uplift", "value"] > values.loc["response model", "value"], values
        diffs.append(res["difference"].loc["response model", "difference"])
        assert "measured" in res["basis"]
    assert np.mean(diffs) > 0.05
