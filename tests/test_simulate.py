"""The simulators draw from the processes they name (means checked against closed forms)."""

import numpy as np
import pandas as pd
import pytest

from urm_models import features
from urm_models.data import datasets


def test_deterministic_given_seed_and_sorted():
    a = datasets.simulate_transactions(2_000, seed=3)
    b = datasets.simulate_transactions(2_000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(datasets.simulate_transactions(2_000, seed=4))
    assert (a.groupby("user_id")["ts"].apply(lambda s: s.is_monotonic_increasing)).all()
    assert a["user_id"].nunique() == 2_000  # everyone has a first purchase


@pytest.mark.parametrize(
    "model,extra",
    [
        ("bgnbd", {"a": 1e-3, "b": 1e3}),  # p ~ 1e-6: nobody drops out
        ("paretonbd", {"s": 1e-3, "beta": 1e3}),  # mu ~ 1e-6
    ],
)
def test_without_dropout_repeat_purchases_are_nbd(model, extra):
    n, T = 40_000, 30.0
    tx, users = datasets.simulate_transactions(
        n,
        model=model,
        params={"r": 2.0, "alpha": 10.0, **extra},
        T=np.full(n, T),
        seed=1,
        spend=None,
        return_users=True,
    )
    x = tx.groupby("user_id").size() - 1
    # NBD: E[X(T)] = r T / alpha; Var = r T/alpha + r (T/alpha)^2
    mean, var = 2.0 * T / 10.0, 2.0 * T / 10.0 + 2.0 * (T / 10.0) ** 2
    assert abs(x.mean() - mean) < 4 * np.sqrt(var / n)


def test_bgnbd_dropout_matches_closed_form():
    # BG/NBD, E[X(t)] = (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r * 2F1(r, b; a+b-1; t/(alpha+t))]
    from scipy.special import hyp2f1

    r, alpha, a, b, t, n = 0.8, 5.0, 2.5, 3.0, 40.0, 200_000
    tx = datasets.simulate_transactions(
        n, params={"r": r, "alpha": alpha, "a": a, "b": b}, T=np.full(n, t), seed=7, spend=None
    )
    x = tx.groupby("user_id").size() - 1
    expected = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    assert abs(x.mean() - expected) < 4 * x.std() / np.sqrt(n)


def test_gamma_gamma_spend_mean():
    p, q, v = 6.0, 4.0, 15.0
    tx = datasets.simulate_transactions(50_000, spend=("gamma_gamma", {"p": p, "q": q, "v": v}), seed=2)
    # E[z] = p v / (q - 1)
    per_user = tx.groupby("user_id")["amount"].mean()
    assert per_user.mean() == pytest.approx(p * v / (q - 1), rel=0.03)


def test_mbgnbd_can_drop_at_time_zero():
    n = 20_000
    tx = datasets.simulate_transactions(
        n, model="mbgnbd", params={"a": 1.0, "b": 1.0, "r": 5, "alpha": 1}, T=np.full(n, 50.0), seed=0, spend=None
    )
    x = tx.groupby("user_id").size() - 1
    # with p ~ U(0,1), P(drop at time 0) = 1/2 and those users make no repeat purchase
    assert (x == 0).mean() == pytest.approx(0.5, abs=0.02)


def test_simulated_transactions_feed_rfm_summary():
    tx = datasets.simulate_transactions(3_000, seed=0, cutoff="2020-12-31", holdout=10, T=(5, 40))
    rfm = features.rfm_summary(tx, cutoff="2020-12-31", freq="W", holdout_end="2021-03-11")
    assert len(rfm) == 3_000
    assert rfm["T"].between(5 - 1 / 7, 40 + 1 / 7).all()
    assert (rfm["recency"] <= rfm["T"]).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="model must be"):
        datasets.simulate_transactions(10, model="nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        datasets.simulate_transactions(10, params={"s": 1.0})
    with pytest.raises(ValueError, match="positive"):
        datasets.simulate_transactions(10, params={"r": -1.0})


def test_both_simulators_read_one_population_description():
    """simulate_transactions and simulate_rfm take the same customer description (Population,
    defaults in POPULATION): the same seed gives the same customers in both, covariates included;
    a misspelt option is refused with the known ones rather than ignored."""
    import inspect

    from urm_models.data import simulate

    z = pd.DataFrame({"z": np.linspace(-1, 1, 300)})
    pop = {"seed": 4, "T": (30.0, 30.0), "covariates": z, "coefficients": {"purchase_z": 0.8}, "spend": None}
    tx = simulate.simulate_transactions(300, "paretonbd", **pop)
    rfm = simulate.simulate_rfm(300, "paretonbd", **pop)
    repeats = tx.groupby("user_id").size() - 1  # every purchase, none merged by the calendar
    assert repeats.reindex(rfm.index).equals(rfm["frequency"]) and rfm["frequency"].sum() > 100
    # the covariate moved the rates: the users with z > 0 buy more (purchase_z = 0.8 raises their rate)
    assert rfm.loc[rfm["z"] > 0, "frequency"].mean() > 1.5 * rfm.loc[rfm["z"] < 0, "frequency"].mean()
    with pytest.raises(TypeError, match=r"unknown simulation option\(s\) \['hold_out'\]; known: \["):
        simulate.simulate_rfm(10, hold_out=4.0)
    for fn in (simulate.simulate_transactions, simulate.simulate_rfm):
        assert not set(simulate.POPULATION) & set(inspect.signature(fn).parameters)
