"""Gamma-Gompertz/NBD (Bemmaor & Glady 2012): the published CDNOW fit, the likelihood against
the simulator and adaptive quadrature, its Pareto/NBD limit, and the prediction API."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from urm_models import features
from urm_models.data import datasets, simulate
from urm_models.models import GammaGamma, GammaGompertzNBD, ParetoNBD, customer_lifetime_value
from urm_models.models.btyd import purchase_histories


@pytest.fixture(scope="module")
def rfm_sample():
    tx = datasets.load_cdnow(sample=True)
    return features.rfm_summary(tx, cutoff="1997-09-30", freq="W", holdout_end="1998-06-30")


@pytest.fixture(scope="module")
def fitted(rfm_sample):
    return GammaGompertzNBD().fit(rfm_sample)


def _loglik(model, params: dict, rfm) -> float:
    """The total log-likelihood of ``rfm`` at ``params`` (natural scale)."""
    d, _ = purchase_histories(rfm, None)
    model.param_names_, model.real_params_ = model.param_names, ()
    ll, _ = model._loglik_grad(np.log([params[k] for k in model.param_names]), d)
    return float(d.w @ ll)


def test_reproduces_bemmaor_and_glady_table_2_on_cdnow(fitted, rfm_sample):
    """Bemmaor & Glady (2012), Management Science 58(5), Table 2, CDNOW (the 2,357-customer
    sample, 39 calibration weeks): r = 0.553, alpha = 10.578, b = 0.0002, s = 0.603,
    beta = 0.0026, LL = -9594.98. On this data the likelihood rises towards b -> 0 along a ridge
    where only beta / b is identified (the Pareto/NBD limit, beta / b its scale: 11.67): the fit
    stops at the limit, and b = 0.0002 is a point on the ridge 0.0016 log-likelihood units below."""
    p = fitted.params_
    assert fitted.log_likelihood_ == pytest.approx(-9594.98, abs=0.005)
    assert p["r"] == pytest.approx(0.553, abs=5e-4) and p["alpha"] == pytest.approx(10.578, abs=1e-3)
    assert fitted.pareto_limit_ and p["b"] * rfm_sample["T"].max() < 1e-3
    pareto = ParetoNBD().fit(rfm_sample)
    assert p["beta"] / p["b"] == pytest.approx(pareto.params_["beta"], rel=1e-3)  # 11.67
    assert p["s"] == pytest.approx(pareto.params_["s"], rel=1e-3)
    # the published b and beta are on the ridge within their rounding (b in [0.00015, 0.00025))
    assert 0.00255 / 0.00025 < p["beta"] / p["b"] < 0.00265 / 0.00015
    # the profile likelihood at the published b: the other estimates are Table 2's
    model = GammaGompertzNBD()
    d, _ = purchase_histories(rfm_sample, None)
    model.param_names_, model.real_params_ = model.param_names, ()

    def neg(q):
        ll, g = model._loglik_grad(np.insert(q, 2, np.log(0.0002)), d)
        return -(d.w @ ll), -np.delete(d.w @ g, 2)

    from scipy import optimize

    res = optimize.minimize(neg, np.delete(fitted.log_params_, 2), jac=True, method="BFGS", options={"gtol": 1e-6})
    r, alpha, s, beta = np.exp(res.x)
    assert -res.fun == pytest.approx(-9594.98, abs=0.005)
    assert (round(r, 3), round(alpha, 3), round(s, 3)) == (0.553, 10.578, 0.604)  # published s 0.603
    assert 0.0002 * 11.0 < beta < 0.0002 * 12.5  # 0.0023; published 0.0026 with b rounded to 0.0002
    # standard errors: r and alpha as published (0.049, 0.949); s differs (ours 0.19, theirs 0.039:
    # CLVTools found the same and notes the paper does not say how it derived them); b and beta
    # alone are not identified at the limit
    se = fitted.summary["std_error"]
    assert se["r"] == pytest.approx(0.049, abs=0.005) and se["alpha"] == pytest.approx(0.949, abs=0.15)
    assert se["b"] > 100 * fitted.params_["b"]


def test_the_likelihood_is_the_simulators_distribution():
    """P(x repeat purchases by T) from the likelihood (x = 0 directly, x = 1 integrated over the
    last purchase's time) against 200,000 simulated customers with a hazard rising with age."""
    true = {"r": 0.55, "alpha": 10.0, "b": 0.1, "s": 0.5, "beta": 1.0}
    T = 60.0
    rfm = simulate.simulate_rfm(200_000, "ggompertznbd", params=true, seed=0, T=np.full(200_000, T))
    model = GammaGompertzNBD()
    zero = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [T]})
    p0 = np.exp(_loglik(model, true, zero))

    def density(t):
        return np.exp(_loglik(model, true, pd.DataFrame({"frequency": [1.0], "recency": [t], "T": [T]})))

    p1 = integrate.quad(density, 0.0, T, limit=200)[0]
    for p, observed in ((p0, (rfm["frequency"] == 0).mean()), (p1, (rfm["frequency"] == 1).mean())):
        assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / 200_000)  # 0.633, 0.163


def test_quadrature_equals_adaptive_integration_and_the_pareto_limit(fitted, rfm_sample):
    """Gauss-Legendre with 48 nodes against scipy's adaptive quadrature of the death-time
    integral, row by row; near b -> 0 (beta / b fixed) the likelihood, P(alive), expectations and
    the count distribution are Pareto/NBD's."""
    params = {"r": 0.6, "alpha": 9.0, "b": 0.03, "s": 0.8, "beta": 0.5}
    rows = rfm_sample.drop_duplicates(["frequency", "recency", "T"]).head(40)
    model = GammaGompertzNBD()
    r, alpha, b, s, beta = (params[k] for k in model.param_names)
    for _, row in rows.iterrows():
        x, tx, T = row["frequency"], row["recency"], row["T"]

        def f(tau, x=x):
            return (alpha + tau) ** -(r + x) * b * s * np.exp(b * tau) * beta**s / (beta + np.expm1(b * tau)) ** (s + 1)

        alive = (alpha + T) ** -(r + x) * (beta / (beta + np.expm1(b * T))) ** s
        died = integrate.quad(f, tx, T, epsabs=0, epsrel=1e-13)[0] if T > tx else 0.0
        from scipy.special import gammaln

        expected = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + np.log(alive + died)
        assert _loglik(model, params, row.to_frame().T.astype(float)) == pytest.approx(expected, rel=1e-12)
    pareto = ParetoNBD().fit(rfm_sample)
    near = fitted._with_params(
        {**fitted.params_, "b": 1e-9, "beta": 1e-9 * pareto.params_["beta"], "s": pareto.params_["s"]}
    )
    for a, b_ in (
        (near.p_alive(rfm_sample), pareto.p_alive(rfm_sample)),
        (near.conditional_expected_purchases(39, rfm_sample), pareto.conditional_expected_purchases(39, rfm_sample)),
        (near.probability_of_n_purchases(39, 2, rfm_sample), pareto.probability_of_n_purchases(39, 2, rfm_sample)),
        (near.expected_purchases(np.array([10.0, 39.0])), pareto.expected_purchases(np.array([10.0, 39.0]))),
    ):
        np.testing.assert_allclose(a, b_, rtol=1e-6)


@pytest.mark.slow
def test_predictions_api(fitted, rfm_sample):
    """Summary, P(alive), expected purchases, the count distribution and CLV, as the other BTYD
    models give them; the count distribution sums to 1 and its mean is the expectation."""
    assert list(fitted.summary.columns) == ["estimate", "std_error", "lower_95", "upper_95"]
    assert list(fitted.summary.index) == ["r", "alpha", "b", "s", "beta"]
    pa = fitted.p_alive(rfm_sample)
    assert ((pa > 0) & (pa <= 1)).all()
    mean = fitted.conditional_expected_purchases(39, rfm_sample)
    pmf = np.column_stack([fitted.probability_of_n_purchases(39, n, rfm_sample) for n in range(200)])
    np.testing.assert_allclose(pmf.sum(1), 1.0, atol=1e-7)
    np.testing.assert_allclose(pmf @ np.arange(200), mean, rtol=1e-5)
    # on a rising hazard too (not only at the Pareto limit)
    rising = fitted._with_params({"r": 0.6, "alpha": 9.0, "b": 0.03, "s": 0.8, "beta": 0.5})
    pmf = np.column_stack([rising.probability_of_n_purchases(39, n, rfm_sample) for n in range(200)])
    np.testing.assert_allclose(pmf @ np.arange(200), rising.conditional_expected_purchases(39, rfm_sample), rtol=1e-5)
    total = mean.sum()
    assert total == pytest.approx(
        ParetoNBD().fit(rfm_sample).conditional_expected_purchases(39, rfm_sample).sum(), rel=1e-3
    )  # the Pareto limit: 1,666 of the holdout's 1,882
    clv = customer_lifetime_value(fitted, GammaGamma().fit(rfm_sample), rfm_sample, horizon=12, freq="M")
    assert (clv["clv"] >= 0).all() and clv["clv"].sum() > 0
    with pytest.raises(ValueError, match="nodes must be a whole number >= 4"):
        GammaGompertzNBD(nodes=2).fit(rfm_sample)


@pytest.mark.slow
def test_recovers_a_rising_hazard_from_simulated_customers():
    """4,000 simulated customers observed 100-200 weeks with a hazard rising with age (b = 0.05):
    every estimate within 3 standard errors of the truth (seeds 0-3 measured: |z| <= 1.8), far
    from the Pareto/NBD limit."""
    true = {"r": 0.55, "alpha": 10.0, "b": 0.05, "s": 2.0, "beta": 20.0}
    rfm = simulate.simulate_rfm(4_000, "ggompertznbd", params=true, seed=0, T=(100.0, 200.0))
    m = GammaGompertzNBD(nodes=24).fit(rfm)
    s = m.summary
    z = (s["estimate"] - pd.Series(true)) / s["std_error"]
    assert (z.abs() < 3).all(), z.to_dict()
    assert not m.pareto_limit_ and s.loc["b", "lower_95"] > 0.03
