"""rfm_summary: the published CDNOW figures exactly, and the invariances the BTYD summary owes."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urm_models import features
from urm_models.features.rfm import CAL_COLUMNS

CUTOFF, HOLDOUT_END = "1997-09-30", "1998-06-30"


def test_cdnow_sample_published_counts(cdnow_sample):
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science:
    # 2,357 customers, 2,457 repeat purchases in weeks 1-39, 1,882 in the 39-week holdout.
    rfm = features.rfm_summary(cdnow_sample, cutoff=CUTOFF, freq="W", holdout_end=HOLDOUT_END)
    assert len(rfm) == 2_357
    assert rfm["frequency"].sum() == 2_457
    assert (rfm["frequency"] > 0).sum() == 946
    assert rfm["frequency_holdout"].sum() == 1_882
    assert (rfm["duration_holdout"] == 39.0).all()
    # the customer quoted in the paper: x=2, t_x=30.43, T=38.86 (weeks)
    c = rfm.loc["00004"]
    assert c["frequency"] == 2
    assert c["recency"] == pytest.approx(30.43, abs=0.005)
    assert c["T"] == pytest.approx(38.86, abs=0.005)
    # repeat purchases 1997-01-18 (29.73) and 1997-08-02 (14.96); 1997-12-12 is in the holdout
    assert c["monetary"] == pytest.approx((29.73 + 14.96) / 2)
    assert (c["frequency_holdout"], c["monetary_holdout"]) == (1, pytest.approx(26.48))
    assert rfm.index.is_monotonic_increasing and rfm.index.name == "user_id"


def test_cdnow_master_counts(cdnow_master):
    rfm = features.rfm_summary(cdnow_master, cutoff=CUTOFF, freq="W", holdout_end=HOLDOUT_END)
    assert len(rfm) == 23_570
    assert rfm["frequency"].sum() == 24_337
    assert rfm["frequency_holdout"].sum() == 19_684
    # one repeat customer's repeat purchases are all worth 0 (Gamma-Gamma needs a rule for it)
    assert ((rfm["frequency"] > 0) & (rfm["monetary"] == 0)).sum() == 1


def test_hand_built_example_in_days_weeks_months():
    tx = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b", "c", "a"],
            "ts": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 18:00",
                    "2024-01-08 00:00",
                    "2024-01-15 00:00",
                    "2024-01-10 00:00",
                    "2024-02-05 00:00",
                    "2024-02-01 00:00",
                ]
            ),
            "amount": [10.0, 5.0, 20.0, 40.0, 7.0, 1.0, 3.0],
        }
    )
    d = features.rfm_summary(tx, cutoff="2024-01-29", freq="D", holdout_end="2024-02-10")
    assert list(d.index) == ["a", "b"]  # c starts after the cut-off: not a calibration user
    a = d.loc["a"]
    assert (a["frequency"], a["recency"], a["T"]) == (2, 14.0, 28.0)
    assert a["monetary"] == 30.0  # mean of 20 and 40; the first day (10 + 5) is not a repeat
    assert (a["frequency_holdout"], a["monetary_holdout"], a["duration_holdout"]) == (1, 3.0, 12.0)
    b = d.loc["b"]
    assert (b["frequency"], b["recency"], b["T"], b["monetary"]) == (0, 0.0, 19.0, 0.0)
    w = features.rfm_summary(tx, cutoff="2024-01-29", freq="W")
    assert w.loc["a", "T"] == 4.0 and w.loc["a", "recency"] == 2.0
    assert "frequency_holdout" not in w
    m = features.rfm_summary(tx, cutoff="2024-01-29", freq="M")
    assert m.loc["a", "T"] == pytest.approx(28 / (365.25 / 12))


def test_bad_arguments():
    tx = pd.DataFrame({"user_id": ["a"], "ts": pd.to_datetime(["2024-01-01"]), "amount": [1.0]})
    with pytest.raises(ValueError, match="freq"):
        features.rfm_summary(tx, cutoff="2024-01-02", freq="Q")
    with pytest.raises(ValueError, match="before the cutoff"):
        features.rfm_summary(tx, cutoff="2024-01-02", holdout_end="2024-01-01")
    with pytest.raises(ValueError, match="lack column"):
        features.rfm_summary(tx.rename(columns={"ts": "date"}), cutoff="2024-01-02")


def test_parquet_path_input(tmp_path, cdnow_sample):
    p = tmp_path / "tx.parquet"
    cdnow_sample.to_parquet(p)
    a = features.rfm_summary(p, cutoff=CUTOFF, freq="W", holdout_end=HOLDOUT_END)
    b = features.rfm_summary(cdnow_sample, cutoff=CUTOFF, freq="W", holdout_end=HOLDOUT_END)
    pd.testing.assert_frame_equal(a, b)


def test_one_definition_transpiles_to_spark():
    spark = features.rfm_sql(CUTOFF, "W", HOLDOUT_END, dialect="spark")
    assert "DATEDIFF" in spark.upper() and "DATE_DIFF('day'" not in spark
    assert "CAST(" in spark and "AS DOUBLE" in spark  # floats before dividing: no DECIMAL


# --------------------------------------------------------------------------- properties

day = st.integers(min_value=0, max_value=120)
rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        day,
        st.integers(min_value=0, max_value=86_399),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=40,
)
BASE = pd.Timestamp("2024-01-01")
CUT = "2024-03-01"  # day 60
END = "2024-04-30"


def frame(rs):
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rs],
            "ts": [BASE + pd.Timedelta(days=r[1], seconds=r[2]) for r in rs],
            "amount": [r[3] / 100 for r in rs],
        }
    )


def summary(df, holdout=True):
    return features.rfm_summary(df, cutoff=CUT, freq="W", holdout_end=END if holdout else None)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.randoms(use_true_random=False))
def test_invariant_to_row_order(rs, rnd):
    shuffled = list(rs)
    rnd.shuffle(shuffled)
    pd.testing.assert_frame_equal(summary(frame(rs)), summary(frame(shuffled)))


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.data())
def test_invariant_to_splitting_a_purchase_into_same_day_rows(rs, data):
    i = data.draw(st.integers(0, len(rs) - 1))
    user, d, sec, cents = rs[i]
    k = data.draw(st.integers(2, 4))
    parts = np.diff(
        np.sort(np.r_[0, data.draw(st.lists(st.integers(0, cents), min_size=k - 1, max_size=k - 1)), cents])
    )
    secs = data.draw(st.lists(st.integers(0, 86_399), min_size=k, max_size=k))
    split = rs[:i] + [(user, d, s, int(c)) for s, c in zip(secs, parts, strict=True)] + rs[i + 1 :]
    a, b = summary(frame(rs)), summary(frame(split))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, rows)
def test_rows_after_the_cutoff_change_no_calibration_column(rs, later):
    after = [(u, 61 + (d % 60), s, c) for u, d, s, c in later]  # days 61..120: after the cut-off
    a = summary(frame(rs), holdout=False)
    b = summary(frame(rs + after), holdout=False)
    pd.testing.assert_frame_equal(a[CAL_COLUMNS], b[CAL_COLUMNS])
    # also with a holdout: calibration columns equal; only holdout columns may move
    c = summary(frame(rs + after))
    pd.testing.assert_frame_equal(a[CAL_COLUMNS], c[CAL_COLUMNS])


def test_feature_queries_run_under_a_memory_limit_and_spill_under_data(home, monkeypatch):
    import stat

    from urm_models.core import sql as R

    con = R.connect()
    limit, spill = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert spill == str(home / "data" / "tmp" / "duckdb")  # raw rows never spill outside data/
    assert stat.S_IMODE((home / "data" / "tmp").stat().st_mode) == 0o700
    monkeypatch.setenv("URM_DUCKDB_MEMORY_LIMIT", "64MB")
    con = R.connect()
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "61.0 MiB"
    # a query whose sort does not fit in 64 MB completes by spilling
    out = con.execute(
        "SELECT COUNT(*) FROM (SELECT i, md5(i::VARCHAR) h FROM range(3000000) t(i) ORDER BY h)"
    ).fetchone()
    assert out == (3_000_000,)
    monkeypatch.setenv("URM_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="URM_DUCKDB_MEMORY_LIMIT='lots' is not a memory limit"):
        R.connect()
