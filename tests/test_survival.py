"""Survival models on the Telco tenure/churn data: the issue's protocol."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from urm_models.data import datasets
from urm_models.models import SurvivalModel, contractual_clv


@pytest.fixture(scope="module")
def split():
    te = datasets.load_telco()
    # tenure-0 rows: never observed at risk; totalcharges ~ tenure x monthly charge leaks duration
    df = te[te["tenure"] > 0].drop(columns=["user_id", "totalcharges"])
    return train_test_split(df, test_size=0.3, stratify=df["churn"], random_state=0)


@pytest.fixture(scope="module")
def cox(split):
    return SurvivalModel(model="cox").fit(split[0], "tenure", "churn")


def test_cox_concordance_on_the_holdout(cox, split):
    # plain lifelines CoxPH with one-hot covariates gives 0.862 on this protocol
    assert cox.score(split[1]) >= 0.86
    table = cox.summary
    assert list(table.columns[:4]) == ["estimate", "std_error", "lower_95", "upper_95"] and "p" in table
    lifelines = cox.fitter_.summary
    np.testing.assert_array_equal(table["estimate"], lifelines["coef"])
    np.testing.assert_array_equal(table["upper_95"], lifelines["coef upper 95%"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["weibull", "lognormal"])
def test_aft_models_are_reported(kind, split):
    m = SurvivalModel(model=kind).fit(split[0], "tenure", "churn")
    assert m.score(split[1]) > 0.85


def test_curves_monotone_and_conditional(cox, split):
    ho = split[1].head(50)
    s = cox.predict_survival(ho, np.arange(0, 73))
    assert (np.diff(s.to_numpy(), axis=0) <= 1e-12).all() and ((s >= 0) & (s <= 1)).all().all()
    cs = cox.conditional_survival(ho, [0, 6, 12, 24])
    np.testing.assert_allclose(cs.iloc[0], 1.0)
    assert (np.diff(cs.to_numpy(), axis=0) <= 1e-12).all()
    p = cox.churn_probability(ho, 12)
    np.testing.assert_allclose(p, 1 - cs.loc[12.0])
    erl = cox.expected_remaining_lifetime(ho)
    assert ((erl > 0) & (erl <= cox.max_duration_ + 1e-9)).all()


def test_remaining_lifetime_falls_with_hazard_raising_covariates(cox, split):
    ho = split[1].head(200)
    coefs = cox.summary["estimate"]
    assert coefs["contract_Two year"] < 0 and "contract_Month-to-month" not in coefs  # the reference level
    risky = ho.assign(contract="Month-to-month")
    safe = ho.assign(contract="Two year")
    assert (cox.expected_remaining_lifetime(risky) <= cox.expected_remaining_lifetime(safe) + 1e-9).all()
    # and with a numeric covariate whose coefficient is positive
    col = "monthlycharges"
    sign = np.sign(coefs[col])
    hi, lo = ho.assign(**{col: ho[col] + 20}), ho
    a, b = cox.expected_remaining_lifetime(hi), cox.expected_remaining_lifetime(lo)
    assert ((a - b) * sign <= 1e-9).all()


def test_proportional_hazards_check_and_strata(cox, split):
    ph = cox.proportional_hazards_test()
    assert {"test_statistic", "p", "violates"} <= set(ph.columns)
    strat = SurvivalModel(model="cox", strata=["contract"]).fit(split[0], "tenure", "churn")
    assert strat.score(split[1]) > 0.8


def test_contractual_clv(cox, split):
    ho = split[1].head(20)
    v = contractual_clv(cox, ho, "monthlycharges", horizon=24, discount_rate=0.01)
    assert (v > 0).all() and (v <= ho["monthlycharges"] * 24).all()
    # the value is linear in the charge when the charge is not itself a covariate
    v1 = contractual_clv(cox, ho.assign(price=10.0), "price")
    v2 = contractual_clv(cox, ho.assign(price=20.0), "price")
    np.testing.assert_allclose(v2, 2 * v1)
    assert (v1 <= 10.0 * 24).all()


def test_bad_input(split):
    tr = split[0]
    with pytest.raises(ValueError, match="tenure-0"):
        SurvivalModel().fit(pd.concat([tr, tr.head(1).assign(tenure=0)]), "tenure", "churn")
    with pytest.raises(ValueError, match="no events"):
        SurvivalModel().fit(tr.assign(churn=0), "tenure", "churn")
    m = SurvivalModel().fit(tr, "tenure", "churn")
    with pytest.raises(ValueError, match=r"lack column\(s\) \['contract'\]"):
        m.predict_survival(tr.drop(columns="contract").head(), [1, 2])


def test_integrated_brier_score_beats_the_covariate_free_model(cox, split):
    from urm_models.evaluation.survival import brier_scores, integrated_brier_score

    train, test = split
    ibs = integrated_brier_score(cox, test, train)
    # the same model without covariates (one constant column is dropped, so use a dummy with
    # no signal): the Kaplan-Meier curve for everyone
    null = SurvivalModel("cox").fit(
        train[["tenure", "churn"]].assign(noise=np.arange(len(train)) % 2), "tenure", "churn"
    )
    ibs_null = integrated_brier_score(null, test.assign(noise=0), train)
    assert 0 < ibs < ibs_null < 0.25
    # a perfect oracle (S = 1 before each user's churn, 0 after) scores ~0 where nobody is censored
    t = np.arange(1.0, 60.0)
    ev = test[test["churn"] == 1].head(100)
    oracle = pd.DataFrame((ev["tenure"].to_numpy()[None, :] > t[:, None]).astype(float), index=t, columns=ev.index)
    assert brier_scores(oracle, ev, train, "tenure", "churn").max() == 0.0


def test_kaplan_meier_by_group_with_at_risk_counts():
    from lifelines import KaplanMeierFitter

    from urm_models.evaluation.survival import kaplan_meier_by

    telco = datasets.load_telco()
    fig, table = kaplan_meier_by(telco, "tenure", "churn", by="contract", at=[0, 12, 24, 48])
    assert list(table.index) == ["Month-to-month", "One year", "Two year"]
    m2m = telco[telco.contract == "Month-to-month"]
    assert table.loc["Month-to-month", "at risk t=12"] == int((m2m.tenure >= 12).sum())
    assert table.loc["Two year", "at risk t=0"] == int((telco.contract == "Two year").sum())
    km = KaplanMeierFitter().fit(m2m.tenure, m2m.churn)
    assert table.loc["Month-to-month", "S(t=24)"] == pytest.approx(float(km.survival_function_at_times(24).iloc[0]))
    # month-to-month customers leave fastest: lowest survival at every time after 0
    for t in (12, 24, 48):
        assert table[f"S(t={t})"].idxmin() == "Month-to-month"
    assert len(fig.axes[0].get_lines()) >= 3
    with pytest.raises(ValueError, match="lack column 'tier'"):
        kaplan_meier_by(telco, "tenure", "churn", by="tier")


@pytest.mark.slow
def test_convergence_troubles_are_ours_with_the_cause_and_the_fix(split):
    """lifelines' convergence warnings and errors were silenced in four places; now a failed fit
    is a ConvergenceError and a completed fit with a caveat a ModelWarning, each naming the
    column that separates churners (here a copy of the event) and the penalizer to use; a fit
    without trouble emits nothing (warnings as errors)."""
    import warnings

    from urm_models.core.errors import ConvergenceError
    from urm_models.models import ModelWarning

    train, _ = split
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SurvivalModel("cox").fit(train, "tenure", "churn")
        SurvivalModel("weibull").fit(train, "tenure", "churn")
    leaky = train.assign(leak=train["churn"])
    with pytest.raises(
        ConvergenceError,
        match=r"CoxPHFitter did not converge .*\['leak'\] separate churners.*"
        r"penalizer=0.01; now 0\) or drop \['leak'\]",
    ):
        SurvivalModel("cox", penalizer=0.0).fit(leaky, "tenure", "churn")
    weibull_warning = r"WeibullAFTFitter: .*Cause: column\(s\) \['leak'\].*Fix: raise the penalizer"
    with pytest.warns(ModelWarning, match=weibull_warning):
        SurvivalModel("weibull", penalizer=0.0).fit(leaky, "tenure", "churn")


def test_stratified_curves_belong_to_their_own_users(split):
    """lifelines groups a stratified Cox model's curves by stratum: each user's curve (and so
    churn probability, remaining lifetime and contractual CLV) must be the one computed for
    that user alone, whatever the order of the rows."""
    strat = SurvivalModel(model="cox", strata=["contract"]).fit(split[0], "tenure", "churn")
    ho = split[1].head(60)
    assert ho["contract"].nunique() == 3  # the rows mix the strata
    times = [1.0, 6.0, 12.0, 36.0]
    batch = strat.predict_survival(ho, times)
    alone = pd.concat([strat.predict_survival(ho.iloc[[i]], times) for i in range(len(ho))], axis=1)
    pd.testing.assert_frame_equal(batch, alone)
    shuffled = ho.sample(frac=1.0, random_state=1)
    pd.testing.assert_series_equal(
        strat.churn_probability(shuffled, 12).loc[ho.index], strat.churn_probability(ho, 12), check_exact=False
    )


def test_past_the_data_window_cox_survival_has_a_tail(cox, split):
    """Issue 28: Cox's baseline stays flat past the longest tenure, so every customer at 72 months
    got a remaining lifetime of exactly the 72-month horizon; the parametric tail (each user's
    hazard over the last sixth of the window) goes on falling there."""
    train, test = split
    t_max = cox.max_duration_
    users = test.head(20)
    s = cox.predict_survival(users, [t_max, t_max + 12, t_max + 48])
    assert (s.iloc[1] < s.iloc[0]).all() and (s.iloc[2] < s.iloc[1]).all()
    oldest = test[test["tenure"] == test["tenure"].max()].head(30)
    remaining = cox.expected_remaining_lifetime(oldest)
    assert (remaining < t_max - 1).all() and remaining.nunique() > 1
    inside = cox.predict_survival(users, [12.0, 24.0])  # inside the window: lifelines' curve, unchanged
    np.testing.assert_allclose(
        inside.to_numpy(), cox.fitter_.predict_survival_function(cox._X(users), times=[12.0, 24.0]).to_numpy()
    )
