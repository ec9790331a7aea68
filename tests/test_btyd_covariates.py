"""BG/NBD, MBG/NBD and Pareto/NBD with time-invariant customer covariates (Fader & Hardie
2007): parameter recovery on 200,000 simulated customers, equality with the plain models, and
predictions that use each customer's own parameters."""

import numpy as np
import pandas as pd
import pytest

from urm_models.data import simulate
from urm_models.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD, customer_lifetime_value
from urm_models.models.btyd import _CovariatePurchases

N = 200_000
TRUE = {
    "bgnbd": {"purchase_channel": 0.5, "purchase_size": -0.2, "dropout_a_channel": -0.4, "dropout_b_size": 0.3},
    "paretonbd": {"purchase_channel": 0.5, "purchase_size": -0.2, "dropout_channel": 0.6},
}
MODELS = {"bgnbd": BetaGeo, "paretonbd": ParetoNBD}


@pytest.fixture(scope="module")
def covariates():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"channel": rng.integers(0, 2, N).astype(float), "size": rng.normal(3.0, 1.0, N)})


@pytest.fixture(scope="module", params=["bgnbd", "paretonbd"])
def fitted(request, covariates):
    kind = request.param
    rfm = simulate.simulate_rfm(N, kind, seed=3, covariates=covariates, coefficients=TRUE[kind])
    cols = ["channel", "size"]
    return kind, rfm, MODELS[kind](purchase_covariates=cols, dropout_covariates=cols).fit(rfm)


@pytest.mark.slow
def test_recovers_known_coefficients_within_three_standard_errors(fitted):
    """Every parameter, including the coefficients with no effect (true 0), within 3 SE of the
    truth expressed on the model's scale: coefficients per standard deviation of the covariate,
    base parameters at the covariates' means."""
    kind, rfm, m = fitted
    prm = simulate.DEFAULT_PARAMS[kind]
    mu = dict(zip(m.covariate_columns_, m.covariate_means_, strict=True))
    sd = dict(zip(m.covariate_columns_, m.covariate_scales_, strict=True))
    links = simulate._COEF_LINKS[kind]
    truth = {k: 0.0 for k in m.real_params_}
    truth.update({k: v * sd[k.split("_")[-1]] for k, v in TRUE[kind].items()})
    base = dict(prm)
    for name, coef in TRUE[kind].items():  # the population value at the covariates' means
        col = name.split("_")[-1]
        param, sign = links[name[: -len(col)]]
        base[param] *= np.exp(sign * coef * mu[col])
    truth.update(base)
    s = m.summary
    assert list(s.index) == list(m.param_names_) and len(s) == 4 + len(m.real_params_)
    for k, t in truth.items():
        assert abs(s.loc[k, "estimate"] - t) < 3 * s.loc[k, "std_error"], (kind, k, t, s.loc[k].to_dict())
    # the effects are found, not just consistent with 0
    assert s.loc["purchase_channel", "lower_95"] > 0 and s.loc["purchase_size", "upper_95"] < 0


@pytest.mark.slow
def test_predictions_use_each_customers_own_parameters(fitted):
    """A customer's predictions equal those of the plain model with that customer's parameters."""
    kind, rfm, m = fitted
    rows = rfm.iloc[[0, 7, 42]]
    Z = (rows[m.covariate_columns_].to_numpy() - m.covariate_means_) / m.covariate_scales_
    L = m._log_row_params(m.log_params_, Z)
    exp_p = m.conditional_expected_purchases(10, rows)
    alive = m.p_alive(rows)
    p0 = m.probability_no_purchase(10, rows)
    life = m.expected_remaining_lifetime(rows, 26)
    for i in range(len(rows)):
        plain = MODELS[kind]()._with_params(dict(zip(type(m).param_names, np.exp(L[:, i]), strict=True)))
        plain.purchase_covariates = plain.dropout_covariates = ()
        one = rows.iloc[[i]]
        assert exp_p.iloc[i] == pytest.approx(plain.conditional_expected_purchases(10, one).iloc[0], rel=1e-12)
        assert alive.iloc[i] == pytest.approx(plain.p_alive(one).iloc[0], rel=1e-12)
        assert p0.iloc[i] == pytest.approx(plain.probability_no_purchase(10, one).iloc[0], rel=1e-12)
        assert life.iloc[i] == pytest.approx(plain.expected_remaining_lifetime(one, 26).iloc[0], rel=1e-12)
    # a customer's parameters differ from the population's: the covariates matter
    assert not np.allclose(L[1], m.log_params_[1])


@pytest.mark.slow
def test_clv_and_draws_with_a_covariate_purchase_model(fitted):
    kind, rfm, m = fitted
    head = rfm.head(2000).assign(monetary=lambda d: np.where(d["frequency"] > 0, d["monetary"], 0.0))
    spend = GammaGamma().fit(head)
    clv = customer_lifetime_value(m, spend, head, horizon=6, rfm_freq="W", n_draws=20)
    assert np.isfinite(clv.to_numpy()).all()
    np.testing.assert_allclose(
        clv["expected_purchases"], m.conditional_expected_purchases(6 * 365.25 / 12 / 7, head), rtol=1e-12
    )
    assert (clv["clv_lower"] <= clv["clv"] + 1e-9).all() and (clv["clv"] <= clv["clv_upper"] + 1e-9).all()
    draws = m.sample_params(5)
    assert list(draws.columns) == list(m.param_names_)


@pytest.mark.parametrize("Model", [BetaGeo, ModifiedBetaGeo, ParetoNBD])
def test_no_covariates_is_the_plain_model_and_zero_coefficients_give_its_likelihood(Model, cdnow_sample):
    from urm_models import features

    rfm = features.rfm_summary(cdnow_sample, "1997-09-30", freq="W")
    plain = Model().fit(rfm)
    empty = Model(purchase_covariates=[], dropout_covariates=None).fit(rfm)
    for k in type(plain).param_names:
        assert empty.params_[k] == pytest.approx(plain.params_[k], rel=1e-9)
    assert empty.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-12)
    # the covariate likelihood (row by row) at zero coefficients equals the plain one (aggregated)
    rng = np.random.default_rng(0)
    with_z = rfm.assign(z=rng.normal(size=len(rfm)))
    cov = Model(purchase_covariates=["z"], dropout_covariates=["z"])
    d, _, names, real = cov._prepare_fit(with_z, None)
    assert isinstance(d, _CovariatePurchases) and names[: len(type(cov).param_names)] == type(cov).param_names
    cov.param_names_, cov.real_params_ = names, real  # as a fit sets them
    lp = np.r_[plain.log_params_, np.zeros(len(cov.real_params_))]
    assert cov._total(lp, d, d.w)[0] == pytest.approx(plain.log_likelihood_, rel=1e-9)
    # and its analytic gradient matches finite differences, coefficients included
    lp = lp + rng.normal(scale=0.05, size=lp.size)
    g = cov._total(lp, d, d.w)[1]
    for j in range(lp.size):
        e = np.zeros(lp.size)
        e[j] = 1e-6
        fd = (cov._total(lp + e, d, d.w)[0] - cov._total(lp - e, d, d.w)[0]) / 2e-6
        assert g[j] == pytest.approx(fd, rel=1e-5, abs=1e-3), (j, cov.param_names_[j])
    # an old pickled model without the covariate attributes still predicts the same
    old = Model().fit(rfm)
    del old.__dict__["purchase_covariates"], old.__dict__["dropout_covariates"]
    pd.testing.assert_series_equal(old.p_alive(rfm), plain.p_alive(rfm))


def test_covariate_errors_name_the_column(covariates):
    rfm = simulate.simulate_rfm(
        500, "bgnbd", seed=1, covariates=covariates.head(500), coefficients={"purchase_channel": 0.3}
    )
    with pytest.raises(ValueError, match=r"rfm lacks covariate column\(s\) \['region'\]"):
        BetaGeo(purchase_covariates=["region"]).fit(rfm)
    m = BetaGeo(purchase_covariates=["size"]).fit(rfm)
    with pytest.raises(ValueError, match="covariate 'size' has 3 missing or non-numeric rows of 500"):
        m.p_alive(rfm.assign(size=np.r_[np.nan, np.nan, np.nan, rfm["size"].to_numpy()[3:]]))
    with pytest.raises(ValueError, match=r"lacks covariate column\(s\) \['size'\]"):
        m.conditional_expected_purchases(4, rfm.drop(columns="size"))
    from urm_models.evaluation import btyd_plots

    with pytest.raises(ValueError, match="heterogeneity describes the whole population.*covariates"):
        btyd_plots.heterogeneity(m)
    with pytest.raises(ValueError, match="pass both or neither"):
        simulate.simulate_rfm(10, "bgnbd", covariates=covariates.head(10))
    with pytest.raises(ValueError, match="coefficient 'dropout_channel'"):
        simulate.simulate_rfm(10, "bgnbd", covariates=covariates.head(10), coefficients={"dropout_channel": 1.0})


def test_first_purchase_covariates_and_the_comparison_table(cdnow_sample):
    """features.first_purchase gives each user's first purchase day (amounts of that day summed,
    as the RFM summary merges them) and month; covariate_table puts each model beside the same
    model with covariates, with in-sample and holdout scores."""
    from urm_models import features
    from urm_models.evaluation import holdout

    fp = features.first_purchase(cdnow_sample, "1997-09-30")
    day = cdnow_sample.assign(d=cdnow_sample["ts"].dt.normalize())
    first_day = day.groupby("user_id")["d"].min()
    amount = day.loc[day["d"] == day["user_id"].map(first_day)].groupby("user_id")["amount"].sum()
    assert (fp["first_date"] == first_day.reindex(fp.index)).all()
    np.testing.assert_allclose(fp["first_amount"], amount.reindex(fp.index), rtol=1e-12)
    np.testing.assert_allclose(fp["log_first_amount"], np.log1p(fp["first_amount"]), rtol=1e-12)
    assert set(fp["first_month"]) == {1, 2, 3}  # every CDNOW customer started in Q1 1997
    rfm = features.rfm_summary(cdnow_sample, "1997-09-30", freq="W", holdout_end="1998-06-30")
    assert fp.index.equals(rfm.index)
    rfm = rfm.join(fp[["log_first_amount", "first_month"]])
    plain = {"BetaGeo": BetaGeo().fit(rfm)}
    table, refitted = holdout.covariate_table(plain, rfm, ["log_first_amount", "first_month"], 39.0)
    assert list(table.index) == ["BetaGeo", "BetaGeo + covariates"]
    assert table.loc["BetaGeo", "log_likelihood"] == pytest.approx(plain["BetaGeo"].log_likelihood_)
    # nested models: the covariates can only raise the maximised likelihood
    assert table.loc["BetaGeo + covariates", "log_likelihood"] > table.loc["BetaGeo", "log_likelihood"]
    assert refitted["BetaGeo"].real_params_ == (
        "purchase_log_first_amount",
        "purchase_first_month",
        "dropout_a_log_first_amount",
        "dropout_a_first_month",
        "dropout_b_log_first_amount",
        "dropout_b_first_month",
    )
    assert table["actual_total"].nunique() == 1 and table.loc["BetaGeo", "rmse"] > 0


@pytest.mark.slow
def test_population_diagnostics_sum_each_customers_own_expectation(cdnow_sample):
    """period_transactions and the tracking plots of a covariate model sum each customer's own
    expectation; at zero coefficients that is, to 1e-9, the plain model's grouped sum (the
    other code path), and with the fitted coefficients the figures differ from it."""
    import copy

    from urm_models import features
    from urm_models.evaluation import btyd_plots

    cut, end, cols = "1997-09-30", "1998-06-30", ["log_first_amount", "first_month"]
    rfm = features.rfm_summary(cdnow_sample, cut, freq="W").join(features.first_purchase(cdnow_sample, cut)[cols])
    plain = BetaGeo().fit(rfm)
    cov = BetaGeo(purchase_covariates=cols, dropout_covariates=cols).fit(rfm)
    zero = copy.deepcopy(cov)
    zero.log_params_ = np.r_[plain.log_params_, np.zeros(len(cov.real_params_))]

    def bars(model):
        fig = btyd_plots.period_transactions(model, rfm)
        return np.array([p.get_height() for p in fig.axes[0].patches[8:]])  # the model's bars

    def tracking(model, **kw):
        return btyd_plots.cumulative_purchases(model, cdnow_sample, cut, end, **kw).axes[0].lines[1].get_ydata()

    np.testing.assert_allclose(bars(zero), bars(plain), rtol=1e-9)
    covs = rfm[cols]
    np.testing.assert_allclose(tracking(zero, covariates=covs), tracking(plain), rtol=1e-9)
    fitted = tracking(cov, covariates=covs)
    assert np.abs(fitted[1:] / tracking(plain)[1:] - 1).max() > 1e-2 and np.all(np.diff(fitted) >= 0)
    assert abs(bars(cov).sum() - len(rfm)) < 1e-6  # every customer in some bar
    with pytest.raises(ValueError, match=r"has covariates .* pass covariates="):
        btyd_plots.incremental_purchases(cov, cdnow_sample, cut, end)
    with pytest.raises(ValueError, match="covariates lack 10 of the 2,357 customers"):
        btyd_plots.cumulative_purchases(cov, cdnow_sample, cut, end, covariates=covs.iloc[10:])
    # one customer's P(alive) over time ends at the covariate model's P(alive) for them
    uid = rfm.sort_values(["frequency", "recency"]).index[-5]
    curve = btyd_plots.p_alive_history(cov, cdnow_sample, uid, cut, covariates=covs).axes[0].get_lines()[0].get_ydata()
    assert curve[-1] == pytest.approx(cov.p_alive(rfm.loc[[uid]]).iloc[0], rel=1e-9)
    assert curve[-1] != pytest.approx(plain.p_alive(rfm.loc[[uid]]).iloc[0], rel=1e-3)
    with pytest.raises(ValueError, match="covariates hold 0 rows for that user"):
        btyd_plots.p_alive_history(cov, cdnow_sample, uid, cut, covariates=covs.drop(uid))
