"""Discrete-time summaries from transactions: the donations histories rebuilt from dated gifts."""

import numpy as np
import pandas as pd
import pytest

from urm_models import features
from urm_models.data import datasets
from urm_models.models import BetaGeoBetaBinom


def _gifts_from_histories(histories: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Dated donations matching each aggregated history: a first gift in 1995, then gifts in
    ``frequency`` of the years 1996-2001, the last in year ``recency``; some years twice."""
    rng = np.random.default_rng(seed)
    rows, uid = [], 0
    for h in histories.itertuples(index=False):
        for _ in range(h.weights):
            uid += 1
            years = [1995]
            if h.frequency:
                earlier = (
                    rng.choice(np.arange(1, h.recency), size=h.frequency - 1, replace=False) if h.frequency > 1 else []
                )
                years += [1995 + int(k) for k in [*earlier, h.recency]]
            for y in years:
                for _ in range(1 + (rng.random() < 0.2)):  # a second gift in the same year
                    day = pd.Timestamp(f"{y}-01-01") + pd.Timedelta(days=int(rng.integers(0, 365)))
                    rows.append((f"d{uid:05d}", day, float(rng.integers(10, 200))))
    return pd.DataFrame(rows, columns=["user_id", "ts", "amount"])


@pytest.fixture(scope="module")
def gifts():
    return _gifts_from_histories(datasets.load_donations())


def test_yearly_summary_rebuilds_the_donations_histories_and_their_fit(gifts):
    s = features.period_summary(gifts, cutoff="2001-12-31", period="Y")
    assert len(s) == 11_104 and (s["n_periods"] == 6).all()
    counts = s.groupby(["frequency", "recency"]).size().rename("weights").reset_index()
    d = datasets.load_donations()
    pd.testing.assert_frame_equal(
        counts.sort_values(["frequency", "recency"]).reset_index(drop=True),
        d[["frequency", "recency", "weights"]].sort_values(["frequency", "recency"]).reset_index(drop=True),
        check_dtype=False,
    )
    m = BetaGeoBetaBinom().fit(s)
    assert round(m.params_["alpha"], 3) == 1.204 and round(m.params_["delta"], 3) == 2.783


def test_holdout_periods_and_the_rules_for_cutoffs(gifts):
    s = features.period_summary(gifts, cutoff="1999-12-31", period="Y", holdout_end="2001-12-31")
    full = features.period_summary(gifts, cutoff="2001-12-31", period="Y")
    assert (s["n_periods"] == 4).all() and (s["n_periods_holdout"] == 2).all()
    assert (s["frequency"] + s["frequency_holdout"] == full["frequency"]).all()
    q = features.period_summary(gifts, cutoff="1996-06-30", period="Q")
    # quarters from the first gift's (Q1-Q4 1995) to Q2 1996
    assert set(q["n_periods"]) == {2, 3, 4, 5} and (q["recency"] <= q["n_periods"]).all()
    with pytest.raises(ValueError, match="cutoff 2001-12-30 does not end a year"):
        features.period_summary(gifts, cutoff="2001-12-30", period="Y")
    with pytest.raises(ValueError, match="holdout_end 2001-06-30 does not end a year"):
        features.period_summary(gifts, cutoff="1999-12-31", period="Y", holdout_end="2001-06-30")
    with pytest.raises(ValueError, match="period must be one of"):
        features.period_summary(gifts, cutoff="2001-12-31", period="D")
    w = features.period_summary(gifts, cutoff="1996-01-07", period="W")  # a Sunday ends an ISO week
    assert (w["recency"] <= w["n_periods"]).all() and (w["frequency"] <= w["recency"]).all()
