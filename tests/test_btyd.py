"""BTYD models: published estimates, exact gradients, sane predictions, parameter recovery."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from urm_models import features
from urm_models.core.errors import ConvergenceError
from urm_models.data import datasets
from urm_models.models import BetaGeo, GammaGamma, ModifiedBetaGeo, NotFittedError, ParetoNBD, ShiftedBetaGeometric
from urm_models.models.btyd import Purchases


@pytest.fixture(scope="module")
def rfm_sample():
    tx = datasets.load_cdnow(sample=True)
    return features.rfm_summary(tx, cutoff="1997-09-30", freq="W", holdout_end="1998-06-30")


@pytest.fixture(scope="module")
def bg(rfm_sample):
    return BetaGeo().fit(rfm_sample)


# ------------------------------------------------------------------ published estimates


def test_bgnbd_reproduces_fader_hardie_lee_2005(bg):
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
    # Pareto/NBD model", Marketing Science 24(2): r = 0.243, alpha = 4.414, a = 0.793,
    # b = 2.426, LL = -9582.4; four-decimal values from Hardie's note "Implementing the BG/NBD
    # model in Excel" for the same CDNOW sample (weeks, 39-week calibration).
    expected = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    for k, v in expected.items():
        assert bg.params_[k] == pytest.approx(v, rel=1e-3), k
    assert bg.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    # the paper's worked example: x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases in 39 weeks
    one = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    assert bg.conditional_expected_purchases(39, one).iloc[0] == pytest.approx(1.226, abs=1e-3)


def test_bgnbd_holdout_total_matches_reference(bg, rfm_sample):
    # ../shared/FACTS.md: lifetimes' BG/NBD predicts 1,653 of the 1,882 holdout purchases
    pred = bg.conditional_expected_purchases(39, rfm_sample).sum()
    assert pred == pytest.approx(1653, abs=1)


def test_mbgnbd_cdnow_sample(rfm_sample):
    # No peer-reviewed CDNOW MBG/NBD estimate was found; the reference is the independent
    # implementation in lifetimes 0.11.3 (its test suite: r=0.525, alpha=6.183, a=0.891,
    # b=1.614 on this CDNOW sample). Batislam et al. (2007) define the model.
    m = ModifiedBetaGeo().fit(rfm_sample)
    for k, v in {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}.items():
        assert m.params_[k] == pytest.approx(v, abs=1e-3), k
    # MBG/NBD allows death at time 0: customers without repeats are not surely alive
    assert (m.p_alive(rfm_sample[rfm_sample.frequency == 0]) < 1).all()


def test_gamma_gamma_reproduces_fader_hardie_lee_2005_rfm_clv(rfm_sample):
    # Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
    # analysis", JMR 42(4): p = 6.25, q = 3.74, gamma (our v) = 15.44 on the 946 CDNOW sample
    # customers with repeat purchases.
    g = GammaGamma().fit(rfm_sample)
    assert g.n_users_ == 946
    for k, v in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert g.params_[k] == pytest.approx(v, abs=0.01), k
    spend = g.conditional_expected_spend(rfm_sample)
    assert (spend > 0).all()
    # a customer with no repeat purchase gets the population mean p v / (q - 1)
    zero = rfm_sample[rfm_sample.frequency == 0].head(1)
    assert spend[zero.index[0]] == pytest.approx(g.expected_spend())


def test_gamma_gamma_excludes_zero_spend_repeaters(cdnow_master):
    rfm = features.rfm_summary(cdnow_master, cutoff="1997-09-30", freq="W")
    g = GammaGamma().fit(rfm)
    assert g.n_excluded_ == 1  # the one repeat customer whose repeat purchases are worth 0
    assert np.isfinite(g.conditional_expected_spend(rfm)).all()


@pytest.mark.parametrize(
    "name,alive,expected",
    [
        # Fader & Hardie (2007), "How to project customer retention", J. Interactive Marketing
        # 21(1): 8 years of N = 1,000 customers; estimates alpha, beta and LL from the paper.
        ("regular", [1000, 631, 468, 382, 326, 289, 262, 241], (0.704, 1.182, -1680.3)),
        ("high end", [1000, 869, 743, 653, 593, 551, 517, 491], (0.668, 3.806, -1611.2)),
    ],
)
def test_sbg_reproduces_fader_hardie_2007(name, alive, expected):
    m = ShiftedBetaGeometric().fit(alive)
    assert m.params_["alpha"] == pytest.approx(expected[0], abs=1e-3)
    assert m.params_["beta"] == pytest.approx(expected[1], abs=1e-3)
    assert m.log_likelihood_ == pytest.approx(expected[2], abs=0.1)
    s = m.survival(np.arange(8))
    assert s[0] == 1.0 and np.all(np.diff(s) < 0)
    np.testing.assert_allclose(m.retention(np.arange(1, 8)), s[1:] / s[:-1])
    # projected survival tracks the observed series closely (the paper's figure 3)
    assert np.max(np.abs(s * 1000 - np.array(alive))) < 20  # within 2% of the cohort


def test_sbg_derl_matches_discounted_sum():
    m = ShiftedBetaGeometric().fit([1000, 631, 468, 382, 326, 289, 262, 241])
    d = 0.1
    for renewals in (0, 3):
        n = renewals + 1
        t = np.arange(n, 5000)
        brute = np.sum(m.survival(t) / m.survival(n - 1) / (1 + d) ** (t - n))
        assert m.derl(d, renewals=renewals) == pytest.approx(brute, rel=1e-9)


# ------------------------------------------------------------------ the estimator contract


def test_fit_returns_self_and_summary(rfm_sample):
    m = BetaGeo()
    assert m.fit(rfm_sample) is m
    s = m.summary
    assert list(s.columns) == ["estimate", "std_error", "lower_95", "upper_95"]
    assert list(s.index) == ["r", "alpha", "a", "b"]
    assert (s["lower_95"] < s["estimate"]).all() and (s["estimate"] < s["upper_95"]).all()
    assert m.aic_ == pytest.approx(2 * 4 - 2 * m.log_likelihood_)
    assert m.bic_ == pytest.approx(4 * np.log(2357) - 2 * m.log_likelihood_)
    draws = m.sample_params(2_000, seed=1)
    assert list(draws.columns) == ["r", "alpha", "a", "b"] and (draws > 0).all().all()
    assert np.log(draws["r"]).std() == pytest.approx(s.loc["r", "std_error"] / s.loc["r", "estimate"], rel=0.1)


def test_unfitted_and_bad_input_errors(rfm_sample):
    with pytest.raises(NotFittedError, match="not fitted"):
        BetaGeo().p_alive(rfm_sample)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['T'\]"):
        BetaGeo().fit(rfm_sample.drop(columns="T"))
    bad = rfm_sample.copy()
    bad.iloc[:3, bad.columns.get_loc("recency")] = np.nan
    with pytest.raises(ValueError, match="'recency' has 3 missing"):
        BetaGeo().fit(bad)
    bad = rfm_sample.copy()
    bad["recency"] = bad["T"] + 1
    with pytest.raises(ValueError, match="recency > T"):
        BetaGeo().fit(bad)
    with pytest.raises(ValueError, match="penalizer"):
        BetaGeo(penalizer=-1).fit(rfm_sample)


def test_weights_equal_repeated_rows(rfm_sample):
    small = rfm_sample.head(300)
    doubled = pd.concat([small, small])
    a = BetaGeo().fit(doubled)
    b = BetaGeo().fit(small, weights=np.full(len(small), 2.0))
    for k in a.params_:
        assert a.params_[k] == pytest.approx(b.params_[k], rel=1e-6)


def test_penalizer_shrinks_towards_one(rfm_sample):
    free = BetaGeo().fit(rfm_sample)
    pen = BetaGeo(penalizer=0.1).fit(rfm_sample)
    assert np.sum(np.log(list(pen.params_.values())) ** 2) < np.sum(np.log(list(free.params_.values())) ** 2)


def test_convergence_error_says_what_to_try():
    # one customer: the likelihood has no interior maximum
    rfm = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [10.0]})
    with pytest.raises(ConvergenceError, match="penalizer"):
        BetaGeo().fit(rfm)


# ------------------------------------------------------------------ properties

params_st = st.tuples(*[st.floats(-4, 4)] * 4)
history_st = st.tuples(st.integers(0, 500), st.floats(0, 1), st.floats(0.01, 5000))


def _prepared(hist):
    x = np.array([h[0] for h in hist], float)
    T = np.array([h[2] for h in hist], float)
    tx = np.where(x > 0, np.array([h[1] for h in hist]) * T, 0.0)
    return x, tx, T


@settings(max_examples=80, deadline=None)
@given(params_st, st.lists(history_st, min_size=1, max_size=20), st.sampled_from([BetaGeo, ModifiedBetaGeo]))
def test_loglik_finite_and_gradient_matches_finite_differences(lp, hist, cls):
    lp = np.array(lp)
    x, tx, T = _prepared(hist)
    # extreme histories always included: x = 0, recency = T, very large T
    x = np.r_[x, 0, 5, 3]
    tx = np.r_[tx, 0, 1e4, 0.5]
    T = np.r_[T, 1e5, 1e4, 1e6]
    _assert_finite_and_fd_gradient(cls(), lp, Purchases(x, tx, T))


def _assert_finite_and_fd_gradient(m, lp, d):
    """The per-row log-likelihood and gradient are finite; the analytic gradient of the total
    matches central finite differences."""
    ll, g = m._loglik_grad(lp, d)
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(g))
    tot = lambda p: float(d.w @ m._loglik_grad(p, d)[0])  # noqa: E731
    for j in range(lp.size):
        # No single step suits every case: rounding swamps a small step when the total is
        # large or a 2F1 is evaluated near its limits (Pareto), truncation a large one. A
        # right gradient matches the difference quotient at one of three steps; a wrong one
        # at none of them.
        fds = []
        for h in (1e-4, 1e-5, 1e-6):
            e = np.zeros(lp.size)
            e[j] = h
            fds.append((tot(lp + e) - tot(lp - e)) / (2 * h))
        analytic = float(d.w @ g[:, j])
        tol = 1e-4 * max(1.0, abs(tot(lp)))
        assert any(analytic == pytest.approx(fd, rel=1e-4, abs=tol) for fd in fds), (j, analytic, fds)


@settings(max_examples=50, deadline=None)
@given(params_st, st.lists(history_st, min_size=1, max_size=20))
@example((1.0, -1.0, 1.0, 0.0), [(127, 0.0, 0.5)])  # scipy's 2F1 gave nan here (found in CI)
def test_p_alive_in_unit_interval_and_predictions_finite(lp, hist):
    x, tx, T = _prepared(hist)
    rfm = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    for cls in (BetaGeo, ModifiedBetaGeo):
        m = cls()._with_params(dict(zip(("r", "alpha", "a", "b"), np.exp(lp), strict=True)))
        m.params_ = {k: float(v) for k, v in zip(("r", "alpha", "a", "b"), np.exp(lp), strict=True)}
        pa = m.p_alive(rfm)
        assert ((pa >= 0) & (pa <= 1)).all()
        if abs(m.params_["a"] - 1) > 1e-3:
            ce = m.conditional_expected_purchases(10.0, rfm)
            assert np.isfinite(ce).all() and (ce >= -1e-9).all()


def test_probabilities_of_n_purchases_sum_to_one(bg, rfm_sample):
    rows = rfm_sample.sample(50, random_state=0)
    total = sum(bg.probability_of_n_purchases(39, n, rows) for n in range(200))
    np.testing.assert_allclose(total, 1.0, atol=1e-8)
    mean = sum(n * bg.probability_of_n_purchases(39, n, rows) for n in range(200))
    np.testing.assert_allclose(mean, bg.conditional_expected_purchases(39, rows), rtol=1e-6)


def test_the_count_sequence_is_prob_n_to_the_last_bit(bg, rfm_sample):
    """``_prob_n_sequence`` (the CLV intervals' and medians' count distribution, each term from
    the one before) gives exactly ``_prob_n`` for every n, for both models of the family, with
    one set of parameters or one per history."""
    mbg = ModifiedBetaGeo().fit(rfm_sample)
    for model in (bg, mbg):
        x, tx, T, P, _ = model._histories(rfm_sample)
        t = np.full_like(x, 39.0)
        for params in (P, tuple(np.full_like(x, v) for v in model.params_.values())):
            sequence = model._prob_n_sequence(t, x, tx, T, params)
            for n in range(60):
                np.testing.assert_array_equal(next(sequence), model._prob_n(n, t, x, tx, T, params))


def test_gamma_gamma_and_sbg_gradients():
    rng = np.random.default_rng(0)
    d = {"x": rng.integers(1, 50, 30).astype(float), "m": rng.gamma(2, 20, 30)}
    d["logm"], d["logx"] = np.log(d["m"]), np.log(d["x"])
    d["Z"] = np.zeros((30, 0))
    dz = {**d, "Z": rng.normal(size=(30, 2))}  # with two covariates: coefficients 0.3, -0.5
    for m, data, lp in [
        (GammaGamma(), d, np.array([0.5, 1.2, 2.0])),
        (GammaGamma(covariates=["a", "b"]), dz, np.array([0.5, 1.2, 2.0, 0.3, -0.5])),
        (
            ShiftedBetaGeometric(),
            {"t": np.array([1.0, 2, 3, 4, 4]), "survived": np.array([0, 0, 0, 0, 1], bool)},
            np.array([-0.3, 0.2]),
        ),
    ]:
        ll, g = m._loglik_grad(lp, data)
        for j in range(lp.size):
            e = np.zeros(lp.size)
            e[j] = 1e-6
            fd = (m._loglik_grad(lp + e, data)[0].sum() - m._loglik_grad(lp - e, data)[0].sum()) / 2e-6
            assert g[:, j].sum() == pytest.approx(fd, rel=1e-5, abs=1e-6)


# ------------------------------------------------------------------ parameter recovery


@pytest.mark.parametrize(
    "cls,model,params",
    [
        (BetaGeo, "bgnbd", {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
        (ModifiedBetaGeo, "mbgnbd", {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}),
    ],
)
def test_parameter_recovery_200k_users(cls, model, params):
    # simulated in continuous time and summarised without merging same-day purchases, so the
    # data follow the model exactly (see FACTS.md on the bias that merging introduces)
    rfm = datasets.simulate_rfm(200_000, model=model, params=params, seed=11, T=(20, 78))
    m = cls().fit(rfm)
    s = m.summary
    for k, v in params.items():
        assert s.loc[k, "lower_95"] <= v <= s.loc[k, "upper_95"], (k, v, s.loc[k].to_dict())


def test_gamma_gamma_recovery():
    p, q, v = 6.25, 3.74, 15.44
    rfm = datasets.simulate_rfm(200_000, model="bgnbd", seed=5, spend=("gamma_gamma", {"p": p, "q": q, "v": v}))
    g = GammaGamma().fit(rfm)
    s = g.summary
    for k, val in {"p": p, "q": q, "v": v}.items():
        assert s.loc[k, "lower_95"] <= val <= s.loc[k, "upper_95"], (k, s.loc[k].to_dict())


# ------------------------------------------------------------------ Pareto/NBD


@pytest.mark.slow
def test_pareto_nbd_reproduces_published_cdnow(rfm_sample):
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science,
    # Pareto/NBD on the same CDNOW sample: r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67,
    # LL = -9595.0. Holdout MAE of lifetimes' Pareto/NBD on it: 0.7545 (the CLV issue).
    from urm_models.evaluation import holdout
    from urm_models.models import ParetoNBD

    m = ParetoNBD().fit(rfm_sample)
    for k, (v, tol) in {
        "r": (0.55, 0.005),
        "alpha": (10.58, 0.005),
        "s": (0.61, 0.005),
        "beta": (11.67, 0.005),
    }.items():
        assert m.params_[k] == pytest.approx(v, abs=tol), k
    assert m.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    pred = m.conditional_expected_purchases(39, rfm_sample)
    assert holdout.purchase_metrics(pred, rfm_sample["frequency_holdout"])["mae"] == pytest.approx(0.7545, abs=5e-4)
    pa = m.p_alive(rfm_sample)
    assert ((pa > 0) & (pa <= 1)).all()
    rows = rfm_sample.sample(25, random_state=2)
    total = sum(m.probability_of_n_purchases(39, n, rows) for n in range(150))
    np.testing.assert_allclose(total, 1.0, atol=1e-9)
    mean = sum(n * m.probability_of_n_purchases(39, n, rows) for n in range(150))
    np.testing.assert_allclose(mean, m.conditional_expected_purchases(39, rows), rtol=1e-7)
    assert m.expected_purchases(0.0) == 0.0


pareto_params = st.tuples(st.floats(-3, 3), st.floats(-3, 4), st.floats(-3, 3), st.floats(-3, 4))


@settings(max_examples=60, deadline=None)
@given(pareto_params, st.lists(history_st, min_size=1, max_size=15))
@example(
    (1.7655317263903616e-162, 3.633768112972792, 5.389807321954446e-217, -2.660731032325535),
    [
        (0, 0.8638806709087714, 1764.3124042355698),
        (299, 0.7661507788804793, 0.5),
        (342, 8.134609834469473e-254, 408.9627901788162),
        (342, 8.134609834469473e-254, 408.9627901788162),
        (0, 0.437599441799973, 4302.210953342373),
        (432, 1e-09, 4999.999999999999),
        (385, 0.3482841716307226, 0.8),
        (171, 0.8868045590636284, 1420.2318223313016),
        (291, 0.09319258213637106, 3638.7872279205512),
        (151, 0.0, 462.41983457593483),
        (410, 0.99999, 3280.596704768014),
    ],
)  # broke a 1e-6 step in CI
def test_pareto_loglik_finite_and_gradient_matches_finite_differences(lp, hist):
    from urm_models.models import ParetoNBD

    lp = np.array(lp)
    x, tx, T = _prepared(hist)
    x = np.r_[x, 0, 5, 3, 2]
    tx = np.r_[tx, 0, 1e3, 0.5, 7.0]
    T = np.r_[T, 1e4, 1e3, 1e4, 7.0]  # includes recency == T
    _assert_finite_and_fd_gradient(ParetoNBD(), lp, Purchases(x, tx, T))


@pytest.mark.slow
def test_pareto_parameter_recovery_200k_users():
    from urm_models.models import ParetoNBD

    params = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    rfm = datasets.simulate_rfm(200_000, model="paretonbd", params=params, seed=13, T=(20, 78))
    s = ParetoNBD().fit(rfm).summary
    for k, v in params.items():
        assert s.loc[k, "lower_95"] <= v <= s.loc[k, "upper_95"], (k, v, s.loc[k].to_dict())


@pytest.mark.slow
@pytest.mark.parametrize("cls", [BetaGeo, ModifiedBetaGeo])
def test_conditional_expectation_agrees_with_the_distribution_for_heavy_buyers(cls):
    # 2F1 with large parameters is where special-function libraries fail quietly (scipy's
    # hyp2f1(1, 2, 101, 0.95) is inf); the mean of the n-purchase distribution (no 2F1) is an
    # independent check of conditional_expected_purchases for frequent buyers.
    m = cls()._with_params({"r": 0.8, "alpha": 3.0, "a": 0.7, "b": 2.5})
    rows = pd.DataFrame(
        {"frequency": [20, 60, 150, 300], "recency": [30.0, 50.0, 70.0, 77.0], "T": [40.0, 60.0, 78.0, 78.0]}
    )
    t = 39.0
    probs = np.array([m.probability_of_n_purchases(t, n, rows).to_numpy() for n in range(700)])
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-8)
    mean = (np.arange(700)[:, None] * probs).sum(axis=0)
    np.testing.assert_allclose(m.conditional_expected_purchases(t, rows).to_numpy(), mean, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(params_st, st.lists(history_st, min_size=1, max_size=20), st.sampled_from([BetaGeo, ModifiedBetaGeo]))
def test_analytic_hessian_matches_finite_differences_of_the_gradient(lp, hist, cls):
    lp = np.array(lp)
    x, tx, T = _prepared(hist)
    x, tx, T = np.r_[x, 0, 4], np.r_[tx, 0, 9.0], np.r_[T, 50.0, 9.0]
    d = Purchases(x, tx, T)
    m = cls()
    tot, g, H = m._total_hess(lp, d, d.w)
    t2, g2 = m._total(lp, d, d.w)
    assert tot == pytest.approx(t2, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(g, g2, rtol=1e-9, atol=1e-9)
    fd = np.zeros((4, 4))
    for j in range(4):
        e = np.zeros(4)
        e[j] = 1e-6
        fd[:, j] = (m._total(lp + e, d, d.w)[1] - m._total(lp - e, d, d.w)[1]) / 2e-6
    np.testing.assert_allclose(H, fd, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(H).max()))


def test_sbg_parameter_recovery_200k_customers():
    # each customer's churn probability theta ~ Beta(alpha, beta); lifetime ~ Geometric(theta)
    rng = np.random.default_rng(21)
    alpha, beta, n, periods = 0.704, 1.182, 200_000, 12
    theta = rng.beta(alpha, beta, n)
    lifetime = rng.geometric(theta)  # the period in which the customer churns (1, 2, ...)
    alive = [n] + [int((lifetime > t).sum()) for t in range(1, periods)]
    s = ShiftedBetaGeometric().fit(alive).summary
    for k, v in {"alpha": alpha, "beta": beta}.items():
        assert s.loc[k, "lower_95"] <= v <= s.loc[k, "upper_95"], (k, s.loc[k].to_dict())


@settings(max_examples=30, deadline=None)
@given(pareto_params, st.lists(history_st, min_size=1, max_size=15))
def test_pareto_p_alive_in_unit_interval(lp, hist):
    from urm_models.models import ParetoNBD

    x, tx, T = _prepared(hist)
    rfm = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    m = ParetoNBD()._with_params(dict(zip(("r", "alpha", "s", "beta"), np.exp(lp), strict=True)))
    pa = m.p_alive(rfm)
    assert ((pa >= 0) & (pa <= 1)).all()
    assert np.isfinite(m.conditional_expected_purchases(10.0, rfm)).all()


def test_hyp2f1_falls_back_to_the_series_where_scipy_fails():
    from scipy.special import hyp2f1 as scipy_hyp2f1

    from urm_models.models._special import hyp2f1, hyp2f1_series

    a, b, c, z = 1 - 4.440892098500626e-16, np.e - 1, np.e + 128, 10 / (np.exp(-1) + 10.5)
    assert not np.isfinite(scipy_hyp2f1(a, b, c, z))  # the failure being guarded against
    got = float(hyp2f1(a, b, c, z))
    # reference: Euler's integral, Gamma(c) / (Gamma(b) Gamma(c-b)) int t^(b-1) (1-t)^(c-b-1) (1-zt)^(-a) dt
    from scipy import integrate
    from scipy.special import gammaln

    norm = np.exp(gammaln(c) - gammaln(b) - gammaln(c - b))
    ref = (
        norm
        * integrate.quad(
            lambda t: t ** (b - 1) * (1 - t) ** (c - b - 1) * (1 - z * t) ** -a, 0, 1, epsabs=0, epsrel=1e-13, limit=200
        )[0]
    )
    assert np.isfinite(got) and got == pytest.approx(ref, rel=1e-9)
    # where scipy works, the series agrees with it
    args = (np.array([0.3, 2.5, -0.4]), np.array([1.7, 0.2, 3.0]), np.array([4.0, 9.0, 2.5]), np.array([0.1, 0.5, 0.9]))
    np.testing.assert_allclose(hyp2f1_series(*args), scipy_hyp2f1(*args), rtol=1e-12)
    np.testing.assert_allclose(hyp2f1(*args), scipy_hyp2f1(*args), rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_name, cls",
    [("bgnbd", BetaGeo), ("mbgnbd", ModifiedBetaGeo), ("paretonbd", ParetoNBD)],
    ids=["BG/NBD", "MBG/NBD", "Pareto/NBD"],
)
def test_count_distributions_match_simulated_holdouts(model_name, cls):
    """P(n purchases in the next t periods | history) with the true parameters, summed over
    50,000 simulated customers, against how many of them made n purchases in the simulated
    holdout: each count within 4 standard errors (a sum of Bernoulli variances); the
    probabilities sum to 1 and their mean is the conditional expectation."""
    from urm_models.data.simulate import DEFAULT_PARAMS, simulate_rfm

    sim = simulate_rfm(30_000, model_name, spend=None, seed=11, T=(10.0, 60.0), holdout=26.0)
    truth = cls()._with_params(DEFAULT_PARAMS[model_name])
    truth.n_users_ = len(sim)
    probs = np.array([truth.probability_of_n_purchases(26.0, n, sim).to_numpy() for n in range(120)])
    mean = truth.conditional_expected_purchases(26.0, sim).to_numpy()
    light = mean < 10  # the rest have mass beyond 120 purchases
    assert light.mean() > 0.99
    np.testing.assert_allclose(probs[:, light].sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose((np.arange(120)[:, None] * probs[:, light]).sum(axis=0), mean[light], rtol=1e-7)
    no = truth.probability_no_purchase(26.0, sim)
    assert no.name == "p_no_purchase"
    np.testing.assert_allclose(no, probs[0])
    observed = np.bincount(sim["frequency_holdout"].clip(upper=119), minlength=120)
    for n in range(8):
        expected, var = probs[n].sum(), (probs[n] * (1 - probs[n])).sum()
        assert abs(observed[n] - expected) < 4 * np.sqrt(var), (n, observed[n], expected)


def test_hypergeometric_series_near_one_in_blocks():
    from scipy.special import hyp2f1 as scipy_hyp2f1

    from urm_models.models._special import hyp2f1_series

    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 5, 500), rng.uniform(0.1, 50, 500)
    c, z = b + rng.uniform(0.5, 50, 500), rng.uniform(0, 0.95, 500)
    np.testing.assert_allclose(hyp2f1_series(a, b, c, z), scipy_hyp2f1(a, b, c, z), rtol=1e-12)
    # where scipy fails (nan) and ~20,000 terms are needed, against the incomplete-beta form
    # 2F1(1, b; c; z) = (c-1) z^(1-c) (1-z)^(c-b-1) B_z(c-1, b-c+1) (valid for c > 1, b-c+1 > 0)
    from scipy.special import betainc, betaln

    b, c, z = 272.85, 273.36, 0.99822
    exact = np.exp(
        (c - b - 1) * np.log1p(-z)
        + np.log(c - 1)
        + (1 - c) * np.log(z)
        + np.log(betainc(c - 1, b - c + 1, z))
        + betaln(c - 1, b - c + 1)
    )
    assert np.isnan(scipy_hyp2f1(1.0, b, c, z))
    assert hyp2f1_series(1.0, b, c, z) == pytest.approx(exact, rel=1e-11)
    assert np.isnan(hyp2f1_series(1.0, 1.0, 1.5, 1 - 1e-9, max_terms=10_000))  # not converged: NaN, not a guess


def test_gamma_gamma_covariates_recover_known_coefficients_and_none_changes_nothing(cdnow_sample):
    """Spend scales v_i = v exp(0.4 z1 - 0.25 z2) on 200,000 simulated customers: the fit finds
    the coefficients (on the standardised covariates) within 3 standard errors; with an empty
    covariate list the model is today's to 1e-9."""
    rng = np.random.default_rng(5)
    n = 200_000
    z = rng.normal(size=(n, 2)) * [2.0, 0.5] + [1.0, -3.0]
    p, q, v, coef = 6.25, 3.74, 15.44, np.array([0.4, -0.25])
    vi = v * np.exp(z @ coef)
    nu = rng.gamma(q, 1.0 / vi)
    x = 1 + rng.poisson(2.0, n)
    m = rng.gamma(p * x, 1.0 / nu) / x  # the mean of x transactions ~ Gamma(p, nu)
    rfm = pd.DataFrame({"frequency": x, "monetary": m, "z1": z[:, 0], "z2": z[:, 1]})
    fit = GammaGamma(covariates=["z1", "z2"]).fit(rfm)
    s = fit.summary
    mu, sd = fit.covariate_means_, fit.covariate_scales_
    truth = {"p": p, "q": q, "v": v * np.exp(mu @ coef), "coef_z1": coef[0] * sd[0], "coef_z2": coef[1] * sd[1]}
    for k, t in truth.items():
        assert abs(s.loc[k, "estimate"] - t) < 3 * s.loc[k, "std_error"], (k, t, s.loc[k].to_dict())
    assert s.loc["coef_z1", "lower_95"] < s.loc["coef_z1", "estimate"] < s.loc["coef_z1", "upper_95"]
    # predictions use each customer's own scale
    spend = fit.conditional_expected_spend(rfm.head(3))
    vi_hat = fit.params_["v"] * np.exp(((z[:3] - mu) / sd) @ [fit.params_["coef_z1"], fit.params_["coef_z2"]])
    np.testing.assert_allclose(
        spend, fit.params_["p"] * (vi_hat + x[:3] * m[:3]) / (fit.params_["p"] * x[:3] + fit.params_["q"] - 1)
    )
    draws = fit.sample_params(5)
    assert list(draws.columns) == ["p", "q", "v", "coef_z1", "coef_z2"] and (draws["coef_z2"] < 0).all()
    # no covariates: the plain model
    from urm_models import features

    rfm_c = features.rfm_summary(cdnow_sample, "1997-09-30", freq="W")
    a, b = GammaGamma().fit(rfm_c), GammaGamma(covariates=[]).fit(rfm_c)
    for k in ("p", "q", "v"):
        assert b.params_[k] == pytest.approx(a.params_[k], rel=1e-9)
    assert b.log_likelihood_ == pytest.approx(a.log_likelihood_, rel=1e-12)
    old = GammaGamma().fit(rfm_c)
    del old.__dict__["covariates"]  # as pickled before covariates existed: still predicts the same
    pd.testing.assert_series_equal(old.conditional_expected_spend(rfm_c), a.conditional_expected_spend(rfm_c))
    with pytest.raises(ValueError, match=r"rfm lacks covariate column\(s\) \['z3'\]"):
        GammaGamma(covariates=["z3"]).fit(rfm)
    with pytest.raises(ValueError, match=r"covariate\(s\) \['k'\] are constant"):
        GammaGamma(covariates=["k"]).fit(rfm.assign(k=1.0))
    with pytest.raises(ValueError, match="covariate 'z1' has 2 missing"):
        GammaGamma(covariates=["z1"]).fit(rfm.assign(z1=np.r_[np.nan, np.nan, z[2:, 0]]))


def test_pareto_nbd_refuses_data_too_young_to_identify_dropout(cdnow_master):
    """At 1997-04-01 every CDNOW customer is at most 13 weeks old: the likelihood keeps rising
    as s and beta run off together (no dropout heterogeneity), where each evaluation takes
    seconds. The fit stops at s = 300 and says why and what to do, instead of searching for
    minutes; with a small penalizer it fits."""
    from urm_models import features
    from urm_models.core.errors import ConvergenceError

    rfm = features.rfm_summary(cdnow_master, "1997-04-01", freq="W")
    with pytest.raises(
        ConvergenceError,
        match=r"dropout rates cannot be told apart .* s/beta = 0.05\d+ per period.*"
        r"6.73 periods old on average\). Fit BetaGeo",
    ):
        ParetoNBD().fit(rfm)
    assert ParetoNBD(penalizer=0.001).fit(rfm).params_["s"] < 10


@pytest.mark.parametrize("model", [BetaGeo(penalizer=0.01), ModifiedBetaGeo(), ParetoNBD(), GammaGamma()])
def test_the_btyd_models_are_scikit_learn_estimators(model, rfm_sample):
    """get_params / clone / check_is_fitted work as on any scikit-learn estimator; fitted
    attributes end in '_'; an unfitted model raises scikit-learn's NotFittedError (the package's
    NotFittedError is that class: one not-fitted error for every model)."""
    import pickle

    import sklearn
    from sklearn.base import clone
    from sklearn.utils.validation import check_is_fitted

    assert NotFittedError is sklearn.exceptions.NotFittedError
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    data = rfm_sample if not isinstance(model, GammaGamma) else rfm_sample[rfm_sample.frequency > 0]
    fitted = copy.fit(data)
    assert fitted is copy
    check_is_fitted(fitted)
    assert fitted.param_names_ == type(model).param_names and fitted.real_params_ == ()
    assert not hasattr(fitted, "param_names") or fitted.param_names is type(model).param_names
    assert list(fitted.summary.index) == list(fitted.param_names_)
    with pytest.raises(NotFittedError):
        check_is_fitted(clone(fitted))  # a clone keeps the settings, not the fit
    # a champion pickled before the fitted names had their underscore still loads and predicts
    state = fitted.__dict__.copy()
    state["param_names"], state["real_params"] = state.pop("param_names_"), state.pop("real_params_")
    old = object.__new__(type(fitted))
    old.__setstate__(state)
    again = pickle.loads(pickle.dumps(old))
    assert again.param_names_ == fitted.param_names_ and "param_names" not in vars(again)
    pd.testing.assert_frame_equal(again.summary, fitted.summary)
