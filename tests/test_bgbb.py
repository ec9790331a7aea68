"""BG/BB against its paper (Fader, Hardie & Shang 2010) on the donations data it was built
for, and against simulation."""

import numpy as np
import pandas as pd
import pytest

from urm_models.data import datasets
from urm_models.data.simulate import BGBB_PARAMS, simulate_bgbb
from urm_models.models import BetaGeoBetaBinom


@pytest.fixture(scope="module")
def donations():
    return datasets.load_donations()


@pytest.fixture(scope="module")
def fitted(donations):
    return BetaGeoBetaBinom().fit(donations, weights=donations["weights"])


def test_donations_data_as_published(donations):
    assert donations["weights"].sum() == 11_104 and (donations["n_periods"] == 6).all()
    assert len(donations) == 22  # every (frequency, recency) history of 6 years
    assert donations.loc[(donations.frequency == 0), "weights"].item() == 3_464


def test_reproduces_fader_hardie_shang_2010(fitted, donations):
    """Fader, Hardie & Shang (2010), Marketing Science 29(6): the 1995 cohort's parameter
    estimates (alpha 1.204, beta 0.750, gamma 0.657, delta 2.783; LL -33,225.6), Table 6's
    P(alive in 2002), and, from the paper's companion spreadsheet (Hardie, "BG/BB", note 010),
    the expected repeat donations in the next five years (12,884.2) and the expected number of
    donors with 0 and with 6 repeat donations in 1996-2001 (3,454.9 and 1,253.1)."""
    p = fitted.params_
    for name, published in {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}.items():
        assert round(p[name], 3) == published, name  # as printed in the paper: 3 decimals
    assert round(fitted.log_likelihood_, 1) == -33_225.6
    alive = fitted.p_alive(donations)  # P(alive in 2002)
    for (x, tx), published in {(0, 0): 0.11, (2, 4): 0.59, (6, 6): 0.93}.items():
        got = alive[(donations.frequency == x) & (donations.recency == tx)].item()
        assert round(got, 2) == published, (x, tx, got)
    five_years = (fitted.conditional_expected_purchases(5, donations) * donations["weights"]).sum()
    assert round(five_years, 1) == 12_884.2
    n = donations["weights"].sum()
    assert round(n * fitted.probability_of_n_purchases(6, 0), 1) == 3_454.9
    assert round(n * fitted.probability_of_n_purchases(6, 6), 1) == 1_253.1
    # standard errors come with the estimates
    assert (fitted.summary["std_error"] > 0).all() and list(fitted.summary.index) == list(BGBB_PARAMS)


def test_gradient_matches_finite_differences(donations):
    m = BetaGeoBetaBinom()
    x, tx, n = (donations[c].to_numpy(float) for c in ("frequency", "recency", "n_periods"))
    d = {"x": x, "tx": tx, "n": n}
    lp = np.log([1.3, 0.8, 0.6, 2.5])
    ll, g = m._loglik_grad(lp, d)
    for j in range(4):
        e = np.zeros(4)
        e[j] = 1e-6
        fd = (m._loglik_grad(lp + e, d)[0] - m._loglik_grad(lp - e, d)[0]) / 2e-6
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-6, atol=1e-8)


def test_weights_equal_one_row_per_donor(fitted, donations):
    exploded = donations.loc[donations.index.repeat(donations["weights"])].reset_index(drop=True)
    assert len(exploded) == 11_104
    again = BetaGeoBetaBinom().fit(exploded)
    for k in fitted.params_:
        assert again.params_[k] == pytest.approx(fitted.params_[k], rel=1e-6)
    assert again.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-10)


def test_count_distributions_sum_to_one_and_match_the_expectations(fitted, donations):
    for t in (1, 5, 10):
        probs = [fitted.probability_of_n_purchases(t, k) for k in range(t + 1)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-9)
        assert sum(k * q for k, q in enumerate(probs)) == pytest.approx(fitted.expected_purchases(t), rel=1e-9)
        cond = [fitted.probability_of_n_purchases(t, k, donations) for k in range(t + 1)]
        np.testing.assert_allclose(sum(cond), 1.0, atol=1e-9)
        np.testing.assert_allclose(
            sum(k * q for k, q in enumerate(cond)), fitted.conditional_expected_purchases(t, donations), rtol=1e-9
        )
    assert fitted.probability_of_n_purchases(6, 7) == 0.0


def test_dert_is_the_discounted_sum_of_future_transactions(fitted, donations):
    d = 0.1
    dert = fitted.discounted_expected_transactions(donations, d)
    # the same sum, term by term: transactions expected in opportunity n + k, discounted
    cum = [fitted.conditional_expected_purchases(k, donations).to_numpy() for k in range(0, 400)]
    brute = sum((cum[k] - cum[k - 1]) / (1 + d) ** k for k in range(1, 400))
    np.testing.assert_allclose(dert.to_numpy(), brute, rtol=1e-8)
    with pytest.raises(ValueError, match="discount_rate must be > 0"):
        fitted.discounted_expected_transactions(donations, 0.0)


def test_simulated_donors_match_the_model_and_recover_the_parameters():
    sim = simulate_bgbb(200_000, n_periods=6, seed=7, holdout=5)
    m = BetaGeoBetaBinom().fit(sim)
    s = m.summary
    for k, true in BGBB_PARAMS.items():
        assert abs(s.loc[k, "estimate"] - true) < 3 * s.loc[k, "std_error"], (k, s.loc[k].to_dict())
    # the counts of each number of transactions in 6 opportunities, against the model with the
    # true parameters: within 4 binomial standard errors each
    truth = m._with_params(BGBB_PARAMS)
    n = len(sim)
    for k in range(7):
        q = truth.probability_of_n_purchases(6, k)
        observed = int((sim["frequency"] == k).sum())
        assert abs(observed - n * q) < 4 * np.sqrt(n * q * (1 - q)), k
    # the holdout: 5 more opportunities, predicted from each history
    pred = truth.conditional_expected_purchases(5, sim)
    assert pred.sum() == pytest.approx(sim["frequency_holdout"].sum(), rel=0.01)
    g = sim.assign(pred=pred).groupby(["frequency", "recency"])
    mean, se = g[["pred", "frequency_holdout"]].mean(), g["frequency_holdout"].sem()
    assert len(mean) == 22
    assert (abs(mean["pred"] - mean["frequency_holdout"]) < 4 * se + 1e-9).all(), mean.assign(se=se)


def test_bad_histories_name_the_column_and_rows():
    ok = pd.DataFrame({"frequency": [0, 1, 2], "recency": [0, 3, 2], "n_periods": [6, 6, 6]})
    for bad, message in [
        (ok.assign(recency=[0, 3, 7]), r"1 rows have recency > n_periods"),
        (ok.assign(frequency=[0, 4, 2]), r"1 rows have frequency > recency"),
        (ok.assign(recency=[1, 3, 2]), r"1 rows have frequency 0 but recency > 0"),
        (ok.assign(frequency=[0, 1.5, 2]), r"column 'frequency' has 1 rows that are not whole numbers"),
        (ok.drop(columns="n_periods"), r"lacks column\(s\) \['n_periods'\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            BetaGeoBetaBinom().fit(bad)
    with pytest.raises(ValueError, match="one finite, non-negative number per row"):
        BetaGeoBetaBinom().fit(ok, weights=[1, -1, 1])


def test_a_file_that_is_not_the_donations_table_is_refused(tmp_path):
    p = tmp_path / "donations.csv"
    p.write_text("frequency,recency,periods,weights\n0,0,6,many\n")
    with pytest.raises(datasets.DataValidationError, match=str(p)):
        datasets.load_donations(p)
    p.write_text("frequency,recency,n,weights\n0,0,6,1\n")
    with pytest.raises(
        datasets.DataValidationError, match=r"expected \['frequency', 'recency', 'periods', 'weights'\]"
    ):
        datasets.load_donations(p)


def test_clv_with_bgbb_is_spend_times_dert_over_a_long_horizon(fitted, donations):
    """customer_lifetime_value with BG/BB counts the horizon in opportunities (years here): over
    300 years at 10% a year the discounted sum is the closed-form DERT, times the expected spend."""
    from urm_models.models import GammaGamma, customer_lifetime_value

    rng = np.random.default_rng(0)
    rows = donations.loc[donations.index.repeat(donations["weights"])].reset_index(drop=True)
    rows["monetary"] = np.where(rows["frequency"] > 0, rng.gamma(6.0, 10.0, len(rows)), 0.0)
    spend = GammaGamma().fit(rows)
    clv = customer_lifetime_value(fitted, spend, rows, horizon=300, discount_rate=0.1, margin=0.5)
    dert = fitted.discounted_expected_transactions(rows, 0.1)
    np.testing.assert_allclose(clv["clv"], 0.5 * clv["expected_spend"] * dert, rtol=1e-9)
    five = customer_lifetime_value(fitted, spend, rows, horizon=5, discount_rate=0.0, n_draws=10)
    np.testing.assert_allclose(five["expected_purchases"], fitted.conditional_expected_purchases(5, rows), rtol=1e-12)
    np.testing.assert_allclose(five["clv"], five["expected_spend"] * five["expected_purchases"], rtol=1e-9)
    assert (five["clv_lower"] <= five["clv"] + 1e-9).all() and (five["clv"] <= five["clv_upper"] + 1e-9).all()
    with pytest.raises(ValueError, match="counts time in its opportunities"):
        customer_lifetime_value(fitted, spend, rows, horizon=5, freq="M")
