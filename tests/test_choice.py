"""The one rule that chooses a purchase model reads nothing after the cut-off (issue 28): it is
judged on inner windows inside the calibration period, close calls go to the simpler model, and
the holdout it never saw is what gets reported."""

from dataclasses import replace

import pandas as pd
import pytest

from urm_models import features
from urm_models.evaluation import holdout
from urm_models.models import BetaGeo, ModifiedBetaGeo, ParetoNBD, ShiftedWindowPurchases, boosting

CUT = "1997-09-30"


def candidates():
    return {
        "BetaGeo": BetaGeo(),
        "ModifiedBetaGeo": ModifiedBetaGeo(),
        "ParetoNBD": ParetoNBD(),
        "ShiftedWindowPurchases": ShiftedWindowPurchases(boosting=replace(boosting.SHIFTED, n_estimators=100)),
    }


@pytest.fixture(scope="module")
def choice(cdnow_sample):
    return holdout.choose_on_inner_windows(cdnow_sample, CUT, candidates(), freq="W", horizon=39)


@pytest.mark.slow
def test_the_choice_never_reads_the_holdout(cdnow_sample, choice):
    """Holdout purchases halved, moved and their amounts multiplied: the same choice, the same table."""
    later = cdnow_sample[cdnow_sample["ts"] > CUT].sample(frac=0.5, random_state=1)
    later = later.assign(amount=later["amount"] * 100, ts=later["ts"] + pd.Timedelta(days=3))
    changed = pd.concat([cdnow_sample[cdnow_sample["ts"] <= CUT], later], ignore_index=True)
    again = holdout.choose_on_inner_windows(changed, CUT, candidates(), freq="W", horizon=39)
    assert again.choice == choice.choice
    pd.testing.assert_frame_equal(again.table, choice.table)
    # and the holdout does differ: a rule reading it would have seen another table
    before = features.rfm_summary(cdnow_sample, CUT, freq="W", holdout_end="1998-06-30")["frequency_holdout"].sum()
    after = features.rfm_summary(changed, CUT, freq="W", holdout_end="1998-06-30")["frequency_holdout"].sum()
    assert after < 0.6 * before


def test_inner_windows_come_from_the_data_and_precede_the_cutoff(cdnow_sample, choice):
    assert choice.choice in candidates()
    # every CDNOW customer starts in Q1 1997: the holdout's 39 weeks do not fit before 1997-09-30,
    # the longest window whose cohort is at least half its length old does
    assert 2 <= choice.horizon < 39
    for origin in choice.origins:
        assert origin + pd.Timedelta(weeks=choice.horizon) <= pd.Timestamp(CUT)
    assert (choice.table["origins_validated"] == len(choice.origins)).all()
    best = choice.table["rmse"].idxmin()
    assert choice.table.loc[choice.choice, "tied"] and choice.table.loc[best, "mse_difference"] <= 0
    # the tie rule: the chosen is the first tied candidate in the order given (simplest first)
    tied = choice.table.index[choice.table["tied"]]
    assert choice.choice == tied[0]


def test_a_close_call_goes_to_the_simpler_model(cdnow_sample):
    """The same model under two names ties exactly: the first named wins, whichever it is."""
    a = holdout.choose_on_inner_windows(cdnow_sample, CUT, {"simple": ParetoNBD(), "fancy": ParetoNBD()}, horizon=39)
    b = holdout.choose_on_inner_windows(cdnow_sample, CUT, {"fancy": ParetoNBD(), "simple": ParetoNBD()}, horizon=39)
    assert (a.choice, b.choice) == ("simple", "fancy")


def test_too_little_history_is_refused_with_what_is_needed(cdnow_sample):
    with pytest.raises(ValueError, match="too little history before 1997-01-10 to validate.*choose a later cut-off"):
        holdout.choose_on_inner_windows(cdnow_sample, "1997-01-10", candidates(), horizon=39)


def test_the_pool_is_one_more_candidate_judged_on_the_same_windows(choice):
    """The linear pool of the BTYD choice and the shifted-window model joins the candidates, last
    (the most complex), with its weight from the inner windows alone."""
    assert holdout.POOL in choice.table.index and choice.table.index[-1] == holdout.POOL
    assert set(choice.pool) == {"ShiftedWindowPurchases", *[n for n in choice.pool if n != "ShiftedWindowPurchases"]}
    assert len(choice.pool) == 2 and abs(sum(choice.pool.values()) - 1) < 1e-12
    assert all(0 <= w <= 1 for w in choice.pool.values())
    assert choice.table["pool_weight"].notna().sum() == 2


def _windows(flexible, seed=0, n=4000):
    """Inner windows of one origin where a BTYD model forecasts 'truth + noise' and the other
    candidate what ``flexible`` says."""
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = rng.gamma(0.5, 2.0, n)
    actual = rng.poisson(truth).astype(float)
    simple = truth * 0.7 + 0.3 * truth.mean()
    users = pd.Index([f"u{i}" for i in range(n)])
    return holdout.InnerWindows(
        origins=[pd.Timestamp("2020-01-01")],
        horizon=13.0,
        users=[users],
        actual=[actual],
        predictions={"BetaGeo": [simple], "Other": [flexible(truth, rng)]},
        btyd=["BetaGeo"],
    )


def test_the_pools_weight_is_cross_fitted_and_a_useless_partner_gets_none():
    import numpy as np

    # the other model knows the truth: the pool leans on it and beats the BTYD model beyond noise
    good = holdout.add_pool(_windows(lambda t, rng: t))
    assert good.pool["Other"] > 0.8
    assert holdout.decide_on_inner_windows(good).choice in ("Other", holdout.POOL)
    # the other model is noise: weight near 0, and the pool (its weight fitted on the other half of the
    # users) is no better than the BTYD model: the simpler one is chosen
    noise = holdout.add_pool(_windows(lambda t, rng: rng.gamma(0.5, 2.0, len(t))))
    assert noise.pool["Other"] < 0.1
    assert holdout.decide_on_inner_windows(noise).choice == "BetaGeo"
    # the pool's inner forecasts are not the in-sample fit: the weight of each half came from the other
    half = holdout.add_pool(_windows(lambda t, rng: t * rng.lognormal(0.0, 0.7, len(t))))
    w = half.pool["Other"]
    assert 0.1 < w < 0.9
    fit_in_sample = w * half.predictions["Other"][0] + (1 - w) * half.predictions["BetaGeo"][0]
    assert not np.allclose(half.predictions[holdout.POOL][0], fit_in_sample)
    # without a BTYD model or without another one there is nothing to pool
    only = _windows(lambda t, rng: t)
    only.btyd = []
    assert holdout.POOL not in holdout.add_pool(only).predictions


def test_a_pooled_clv_model_scores_the_weighted_average_of_its_parts(cdnow_sample):
    import numpy as np

    from urm_models.models import CLVScorer, GammaGamma, LinearPool

    rfm = features.rfm_summary(cdnow_sample, CUT, freq="W")
    bg, pn, gg = BetaGeo().fit(rfm), ParetoNBD().fit(rfm), GammaGamma().fit(rfm)
    pool = LinearPool({"BetaGeo": bg, "ParetoNBD": pn}, {"BetaGeo": 0.3, "ParetoNBD": 0.7})
    out = CLVScorer(pool, gg, rfm_freq="W", churn_window=13).predict(rfm)
    a = CLVScorer(bg, gg, rfm_freq="W", churn_window=13).predict(rfm)
    b = CLVScorer(pn, gg, rfm_freq="W", churn_window=13).predict(rfm)
    assert list(out.columns) == CLVScorer.columns
    np.testing.assert_allclose(out.to_numpy(), (0.3 * a + 0.7 * b).to_numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="sum to 1"):
        LinearPool({"BetaGeo": bg, "ParetoNBD": pn}, {"BetaGeo": 0.3, "ParetoNBD": 0.6})
