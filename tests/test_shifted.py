"""The shifted-window purchase model on CDNOW_master: calibration to 1997-09-30, holdout to
1998-06-30 (39 weeks), against the best BTYD model of that benchmark (Pareto/NBD: MAE 0.7938,
RMSE 1.7262, total 17,153 of 19,684 = -12.9%)."""

import numpy as np
import pandas as pd
import pytest

from urm_models import features
from urm_models.evaluation.holdout import purchase_metrics
from urm_models.models import NotFittedError, ShiftedWindowPurchases

CUTOFF, END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def fitted(cdnow_master):
    return ShiftedWindowPurchases(random_state=0).fit(cdnow_master, CUTOFF)


def test_beats_the_btyd_models_on_rmse_and_the_total(fitted, cdnow_master):
    rfm = features.rfm_summary(cdnow_master, CUTOFF, freq="W", holdout_end=END)
    pred = fitted.predict(cdnow_master, 39)
    assert pred.index.equals(rfm.index)
    m = purchase_metrics(pred, rfm["frequency_holdout"])
    assert m["actual_total"] == 19_684
    assert m["rmse"] < 1.7262  # measured 1.6643
    assert abs(m["aggregate_error"]) < 0.05  # the target; measured -2.2% (Pareto/NBD -12.9%)
    # per-user MAE is worse than Pareto/NBD's 0.7938 (measured 0.8492): the mean of a count that
    # is 0 for 85% of one-time buyers; Pareto/NBD under-predicts their total by 42%, which lowers
    # its MAE (docs/architecture.md, "Purchases on shifted windows"). Guard against regressions:
    assert m["mae"] < 0.86
    # the training origins follow the median-age rule: 13 and 17 weeks before the cut-off
    assert [o.strftime("%Y-%m-%d") for o in fitted.origins_] == ["1997-07-01", "1997-06-03"]
    assert fitted.n_training_rows_ == 2 * 23_570


def test_reads_nothing_after_the_cutoff_and_the_window_needs_no_decay(fitted, cdnow_master):
    before = cdnow_master[cdnow_master["ts"] < pd.Timestamp(CUTOFF) + pd.Timedelta(days=1)]
    again = ShiftedWindowPurchases(random_state=0).fit(before, CUTOFF)
    pd.testing.assert_series_equal(again.predict(before, 39), fitted.predict(cdnow_master, 39))
    # at the model's own window the BTYD decay is 1: the booster's output itself
    X = features.activity_features(before, CUTOFF, freq="W")
    direct = fitted.predict(before, 13)
    assert direct.index.equals(X.index) and (direct > 0).all()
    longer = fitted.predict(before, 26)
    assert (longer > direct).all() and (longer < 2 * direct + 1e-12).all()  # decaying rates


def test_refuses_a_cutoff_without_enough_history(cdnow_sample):
    with pytest.raises(ValueError, match=r"no training window of 13 W fits before 1997-04-15.*median"):
        ShiftedWindowPurchases().fit(cdnow_sample, "1997-04-15")
    with pytest.raises(NotFittedError):
        ShiftedWindowPurchases().predict(cdnow_sample, 13)
    with pytest.raises(ValueError, match="base must be one of"):
        ShiftedWindowPurchases(base="Pareto").fit(cdnow_sample, CUTOFF)
    assert np.isfinite(ShiftedWindowPurchases().fit(cdnow_sample, CUTOFF).predict(cdnow_sample, 39)).all()


def test_several_horizons_at_once_and_the_holdout_tracking_plot(fitted, cdnow_master):
    from urm_models.evaluation import btyd_plots

    weeks = np.arange(1, 40)
    many = fitted.predict(cdnow_master, weeks)
    assert list(many.columns) == list(weeks.astype(float))
    pd.testing.assert_series_equal(many[39.0].rename("expected_purchases"), fitted.predict(cdnow_master, 39))
    totals = many.sum().to_numpy()
    assert (np.diff(totals) > 0).all()
    fig = btyd_plots.holdout_tracking({"ShiftedWindowPurchases": totals}, cdnow_master, CUTOFF, END)
    ax = fig.axes[0]
    actual = ax.lines[0].get_ydata()
    assert actual[-1] == 19_684 and len(actual) == 39  # every holdout repeat purchase by the last week
    assert "-2." in ax.get_legend().get_texts()[1].get_text()  # the end error in the legend
    assert "since the cut-off" in ax.get_ylabel()
    with pytest.raises(ValueError, match="has 3 values; the grid has 39 weeks"):
        btyd_plots.holdout_tracking({"x": totals[:3]}, cdnow_master, CUTOFF, END)
