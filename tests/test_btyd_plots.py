"""BTYD diagnostics: Figures with units, for the model they are given, numerically consistent."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from urm_models import features
from urm_models.evaluation import btyd_plots
from urm_models.models import BetaGeo, ModifiedBetaGeo, ParetoNBD

CUT, END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def rfm(cdnow_sample):
    return features.rfm_summary(cdnow_sample, CUT, freq="W", holdout_end=END)


@pytest.fixture(scope="module", params=[BetaGeo, ModifiedBetaGeo, ParetoNBD], ids=lambda c: c.__name__)
def model(request, rfm):
    return request.param().fit(rfm)


def _labels(fig):
    return [(ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) for ax in fig.axes]


def test_incremental_purchases_are_the_weekly_steps_of_the_cumulative_ones(model, cdnow_sample):
    grid, actual, expected, _ = btyd_plots._tracking(model, cdnow_sample, CUT, END, "W")
    fig = btyd_plots.incremental_purchases(model, cdnow_sample, CUT, END)
    (ax,) = fig.axes
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), np.diff(actual))
    np.testing.assert_allclose(lines[1].get_ydata(), np.diff(expected))
    # every repeat purchase day of the holdout and calibration is counted once
    assert actual[-1] == 2_457 + 1_882
    assert ax.get_ylabel() == "repeat purchases per week" and type(model).__name__ in ax.get_title()


def test_p_alive_history_ends_at_the_models_p_alive(model, cdnow_sample, rfm):
    uid = rfm.sort_values(["frequency", "recency"]).index[-5]
    fig = btyd_plots.p_alive_history(model, cdnow_sample, uid, CUT, label="p-test")
    curve = fig.axes[0].get_lines()[0].get_ydata()
    assert curve[-1] == pytest.approx(model.p_alive(rfm.loc[[uid]]).iloc[0], rel=1e-9)
    assert ((curve >= 0) & (curve <= 1)).all() and "p-test" in fig.axes[0].get_title()
    assert str(uid) not in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="no purchase"):
        btyd_plots.p_alive_history(model, cdnow_sample, "nobody", CUT)


def test_heterogeneity_draws_the_fitted_densities_with_units(model):
    fig = btyd_plots.heterogeneity(model)
    (left, right) = fig.axes
    assert left.get_xlabel() == "purchase rate (purchases per week)"
    x, y = left.get_lines()[0].get_data()
    p = model.params_
    from scipy import stats

    np.testing.assert_allclose(y, stats.gamma(a=p["r"], scale=1 / p["alpha"]).pdf(x))
    assert (
        "dropout rate (per week)" if "s" in p else "probability of dropping out after a purchase"
    ) == right.get_xlabel()


def test_exposure_counts_customers_and_shows_none_alone(rfm):
    """The exposure figure counts customers by age and recency; no cell shows fewer than
    ``min_count`` customers (a figure cannot be erased from), and every customer is counted."""
    fig = btyd_plots.customer_exposure(rfm, bins=10, min_count=5)
    ax, _bar = fig.axes
    assert ax.get_xlabel() == "age T (weeks since the first purchase)" and "weeks" in ax.get_ylabel()
    shown = np.ma.filled(ax.collections[0].get_array().astype(float), np.nan)
    assert np.nanmin(shown) >= 5
    hidden = int(ax.get_title().split("blank: ")[1].split(" ")[0].replace(",", "")) if "blank" in ax.get_title() else 0
    assert np.nansum(shown) + hidden == len(rfm)


def test_the_p_alive_figure_of_a_report_shows_no_real_customer(model, rfm, cdnow_sample):
    """The typical history is made up from medians: its dates are no customer's own."""
    first = cdnow_sample["ts"].min()
    made = btyd_plots.typical_history(rfm, first)
    repeat = rfm[rfm["frequency"] > 0]
    assert len(made) == round(repeat["frequency"].median()) + 1 and (made["user_id"] == "typical").all()
    fig = btyd_plots.p_alive_history(model, made, "typical", CUT, label="a typical customer")
    assert "a typical customer" in fig.axes[0].get_title()
    real = cdnow_sample.groupby("user_id")["ts"].apply(lambda t: tuple(sorted(t.dt.normalize().unique())))
    assert tuple(made["ts"]) not in set(real)


def test_matrices_name_the_model_and_the_units(model, rfm):
    f = btyd_plots.frequency_recency_matrix(model, T=33.0)
    (ax, _bar) = f.axes
    assert ax.get_title().startswith(type(model).__name__) and "next 1 week" in ax.get_title()
    assert "weeks after the first" in ax.get_xlabel() and "33 weeks ago" in ax.get_title()
    g = btyd_plots.p_alive_matrix(model, T=33.0)
    z = g.axes[0].get_images()[0].get_array()
    # the top-right corner: many purchases, the last one just now, is alive
    assert z[-1, -1] == pytest.approx(
        float(expit(-model._log_odds_dead(np.array([30.0]), np.array([33.0]), np.array([33.0]))[0])), rel=1e-9
    )


def test_figures_carry_their_units():
    """Issue 28: the repeat-purchase histogram has one bar per count (0, 1 and 2 were one bar), the
    cohort heat map names its x axis' unit, the threshold plot its currency."""
    from urm_models.evaluation import classification, plots

    fig = plots.histogram(pd.Series([0] * 50 + [1] * 20 + [2] * 10 + [40]), xlabel="repeat purchases")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:3] == [50, 20, 10] and len(heights) == 41
    retention = pd.DataFrame(
        [[1.0, 0.4], [1.0, np.nan]], index=["2024-01", "2024-02"], columns=pd.Index([0, 1], name="period")
    )
    assert plots.cohort_heatmap(retention, freq="M").axes[0].get_xlabel().startswith("months since the cohort's")
    fig = classification.threshold_plot(
        np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]), 1.0, 10.0, success_rate=0.3, currency="USD"
    )
    assert "(USD" in fig.axes[0].get_ylabel() and "1 USD" in fig.axes[0].get_title()
