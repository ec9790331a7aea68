"""The relationship table on the shipped data, with models fitted in process (the registry path is
exercised by the notebook tests), and its atomic publication."""

import os

import numpy as np
import pandas as pd
import pytest

from urm_models import features, segments
from urm_models.data import datasets
from urm_models.models import BetaGeo, CLVScorer, GammaGamma
from urm_models.serve import schema, scoring

CUTOFF = "1997-09-30"


@pytest.fixture(scope="module")
def cdnow_table(cdnow_master):
    rfm = features.rfm_summary(cdnow_master, cutoff=CUTOFF, freq="W")
    scorer = CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq="W")
    return scoring.score_transactions(cdnow_master, CUTOFF, scorer, model_versions="urm-clv/test")


def test_cdnow_every_user_gets_one_segment_tier_stage_and_action(cdnow_table):
    t = cdnow_table
    assert list(t.columns) == schema.COLUMNS
    assert len(t) == 23_570 and t["user_id"].is_unique
    for col in ("tier", "rfm_segment", "lifecycle_stage", "recommended_action", "action_channel"):
        assert t[col].notna().all(), col
    assert set(t["tier"]) == set(segments.TIERS)
    assert set(t["lifecycle_stage"]) <= set(segments.STAGES)
    assert set(t["rfm_segment"]) <= set(segments.SEGMENT_RULES["segment"])
    # tier shares match the configured 10/20/30/40% within one user
    counts = t["tier"].value_counts()
    for tier, share in segments.DEFAULT_TIER_SHARES.items():
        assert abs(counts[tier] - share * len(t)) <= 1, tier
    assert (t["as_of"] == pd.Timestamp(CUTOFF)).all()
    # the value lost to dropout over the CLV horizon, from the CLV model, its unit and horizon stated
    assert (t["value_at_risk"] >= 0).all() and t["value_at_risk"].sum() > 0
    assert "12 M" in t.attrs["columns"]["value_at_risk"] and "currency" in t.attrs["columns"]["value_at_risk"]
    for col in ("p_alive", "p_churn"):
        assert t[col].between(0, 1).all()
    assert t["expected_remaining_lifetime"].between(0, 12 + 1e-9).all()  # months within the horizon


def test_cdnow_tiers_order_value_and_stages_follow_activity(cdnow_table):
    t = cdnow_table.set_index("user_id")
    report = segments.tier_report(t["tier"], t["clv"])
    # the platinum tier's share of predicted CLV (reported by 06_score_users); a tenth of users
    # holds far more than a tenth of the value, and every tier is worth more per user than the next
    assert report.loc["platinum", "share_of_value"] > 0.4
    per_user = report["value"] / report["users"]
    assert per_user.is_monotonic_decreasing
    act = features.activity_features(datasets.load_cdnow(), CUTOFF, freq="W")
    lapsed = t["lifecycle_stage"] == "lapsed"
    assert (act.loc[lapsed[lapsed].index, "time_since_last"] >= 26).all()
    assert (act.loc[lapsed[~lapsed].index, "time_since_last"] < 26).all()
    # the whole cohort arrived in Q1 1997: nobody is new at the end of September
    assert "new" not in set(t["lifecycle_stage"]) and set(t["cohort"]) == {"1997-01", "1997-02", "1997-03"}


@pytest.mark.slow
def test_cdnow_p_churn_from_the_shifted_window_classifier_when_given(cdnow_master, cdnow_table):
    from urm_models.models import ChurnClassifier

    X, y = features.shifted_window(cdnow_master, CUTOFF, 13)
    clf = ChurnClassifier(n_bags=1, random_state=0).fit(X, y.to_numpy())
    rfm = features.rfm_summary(cdnow_master, cutoff=CUTOFF, freq="W")
    scorer = CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq="W", churn_window=13)
    t = scoring.score_transactions(cdnow_master, CUTOFF, scorer, churn_model=clf, churn_window="13 W")
    now = features.activity_features(cdnow_master, CUTOFF)
    expected = clf.predict_proba(now)[:, 1]
    assert np.allclose(t.set_index("user_id").loc[now.index, "p_churn"], expected)
    assert t.attrs["churn_horizon"] == "13 W" and t.attrs["clv_horizon"] == "12 M"
    # the classifier's p_churn does not move the value at risk: that is the CLV model's, over its horizon
    # (the fixture's models are fitted apart: the same optimum to about 1e-7)
    np.testing.assert_allclose(t["value_at_risk"], cdnow_table["value_at_risk"], rtol=1e-5)
    # without the classifier: the CLV model's P(no purchase in 13 weeks), and it says so
    b = scoring.score_transactions(cdnow_master, CUTOFF, scorer).set_index("user_id")
    assert b.attrs["churn_horizon"] == "13 W"
    np.testing.assert_allclose(
        b.loc[rfm.index, "p_churn"], scorer.purchase_model.probability_of_n_purchases(13, 0, rfm)
    )
    # the same purchase model over 12 months (no churn window): a longer window, a lower risk
    assert (cdnow_table.set_index("user_id").loc[rfm.index, "p_churn"] <= b.loc[rfm.index, "p_churn"] + 1e-12).all()
    # no lapsed user is a Champion, and no segment holds more than a quarter of the users
    lapsed = t["lifecycle_stage"] == "lapsed"
    assert not (lapsed & (t["rfm_segment"] == "Champions")).any()
    assert t["rfm_segment"].value_counts(normalize=True).max() <= 0.25


def test_gap_before_last_purchase_is_measured_at_the_cutoff():
    tx = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-07-29", "2024-07-01"]),
            "amount": [1.0, 1.0, 1.0, 1.0],
        }
    )
    act = features.activity_features(tx, "2024-08-05", freq="W")
    assert act.loc["a", "gap_last"] == pytest.approx(29.0)  # 8 Jan -> 29 Jul
    assert act.loc["b", "gap_last"] == 0.0
    assert features.activity_features(tx, "2024-07-28", freq="W").loc["a", "gap_last"] == pytest.approx(1.0)


@pytest.mark.slow
def test_telco_table_from_classifier_and_survival_model():
    from urm_models.models import ChurnClassifier, SurvivalModel
    from urm_models.serve.mlflow_models import SurvivalPyfunc

    telco = datasets.load_telco()
    X = telco.drop(columns=["user_id", "churn"])
    clf = ChurnClassifier(model="logistic", random_state=0).fit(X, telco["churn"])
    surv_df = telco[telco.tenure > 0].drop(columns=["user_id", "totalcharges"])
    surv = SurvivalPyfunc(SurvivalModel("cox").fit(surv_df, "tenure", "churn"), horizon=12, charge_col="monthlycharges")
    t = scoring.score_customers(telco, "2026-11-22", clf, surv, model_versions="x")
    assert len(t) == len(telco) and t["recommended_action"].notna().all()
    gone = t.set_index("user_id").loc[telco.loc[telco.churn == 1, "user_id"]]
    assert (gone["lifecycle_stage"] == "lapsed").all() and (gone["clv"] == 0).all()
    assert (gone["p_alive"] == 0).all() and (gone["value_at_risk"] == 0).all()
    # a running contract: the charges of the CLV horizon not expected to be paid
    assert (t["value_at_risk"] >= 0).all() and "24 M" in t.attrs["columns"]["value_at_risk"]
    stay = t.set_index("user_id").loc[telco.loc[telco.churn == 0, "user_id"]]
    assert (stay["p_alive"] == 1).all() and (stay["clv"] > 0).all()
    assert set(stay["lifecycle_stage"]) == {"new", "active", "at risk"}
    assert t["rfm_segment"].isna().all() and t["expected_purchases"].isna().all()


def _table(n=5, clv=1.0):
    return pd.DataFrame({c: [0.5] * n for c in schema.COLUMNS}).assign(user_id=[f"u{i}" for i in range(n)], clv=clv)


def test_predictions_are_published_atomically_with_a_latest_link(home):
    first = scoring.write_predictions(_table(clv=1.0), "demo", "2024-01-31")
    assert first == home / "data" / "predictions" / "demo" / "2024-01-31" / "user_scores.parquet"
    latest = home / "data" / "predictions" / "demo" / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "2024-01-31"
    second = scoring.write_predictions(_table(clv=2.0), "demo", "2024-02-29")
    assert os.readlink(latest) == "2024-02-29"
    assert scoring.read_predictions("demo")["clv"].eq(2.0).all()
    assert scoring.read_predictions("demo", "2024-01-31")["clv"].eq(1.0).all()
    before = second.read_bytes()
    bad = _table()
    bad.loc[1, "user_id"] = "u0"
    with pytest.raises(ValueError, match="1 duplicate user_id rows of 5"):
        scoring.write_predictions(bad, "demo", "2024-02-29")
    with pytest.raises(ValueError, match="lacks columns"):
        scoring.write_predictions(_table().drop(columns=["tier"]), "demo", "2024-02-29")
    assert second.read_bytes() == before and os.readlink(latest) == "2024-02-29"
    assert sorted(p.name for p in second.parent.iterdir()) == ["user_scores.parquet"]  # no temp left
    with pytest.raises(FileNotFoundError, match="urm refresh --dataset nothing"):
        scoring.read_predictions("nothing")
