"""Season calendars (issue 28, part 3): read one way or refused, the time-varying Pareto/NBD fitted
and scored on one without a calendar table in hand, its scores equal to its own forecasts (and to
Pareto/NBD's without covariates), and its relationship table in-process, streamed, and refused by
Spark with what to use instead."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from urm_models import features
from urm_models.data import datasets
from urm_models.features.calendar import SeasonCalendar
from urm_models.models import CLVScorer, GammaGamma, ParetoNBD, TimeVaryingParetoNBD, boosting
from urm_models.serve import scoring

APPAREL_SEASON = Path(__file__).resolve().parent.parent / "data" / "examples" / "apparel_season.csv"
CUT = "2009-12-31"
SEASONAL = {"purchase_covariates": ["high_season"], "dropout_covariates": ["high_season"]}


def test_recurring_and_dated_ranges_give_each_periods_share_of_season_days():
    cal = SeasonCalendar(["11-01..12-31"])
    assert cal.columns == ["high_season"] and cal.recurring
    days = cal.days("2020-10-30", "2021-01-03")
    assert days["high_season"].sum() == 61 and days.loc["2020-10-31", "high_season"] == 0
    # a week straddling the start counts the days it holds: 2020-10-29..11-04 holds 4 of November
    table = cal.table("2020-10-29", "2020-11-12", "W")
    assert list(table["high_season"]) == pytest.approx([4 / 7, 1.0, 1.0])
    # a range may wrap the year's end; several names; dated ranges are not recurring
    wrap = SeasonCalendar({"xmas": ["12-15..01-15"], "sale": ["2021-07-01..2021-07-07"]})
    assert wrap.columns == ["xmas", "sale"] and not wrap.recurring
    share = wrap.share("2020-12-31", "2021-01-31")  # the days 2021-01-01..31
    assert share["xmas"] == pytest.approx(15 / 31) and share["sale"] == 0
    assert "12-15..01-15" in wrap.describe()


def test_a_file_is_read_as_its_periods_and_refused_beyond_them(tmp_path):
    cal = SeasonCalendar(str(APPAREL_SEASON))
    file = datasets.apparel_season()
    table = cal.table("2009-01-04", "2009-12-31", "W")
    mine = file.set_index("period_start").loc[table["period_start"], "high_season"].to_numpy(float)
    np.testing.assert_array_equal(table["high_season"].to_numpy(), mine)
    with pytest.raises(ValueError, match=r"covers 2005-01-02 to 2012-10-20.*extend the file, or give recurring"):
        cal.days("2012-10-01", "2013-01-01")
    bad = tmp_path / "cal.csv"
    bad.write_text("period_start,high_season\n2020-01-05,1\n2020-01-12,0\n2020-01-26,1\n")
    with pytest.raises(ValueError, match="must step by one period"):
        SeasonCalendar(str(bad))
    bad.write_text("week,high_season\n2020-01-05,1\n")
    with pytest.raises(ValueError, match="needs a period_start column"):
        SeasonCalendar(str(bad))


@pytest.mark.parametrize(
    "spec, message",
    [
        (["02-29..03-10"], "29 February is not in every year"),
        (["11-01 to 12-31"], "is not a range"),
        (["2021-12-31..2021-12-01"], "ends before it starts"),
        (["2021-02-30..2021-03-01"], "does not exist"),
        ({"high season": ["11-01..12-31"]}, "is not a column name"),
        ({}, "an empty mapping"),
        ([], "is not a list of ranges"),
    ],
)
def test_what_cannot_be_read_one_way_is_refused_naming_the_entry(spec, message):
    with pytest.raises(ValueError, match=message):
        SeasonCalendar(spec)


@pytest.fixture(scope="module")
def apparel():
    tx = datasets.load_apparel()
    model = TimeVaryingParetoNBD(**SEASONAL, season=str(APPAREL_SEASON)).fit(tx, CUT)
    rfm = features.rfm_summary(tx, CUT, freq="W")
    return tx, rfm, model


@pytest.mark.slow
def test_the_season_argument_is_the_calendar_table_read_for_the_fit(apparel):
    tx, rfm, model = apparel
    given = TimeVaryingParetoNBD(**SEASONAL).fit(tx, CUT, calendar=datasets.apparel_season())
    assert model.log_likelihood_ == pytest.approx(given.log_likelihood_, rel=1e-12)
    assert model.params_["purchase_high_season"] > 0.3  # the high season buys more (0.69)
    # predict(transactions, t), the interface of the models fitted on transactions and a cut-off
    mean = model.predict(tx, 52.0)
    np.testing.assert_allclose(
        mean.to_numpy(), given.conditional_expected_purchases(52.0, tx, calendar=datasets.apparel_season()).to_numpy()
    )


@pytest.mark.slow
def test_scores_from_a_summary_are_its_forecasts_from_the_transactions(apparel):
    """What the relationship table reads (frequency, recency, T at a date, no transactions) gives
    the same P(alive) and expected purchases as the transaction path over the future calendar."""
    tx, rfm, model = apparel
    sc = model.scores(rfm, CUT, [13.0, 52.0], 13.0)
    users = rfm.index.astype(str)
    assert list(sc["users"]) == list(users)
    np.testing.assert_allclose(sc["alive"], model.p_alive(tx).reindex(users).to_numpy(), rtol=1e-9)
    for j, t in enumerate((13.0, 52.0)):
        np.testing.assert_allclose(
            sc["expected"][:, j], model.conditional_expected_purchases(t, tx).reindex(users).to_numpy(), rtol=1e-9
        )
    assert (sc["p0"] >= 1 - sc["alive"] - 1e-12).all() and (sc["p0"] <= 1).all()
    assert (sc["retained"] >= sc["expected"] - 1e-12).all()  # alive throughout buys at least as much


def test_without_covariates_its_scores_are_pareto_nbds(cdnow_sample):
    cut = "1997-09-30"
    rfm = features.rfm_summary(cdnow_sample, cut, freq="W")
    plain = TimeVaryingParetoNBD().fit(cdnow_sample, cut)
    pn = ParetoNBD().fit(rfm)._with_params(plain.params_)
    sc = plain.scores(rfm, cut, [13.0, 39.0], 13.0)
    x, tx, T, P, codes = pn._histories(rfm)
    alive = pn._p_alive(x, tx, T, P)
    np.testing.assert_allclose(sc["alive"], alive[codes], rtol=1e-9)
    np.testing.assert_allclose(sc["p0"], pn._prob_n(0, np.full_like(x, 13.0), x, tx, T, P)[codes], rtol=1e-9)
    np.testing.assert_allclose(sc["expected"][:, 1], pn._conditional_expected(39.0, x, tx, T, P)[codes], rtol=1e-9)
    np.testing.assert_allclose(sc["lifetime"], pn._remaining_lifetime(39.0, x, tx, T, P, alive)[codes], rtol=1e-8)


@pytest.mark.slow
def test_its_relationship_table_in_process_and_streamed_spark_refuses(apparel, home, tmp_path):
    tx, rfm, model = apparel
    spend = GammaGamma().fit(rfm)
    scorer = CLVScorer(model, spend, rfm_freq="W", horizon=12, freq="M", churn_window=13)
    assert scorer.inputs[-1] == "as_of"
    with pytest.raises(ValueError, match="needs an as_of column"):
        scorer.predict(rfm)
    two = rfm.assign(as_of=[pd.Timestamp(CUT)] * (len(rfm) - 1) + [pd.Timestamp("2010-01-07")])
    with pytest.raises(ValueError, match="score one as_of date at a time; the input holds 2"):
        scorer.predict(two)
    local = scoring.score_transactions(tx, CUT, scorer)
    assert local["value_at_risk"].ge(0).all() and local["clv"].gt(0).all()
    direct = scorer.predict(rfm.assign(as_of=pd.Timestamp(CUT))).reindex(local["user_id"])
    np.testing.assert_allclose(local["expected_purchases"], direct["expected_purchases"], rtol=1e-9)
    # the forecast follows the future calendar: a week of the high season gets more purchases
    weeks = np.arange(1.0, 53.0)
    per_week = np.diff(model.scores(rfm, CUT, weeks, 13.0)["expected"].sum(axis=0), prepend=0.0)
    cal, cut = SeasonCalendar(str(APPAREL_SEASON)), pd.Timestamp(CUT)
    share = np.array(
        [cal.share(cut + pd.Timedelta(weeks=k - 1), cut + pd.Timedelta(weeks=k))["high_season"] for k in weeks]
    )
    flag = np.where(share > 0.8, 1, np.where(share < 0.2, 0, -1))
    assert per_week[flag == 1].mean() > 1.5 * per_week[flag == 0].mean()
    out = tmp_path / "table.parquet"
    facts = scoring.score_to_parquet(tx, CUT, scorer, out, batches=3, batch_rows=200)
    assert facts["rows"] == len(local)
    streamed = pd.read_parquet(out).set_index("user_id").loc[local["user_id"]]
    for c in ("p_alive", "p_churn", "expected_purchases", "clv", "value_at_risk"):
        np.testing.assert_allclose(streamed[c].to_numpy(), local[c].to_numpy(), rtol=1e-9, err_msg=c)
    from urm_models.serve import spark_scoring

    with pytest.raises(ValueError, match=r"Spark engine does not score: use urm score --batches N"):
        spark_scoring.score_transactions_in_spark(tx, CUT, scorer)


def test_the_refresh_takes_a_calendar_from_its_config_and_refuses_a_bad_one(home, tmp_path):
    from urm_models.jobs import pipeline

    ok = pipeline.check_parameters({**pipeline.DEFAULT_PARAMS, "season_calendar": ["11-01..12-31"]}, {})
    assert ok["season_calendar"] == ["11-01..12-31"]
    # a file is given by its path, resolved: the notebooks run in another folder
    copy = tmp_path / "season.csv"
    copy.write_bytes(APPAREL_SEASON.read_bytes())
    rel = pipeline.check_parameters({**pipeline.DEFAULT_PARAMS, "season_calendar": str(copy)}, {})
    assert rel["season_calendar"] == str(copy.resolve())
    assert pipeline.check_parameters(dict(pipeline.DEFAULT_PARAMS), {})["season_calendar"] == []
    with pytest.raises(pipeline.RefreshError, match=r"season_calendar: season calendar: '11-31..12-31' names no day"):
        pipeline.check_parameters({**pipeline.DEFAULT_PARAMS, "season_calendar": ["11-31..12-31"]}, {})


@pytest.mark.slow
def test_the_shifted_window_model_with_the_calendar_learns_from_every_season(apparel):
    """Without a calendar its training windows (a quarter of a window apart) all fall in the
    latest year and it overshoots the apparel holdout's total by 40%; with one they are a quarter
    apart (every season) and the season of each window is its offset."""
    from urm_models.models import ShiftedWindowPurchases

    tx, rfm, _ = apparel
    end = "2010-12-20"
    actual = features.rfm_summary(tx, CUT, freq="W", holdout_end=end)["frequency_holdout"]
    t = float(features.rfm_summary(tx, CUT, freq="W", holdout_end=end)["duration_holdout"].iloc[0])
    plain = ShiftedWindowPurchases(boosting=replace(boosting.SHIFTED, n_estimators=100)).fit(tx, CUT)
    seasonal = ShiftedWindowPurchases(
        boosting=replace(boosting.SHIFTED, n_estimators=100), season=str(APPAREL_SEASON)
    ).fit(tx, CUT)
    months = {o.month for o in seasonal.origins_}
    assert len({(m - 1) // 3 for m in months}) >= 3  # origins in at least three quarters of the year
    assert seasonal.season_effect_["high_season"] > 0.3  # the high season buys more
    err = {
        n: m.predict(tx, t).reindex(actual.index).sum() / actual.sum() - 1
        for n, m in (("plain", plain), ("s", seasonal))
    }
    assert err["plain"] > 0.25 and abs(err["s"]) < 0.2, err
    # it scores at a date: the calendar after it
    scorer = CLVScorer(seasonal, GammaGamma().fit(rfm), rfm_freq="W", horizon=12, freq="M", churn_window=13)
    assert "as_of" in scorer.inputs
    table = scoring.score_transactions(tx, CUT, scorer)
    assert np.isfinite(table["expected_purchases"]).all() and table["value_at_risk"].ge(0).all()
