"""CLV, predictive medians and holdout scoring on the CDNOW sample."""

import numpy as np
import pandas as pd
import pytest

from urm_models import features
from urm_models.data import datasets
from urm_models.evaluation import holdout
from urm_models.models import (
    BetaGeo,
    CLVScorer,
    GammaGamma,
    ParetoNBD,
    conditional_median_purchases,
    customer_lifetime_value,
)


@pytest.fixture(scope="module")
def fitted():
    tx = datasets.load_cdnow(sample=True)
    rfm = features.rfm_summary(tx, cutoff="1997-09-30", freq="W", holdout_end="1998-06-30")
    return tx, rfm, BetaGeo().fit(rfm), GammaGamma().fit(rfm)


def test_undiscounted_clv_is_spend_times_expected_purchases(fitted):
    _, rfm, bg, gg = fitted
    c = customer_lifetime_value(bg, gg, rfm, horizon=6, freq="M", discount_rate=0.0)
    t = 6 * (365.25 / 12) / 7  # six months in weeks
    np.testing.assert_allclose(c["expected_purchases"], bg.conditional_expected_purchases(t, rfm), rtol=1e-12)
    np.testing.assert_allclose(c["clv"], c["expected_purchases"] * c["expected_spend"], rtol=1e-10)


def test_discount_and_margin(fitted):
    _, rfm, bg, gg = fitted
    base = customer_lifetime_value(bg, gg, rfm, horizon=12, discount_rate=0.0)["clv"]
    disc = customer_lifetime_value(bg, gg, rfm, horizon=12, discount_rate=0.05, margin=0.3)["clv"]
    assert (disc <= 0.3 * base + 1e-9).all() and (disc > 0).all()
    # a one-period horizon discounts the single period once
    one = customer_lifetime_value(bg, gg, rfm, horizon=1, discount_rate=0.1)
    np.testing.assert_allclose(one["clv"], one["expected_purchases"] * one["expected_spend"] / 1.1)


def test_intervals_bracket_the_estimate(fitted):
    _, rfm, bg, gg = fitted
    c = customer_lifetime_value(bg, gg, rfm.head(400), n_draws=100, seed=3)
    inside = (c["clv_lower"] <= c["clv"]) & (c["clv"] <= c["clv_upper"])
    assert inside.mean() > 0.95
    assert (c["clv_upper"] > c["clv_lower"]).all()


def test_clv_needs_the_time_unit(fitted):
    _, rfm, bg, gg = fitted
    bare = pd.DataFrame(rfm)  # a copy keeps attrs; drop them explicitly
    bare.attrs = {}
    bg2 = BetaGeo().fit(bare)
    with pytest.raises(ValueError, match="time unit"):
        customer_lifetime_value(bg2, gg, bare)
    assert customer_lifetime_value(bg2, gg, bare, rfm_freq="W")["clv"].notna().all()


@pytest.mark.slow
def test_median_is_the_predictive_median(fitted):
    _, rfm, bg, _ = fitted
    rows = rfm.sample(40, random_state=1)
    med = conditional_median_purchases(bg, 39, rows)
    for uid in rows.index:
        one = rows.loc[[uid]]
        cum = np.cumsum([bg.probability_of_n_purchases(39, n, one).iloc[0] for n in range(100)])
        assert med[uid] == int(np.argmax(cum >= 0.5))


def test_naive_baselines_on_cdnow_sample(fitted):
    # the reference numbers: predict zero MAE 0.798; carry the rate forward 1.024
    _, rfm, bg, _ = fitted
    base = holdout.naive_baselines(rfm, 39.0)
    table = holdout.holdout_table(base, rfm["frequency_holdout"])
    assert table.loc["zero", "mae"] == pytest.approx(0.798, abs=5e-4)
    assert table.loc["zero", "rmse"] == pytest.approx(2.206, abs=5e-4)  # FACTS.md
    assert table.loc["carry_forward_rate", "mae"] == pytest.approx(1.024, abs=5e-4)
    m = holdout.purchase_metrics(bg.conditional_expected_purchases(39, rfm), rfm["frequency_holdout"])
    assert m["mae"] == pytest.approx(0.7855, abs=5e-4)  # lifetimes' BG/NBD: 0.7855
    assert m["rmse"] == pytest.approx(1.608, abs=5e-4)  # FACTS.md
    assert m["aggregate_error"] == pytest.approx((1653.4 - 1882) / 1882, abs=1e-3)


def test_selection_never_sees_the_holdout(fitted):
    tx, _, _, _ = fitted
    later = tx[tx["ts"] > "1997-09-30"].copy()
    later["amount"] *= 100  # any change after the cut-off...
    later = later.sample(frac=0.5, random_state=0)
    early = tx[tx["ts"] <= "1997-09-30"]
    a = holdout.select_on_validation(tx, "1997-09-30")
    b = holdout.select_on_validation(pd.concat([early, later]), "1997-09-30")
    assert a[0] == b[0]  # ...changes nothing in the choice
    pd.testing.assert_frame_equal(a[1], b[1])


# ----------------------------------------------------------------- expected remaining lifetime
@pytest.fixture(scope="module")
def models(fitted):
    tx, rfm, bg, gg = fitted
    return {"rfm": rfm, "bg": bg, "gg": gg, "pareto": ParetoNBD().fit(rfm)}


@pytest.mark.slow
def test_bg_remaining_lifetime_matches_direct_integration(models):
    """The closed form (Pfaff-transformed 2F1) against integrating exp(-lambda p t) over the
    posterior of p by quadrature and then over t."""
    from scipy import integrate, stats

    bg = models["bg"]
    rfm = models["rfm"]
    r, alpha, a, b = (bg.params_[k] for k in ("r", "alpha", "a", "b"))
    users = rfm.iloc[[0, 3, 17, 40]]
    got = bg.expected_remaining_lifetime(users, 52.0)
    for uid, u in users.iterrows():
        x, T = u["frequency"], u["T"]
        alive = bg.p_alive(users.loc[[uid]]).iloc[0]

        def S(t, x=x, T=T):
            return integrate.quad(
                lambda p: stats.beta.pdf(p, a, b + x) * (1 + p * t / (alpha + T)) ** -(r + x), 0, 1, limit=200
            )[0]

        assert got[uid] == pytest.approx(alive * integrate.quad(S, 0, 52.0)[0], rel=1e-6)


def test_pareto_remaining_lifetime_matches_closed_form(models):
    pn = models["pareto"]
    rfm = models["rfm"].head(50)
    s, beta = pn.params_["s"], pn.params_["beta"]
    H = 40.0
    bT = beta + rfm["T"].to_numpy()
    closed = pn.p_alive(rfm).to_numpy() * bT / (s - 1) * (1 - (bT / (bT + H)) ** (s - 1))
    assert np.allclose(pn.expected_remaining_lifetime(rfm, H).to_numpy(), closed, rtol=1e-8)


def test_remaining_lifetime_is_bounded_and_grows_with_the_horizon(models):
    bg, rfm = models["bg"], models["rfm"]
    short, long = bg.expected_remaining_lifetime(rfm, 13.0), bg.expected_remaining_lifetime(rfm, 52.0)
    assert (short >= 0).all() and (short <= 13.0 + 1e-9).all() and (long >= short - 1e-12).all()
    # a buyer with a long recent history outlives one whose purchases stopped long ago
    hist = pd.DataFrame({"frequency": [10.0, 10.0], "recency": [38.0, 5.0], "T": [39.0, 39.0]})
    lt = bg.expected_remaining_lifetime(hist, 52.0)
    assert lt.iloc[0] > 5 * lt.iloc[1]
    with pytest.raises(ValueError, match="horizon"):
        bg.expected_remaining_lifetime(rfm, 0)


def test_clv_scorer_agrees_with_its_parts(models):
    bg, gg, rfm = models["bg"], models["gg"], models["rfm"]
    scorer = CLVScorer(bg, gg, rfm_freq="W", horizon=12, freq="M", discount_rate=0.01)
    out = scorer.predict(rfm)
    assert list(out.columns) == CLVScorer.columns and out.index.equals(rfm.index)
    ref = customer_lifetime_value(bg, gg, rfm, horizon=12, freq="M", discount_rate=0.01)
    assert np.allclose(out["clv"], ref["clv"]) and np.allclose(out["expected_purchases"], ref["expected_purchases"])
    assert np.allclose(out["p_alive"], bg.p_alive(rfm))
    weeks = 12 * (365.25 / 12) / 7
    assert np.allclose(out["p_churn"], bg.probability_of_n_purchases(weeks, 0, rfm))
    # lifetime in months, within the 12-month horizon
    assert ((out["expected_remaining_lifetime"] >= 0) & (out["expected_remaining_lifetime"] <= 12 + 1e-9)).all()
    with pytest.raises(ValueError, match="monetary"):
        scorer.predict(rfm.drop(columns=["monetary"]))


@pytest.mark.slow
def test_value_intervals_carry_the_purchase_process_and_cover_the_holdout(fitted):
    """Issue 28: intervals from parameter draws alone hold the expectation (the top customer's was
    a few percent wide) and cover 3% of what customers actually spent in the holdout; with each
    customer's own count distribution drawn too, the 90% interval covers about 90%."""
    _, rfm, _, gg = fitted
    pn = ParetoNBD().fit(rfm)
    c = customer_lifetime_value(pn, gg, rfm, horizon=39, freq="W", discount_rate=0.0, n_draws=200)
    realised = rfm["frequency_holdout"] * rfm["monetary_holdout"]
    covered = (realised >= c["value_lower"] - 1e-9) & (realised <= c["value_upper"] + 1e-9)
    assert 0.85 < covered.mean() < 0.97
    assert ((realised >= c["clv_lower"]) & (realised <= c["clv_upper"])).mean() < 0.2
    top = c["clv"].idxmax()
    assert c.loc[top, "value_upper"] - c.loc[top, "value_lower"] > 3 * (
        c.loc[top, "clv_upper"] - c.loc[top, "clv_lower"]
    )


def test_value_at_risk_is_the_value_lost_to_dropout_over_the_clv_horizon(models):
    """Issue 28, part e: one model, one horizon. clv + value_at_risk is the value of the customer
    kept alive throughout the CLV horizon: the same model's CLV with dropout removed (Pareto/NBD
    with beta -> infinity: no one leaves, everyone alive now)."""
    pn, gg, rfm = models["pareto"], models["gg"], models["rfm"]
    scorer = CLVScorer(pn, gg, rfm_freq="W", horizon=12, freq="M", discount_rate=0.01, churn_window=13)
    out = scorer.predict(rfm)
    kept = pn._with_params({**pn.params_, "beta": 1e9})
    ref = customer_lifetime_value(kept, gg, rfm, horizon=12, freq="M", discount_rate=0.01)
    sure = kept.p_alive(rfm) > 1 - 1e-7  # where that limit has everyone alive now
    assert sure.mean() > 0.95
    assert np.allclose((out["clv"] + out["value_at_risk"])[sure], ref["clv"][sure], rtol=1e-5)
    # everywhere: the rate given alive, (r + x) / (alpha + T), for 12 discounted months of 365.25 / 12 days
    r, alpha = pn.params_["r"], pn.params_["alpha"]
    month = 365.25 / 12 / 7
    retained = (r + rfm["frequency"]) / (alpha + rfm["T"]) * month * np.sum(1.01 ** -np.arange(1.0, 13.0))
    assert np.allclose(out["clv"] + out["value_at_risk"], gg.conditional_expected_spend(rfm) * retained, rtol=1e-9)
    assert (out["value_at_risk"] >= 0).all()
    # its horizon is the CLV's, not the churn window's (the old p_churn x clv mixed 13 weeks with 12 months)
    other = CLVScorer(pn, gg, rfm_freq="W", horizon=12, freq="M", discount_rate=0.01, churn_window=4).predict(rfm)
    assert np.allclose(other["value_at_risk"], out["value_at_risk"])
    assert not np.allclose(other["p_churn"], out["p_churn"])
    longer = CLVScorer(pn, gg, rfm_freq="W", horizon=24, freq="M", discount_rate=0.01).predict(rfm)
    assert (longer["value_at_risk"] >= out["value_at_risk"] - 1e-9).all()
    # a customer long gone has nothing left of his CLV and all of it at risk; a steady recent buyer little
    hist = pd.DataFrame(
        {"frequency": [10.0, 10.0], "recency": [38.9, 2.0], "T": [39.0, 39.0], "monetary": [30.0, 30.0]}
    )
    h = scorer.predict(hist)
    assert h["value_at_risk"].iloc[1] > 20 * h["clv"].iloc[1]
    assert h["value_at_risk"].iloc[0] < h["clv"].iloc[0]
