"""Cohort retention, KPIs and NPS against hand-built examples and the CDNOW data."""

import numpy as np
import pandas as pd
import pytest

from urm_models import features


@pytest.fixture
def tx():
    # a: Jan, Feb, Apr   b: Jan, Jan (2 days)   c: Feb, Mar   d: Mar
    rows = [
        ("a", "2024-01-05", 10),
        ("a", "2024-02-10", 20),
        ("a", "2024-04-01", 5),
        ("b", "2024-01-07", 1),
        ("b", "2024-01-20", 2),
        ("c", "2024-02-02", 4),
        ("c", "2024-03-03", 6),
        ("d", "2024-03-30", 8),
    ]
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows]),
            "amount": [float(r[2]) for r in rows],
        }
    )


def test_cohort_retention_hand_built(tx):
    m = features.cohort_retention(tx, freq="M")
    assert list(m.index) == ["2024-01", "2024-02", "2024-03"]
    # Jan cohort {a, b}: month1 a, month2 none, month3 a
    np.testing.assert_allclose(m.loc["2024-01"].to_numpy(), [1.0, 0.5, 0.0, 0.5])
    # Feb cohort {c}: Mar c; Apr none; month 3 is after the data ends -> NaN
    np.testing.assert_allclose(m.loc["2024-02"].to_numpy(), [1.0, 1.0, 0.0, np.nan])
    c = features.cohort_retention(tx, freq="M", counts=True)
    assert list(c[0]) == [2, 1, 1]


def test_kpis_per_period_hand_built(tx):
    k = features.kpis(tx, freq="M")
    assert list(k.index) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert list(k["active_users"]) == [2, 2, 2, 1]
    assert list(k["new_users"]) == [2, 1, 1, 0]
    assert list(k["retained_users"]) == [0, 1, 1, 0]  # Feb: a; Mar: c; Apr: none (a skipped Mar)
    np.testing.assert_allclose(k["retention_rate"], [np.nan, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(k["churn_rate"], [np.nan, 0.5, 0.5, 1.0])
    # repeaters so far / acquired so far: Jan b (2 days) 1/2; Feb +a 2/3; Mar +c 3/4; Apr 3/4
    np.testing.assert_allclose(k["repeat_purchase_rate"], [0.5, 2 / 3, 0.75, 0.75])
    np.testing.assert_allclose(k["revenue"], [13, 24, 14, 5])
    np.testing.assert_allclose(k["revenue_per_user"], [6.5, 12, 7, 5])


def test_kpis_by_cohort_and_nps(tx):
    k = features.kpis(tx, freq="M", by="cohort")
    jan = k.loc["2024-01"]
    assert list(jan.index) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert list(jan["cohort_size"]) == [2] * 4
    np.testing.assert_allclose(jan["active_share"], [1.0, 0.5, 0.0, 0.5])
    fb = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "a"],
            "score": [10, 3, 8, 9],
            "ts": pd.to_datetime(["2024-01-09", "2024-01-10", "2024-02-11", "2024-02-12"]),
        }
    )
    assert features.nps(fb) == pytest.approx(100 * (2 - 1) / 4)
    k2 = features.kpis(tx, freq="M", feedback=fb)
    np.testing.assert_allclose(k2["nps"].to_numpy(), [0.0, 50.0, np.nan, np.nan])
    # per cohort: a's and b's scores count for January's cohort, c's for February's
    by = features.kpis(tx, freq="M", by="cohort", feedback=fb)["nps"]
    assert by.loc[("2024-01", "2024-01")] == 0.0 and by.loc[("2024-01", "2024-02")] == 100.0
    assert (
        by.loc[("2024-02", "2024-02")] == 0.0
        and by.drop([("2024-01", "2024-01"), ("2024-01", "2024-02"), ("2024-02", "2024-02")]).isna().all()
    )
    with pytest.raises(ValueError, match="0-10"):
        features.nps(fb.assign(score=[11, 1, 1, 1]))


def test_cdnow_kpis_are_consistent(cdnow_master):
    k = features.kpis(cdnow_master, freq="M")
    assert len(k) == 18  # Jan 1997 - Jun 1998
    assert k["new_users"].sum() == 23_570 and (k["new_users"].iloc[3:] == 0).all()
    m = features.cohort_retention(cdnow_master, freq="M", counts=True)
    assert m[0].sum() == 23_570
    assert ((k["retention_rate"].dropna() >= 0) & (k["retention_rate"].dropna() <= 1)).all()
    assert k["revenue"].sum() == pytest.approx(cdnow_master["amount"].sum())


def test_weekly_and_daily_periods(tx):
    w = features.kpis(tx, freq="W")
    assert w["active_users"].sum() == tx.assign(w=tx.ts.dt.to_period("W")).drop_duplicates(["user_id", "w"]).shape[0]
    d = features.cohort_retention(tx, freq="D")
    assert d.shape[0] == 4 and (d[0] == 1).all()


def test_feature_sql_transpiles_to_spark():
    sql = features.period_activity_sql("M", "2024-01-01", dialect="spark")
    assert "DATE_TRUNC" in sql.upper()
