"""Churn labels and features without leakage; ChurnClassifier on the real Telco table."""

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from urm_models import features
from urm_models.data import datasets
from urm_models.evaluation.classification import (
    choose_threshold,
    classification_metrics,
    cross_validate,
    lift_at,
    threshold_plot,
)
from urm_models.models import ChurnClassifier, boosting

CUT = "1997-09-30"


@pytest.fixture(scope="module")
def telco():
    te = datasets.load_telco()
    return te.drop(columns=["user_id", "churn"]), te["churn"].to_numpy()


# ------------------------------------------------------------------ labels and features


def test_labels_match_the_holdout_definition(cdnow_sample):
    labels = features.churn_labels(cdnow_sample, CUT, horizon=39, freq="W")
    rfm = features.rfm_summary(cdnow_sample, CUT, freq="W", holdout_end="1998-06-30")
    assert len(labels) == 2_357
    pd.testing.assert_series_equal(labels, (rfm["frequency_holdout"] == 0).astype("int64"), check_names=False)


def test_activity_features_hand_built():
    tx = pd.DataFrame(
        {
            "user_id": ["a"] * 4 + ["b"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-15", "2024-01-29", "2024-02-26", "2024-02-20"]),
            "amount": [10.0, 20.0, 30.0, 40.0, 5.0],
        }
    )
    f = features.activity_features(tx, cutoff="2024-02-26", freq="W", windows=(2, 5))
    a = f.loc["a"]
    assert (a["frequency"], a["recency"], a["T"], a["time_since_last"]) == (3, 8.0, 8.0, 0.0)
    assert (a["gap_mean"], a["gap_max"]) == (pytest.approx(8 / 3), 4.0)
    assert a["purchases_2"] == 1 and a["spend_2"] == 40.0  # (Feb 12, Feb 26]
    assert a["purchases_5"] == 2 and a["spend_5"] == 70.0  # (Jan 22, Feb 26]
    assert a["trend"] == 1 - 0  # last 2 weeks vs the 2 before
    b = f.loc["b"]
    assert (b["frequency"], b["gap_mean"], b["gap_std"]) == (0, b["T"], 0.0)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["drop", "scale", "add"]))
def test_no_row_after_the_cutoff_changes_any_feature(seed, how):
    tx = datasets.simulate_transactions(300, seed=seed % 50, cutoff="2020-06-30", holdout=26, T=(1, 40))
    base = features.activity_features(tx, cutoff="2020-06-30")
    later = tx["ts"] > pd.Timestamp("2020-06-30 23:59:59")
    rng = np.random.default_rng(seed)
    if how == "drop":
        tx2 = tx[~(later & (rng.random(len(tx)) < 0.5))]
    elif how == "scale":
        tx2 = tx.copy()
        tx2.loc[later, "amount"] *= 1000
    else:
        extra = tx[~later].sample(20, random_state=seed).assign(ts=pd.Timestamp("2020-07-01 10:00"))
        tx2 = pd.concat([tx, extra])
    pd.testing.assert_frame_equal(base, features.activity_features(tx2, cutoff="2020-06-30"))


# ------------------------------------------------------------------ the classifier


@pytest.mark.slow
def test_telco_cross_validated_scores_beat_the_references(telco):
    # The protocol: 5-fold stratified CV, seed 0. References on the same protocol:
    # plain logistic regression 0.844 / 0.660, plain XGBoost (300 trees, depth 4) 0.842 / 0.660.
    X, y = telco
    xgb, _ = cross_validate(ChurnClassifier(model="xgboost", random_state=0), X, y, n_splits=5, seed=0)
    lr, _ = cross_validate(ChurnClassifier(model="logistic", random_state=0), X, y, n_splits=5, seed=0)
    assert xgb["roc_auc"].mean() >= 0.850 and xgb["pr_auc"].mean() >= 0.670
    assert lr["roc_auc"].mean() > 0.844 and lr["pr_auc"].mean() > 0.660


@pytest.mark.slow
def test_calibration_repairs_class_weighted_scores(telco):
    X, y = telco
    res, _ = cross_validate(
        ChurnClassifier(model="xgboost", class_weight="balanced", n_bags=1, random_state=0),
        X,
        y,
        n_splits=5,
        seed=0,
        uncalibrated=True,
    )
    assert res["brier"].mean() < res["brier_uncalibrated"].mean() - 0.01


@pytest.mark.slow
def test_estimator_contract_and_explanations(telco):
    X, y = telco
    Xs, ys = X.iloc[:1500], y[:1500]
    m = ChurnClassifier(n_bags=2, cv=3, random_state=0)
    assert m.fit(Xs, ys) is m
    assert clone(m).get_params() == m.get_params()
    p = m.predict_proba(X.iloc[1500:1600])
    assert p.shape == (100, 2) and np.allclose(p.sum(axis=1), 1) and ((p >= 0) & (p <= 1)).all()
    ex = m.explain(X.iloc[1500:1600], top=3)
    assert list(ex.columns) == [
        "reason_1",
        "contribution_1",
        "reason_2",
        "contribution_2",
        "reason_3",
        "contribution_3",
    ]
    known = set(X.columns) | {"n_services", "charges_ratio", "log_tenure"}
    assert set(ex["reason_1"]) <= known
    assert (ex["contribution_1"] >= ex["contribution_2"]).all()
    # exact: the per-column contributions plus the bias add up to the model's log-odds
    xgb = m.pipeline_.named_steps["model"]
    from sklearn.pipeline import Pipeline

    Z = Pipeline(m.pipeline_.steps[:-1]).transform(X.iloc[1500:1600])
    np.testing.assert_allclose(xgb.contributions(Z).sum(axis=1), xgb.decision_function(Z), atol=1e-4)
    imp = m.summary
    assert imp["share"].sum() == pytest.approx(1.0) and imp.index[0] in known


def _encoded(X):
    from sklearn.compose import make_column_selector as sel
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    ct = make_column_transformer(
        (OneHotEncoder(sparse_output=False), sel(dtype_exclude="number")), remainder="passthrough"
    )
    return ct.fit_transform(X)


@pytest.mark.slow
def test_each_bag_keeps_its_trees_up_to_the_best_validation_loss(telco):
    from sklearn.model_selection import train_test_split

    from urm_models.models.churn import _XGBEarlyStopping

    X, y = telco
    Z, ys = _encoded(X.iloc[:2000]), y[:2000]
    est = _XGBEarlyStopping(
        n_bags=2, boosting=replace(boosting.CHURN, learning_rate=0.1, early_stopping_rounds=20), random_state=3
    ).fit(Z, ys)
    for b, (bst, n) in enumerate(zip(est.boosters_, est.best_n_estimators_, strict=True)):
        assert bst.num_boosted_rounds() == n
        # the same split and seed, trained to the end: its validation loss is lowest at tree n
        Ztr, Zva, ytr, yva = train_test_split(Z, ys, test_size=0.2, stratify=ys, random_state=3 + b)
        full = est._xgb(n + 20, 3 + b).fit(Ztr, ytr, eval_set=[(Zva, yva)], verbose=False)
        losses = full.evals_result()["validation_0"]["logloss"]
        assert int(np.argmin(losses)) + 1 == n
    refit = clone(est).set_params(refit=True).fit(Z, ys)
    assert [b.num_boosted_rounds() for b in refit.boosters_] == est.best_n_estimators_
    assert not np.allclose(refit.decision_function(Z), est.decision_function(Z))


def test_a_model_pickled_before_bags_kept_boosters_still_predicts(telco):
    import pickle

    from xgboost import XGBClassifier

    from urm_models.models.churn import _XGBEarlyStopping

    X, y = telco
    Z, ys = _encoded(X.iloc[:800]), y[:800]
    old = [XGBClassifier(n_estimators=20, max_depth=2, random_state=s).fit(Z, ys) for s in (0, 1)]
    # then: the tree settings were nine attributes of their own (their defaults then)
    legacy = {"n_estimators": 2000, "learning_rate": 0.02, "max_depth": 3, "min_child_weight": 5.0, "subsample": 0.8}
    legacy |= {"colsample_bytree": 0.3, "reg_lambda": 5.0, "early_stopping_rounds": 100, "validation_fraction": 0.2}
    state = {
        **{k: v for k, v in _XGBEarlyStopping().get_params().items() if k != "boosting"},
        **legacy,
        "models_": old,
        "best_n_estimators_": [20, 20],
        "classes_": np.array([0, 1]),
    }
    del state["refit"]  # the parameter did not exist then
    est = _XGBEarlyStopping.__new__(_XGBEarlyStopping)
    est.__setstate__(state)
    est = pickle.loads(pickle.dumps(est))
    expected = np.mean([m.predict(Z, output_margin=True) for m in old], axis=0)
    np.testing.assert_allclose(est.decision_function(Z), expected, rtol=1e-6)
    assert est.refit is True and est.contributions(Z).shape == (800, Z.shape[1] + 1)
    assert est.boosting == replace(boosting.CHURN, learning_rate=0.02, early_stopping_rounds=100)
    assert "learning_rate" not in vars(est) and clone(est).get_params()["boosting"] == est.boosting


@pytest.mark.slow
def test_bad_input_names_the_column(telco):
    X, y = telco
    Xs, ys = X.iloc[:600], y[:600]
    with pytest.raises(ValueError, match=r"constant column\(s\) \['k'\]"):
        ChurnClassifier(n_bags=1).fit(Xs.assign(k=1), ys)
    with pytest.raises(ValueError, match=r"both classes"):
        ChurnClassifier(n_bags=1).fit(Xs, np.zeros(len(Xs), int))
    with pytest.raises(ValueError, match=r"'tenure' \(2 rows\)"):
        bad = Xs.copy()
        bad.loc[bad.index[:2], "tenure"] = np.nan
        ChurnClassifier(n_bags=1).fit(bad, ys)
    with pytest.raises(ValueError, match="user_id"):
        ChurnClassifier(n_bags=1).fit(Xs.assign(user_id="x"), ys)
    m = ChurnClassifier(model="logistic", random_state=0).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['contract'\]"):
        m.predict_proba(Xs.drop(columns="contract"))
    # a category never seen in training still gets a prediction
    unseen = Xs.head(3).assign(paymentmethod="Crypto", contract="Ten year")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(m.predict_proba(unseen)).all()


def test_metrics_lift_and_threshold():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.1, 0.2, 0.1, 0.05])
    lift, capture = lift_at(y, p, share=0.2)
    assert lift == pytest.approx((1 / 2) / 0.3) and capture == pytest.approx(1 / 3)
    m = classification_metrics(y, p)
    assert 0 <= m["brier"] <= 1 and m["roc_auc"] == pytest.approx(13 / 21)  # positive-negative pairs ranked right
    t = choose_threshold(y, p, cost_per_contact=1.0, value_saved=10.0, success_rate=0.5)
    # contacting the top 3 (two churners) yields 2*5 - 3 = 7, the best prefix
    assert t["n_contacted"] == 3 and t["value"] == pytest.approx(7.0) and t["threshold"] == 0.7
    assert choose_threshold(y, p, 100.0, 1.0, success_rate=1.0)["n_contacted"] == 0
    assert t["basis"].startswith("assumed: a contact keeps 50% of churners")
    # measured effects (a campaign's uplift: the probability a contact keeps this user) replace the rate
    effect = np.array([0.05, 0.6, 0.1, 0, 0, 0, 0, 0, 0, 0.9])
    m = choose_threshold(y, p, cost_per_contact=1.0, value_saved=10.0, effect=effect)
    # by risk, the user a contact helps most comes last: the best prefix is everyone, 0.5 + 6 + 1 + 9 - 10
    assert m["n_contacted"] == 10 and m["value"] == pytest.approx(6.5) and m["basis"].startswith("measured")
    with pytest.raises(ValueError, match="measured effect .* or an assumed success_rate"):
        choose_threshold(y, p, 1.0, 10.0)
    assert "ASSUMED" in threshold_plot(y, p, 1.0, 10.0, success_rate=0.3).axes[0].get_title()


# ------------------------------------------------------------------ shifted-window churn


def test_churn_window_is_chosen_from_the_history_before_it(cdnow_master):
    # every CDNOW customer starts in Q1 1997: 26 weeks before 1997-09-30 the median customer is
    # 7 weeks old, 13 weeks before it 20 weeks old
    assert features.churn_window(cdnow_master, CUT, 39) == 13
    # 39 weeks before 1998-06-30 the median customer is 34 weeks old: 26 fits, 39 does not;
    # 39 weeks before 1998-12-31 they are 60 weeks old
    assert features.churn_window(cdnow_master, "1998-06-30", 39) == 26
    assert features.churn_window(cdnow_master, "1998-12-31", 39) == 39
    with pytest.raises(
        ValueError, match="too little history before 1997-02-01.*earliest cut-off these purchases allow is 1997-0"
    ):
        features.churn_window(cdnow_master, "1997-02-01", 39)


def test_shifted_window_labels_the_window_before_the_cutoff_and_reads_nothing_after(cdnow_sample):
    X, y = features.shifted_window(cdnow_sample, CUT, 13)
    start = features.churn.window_start(CUT, 13)
    assert start == pd.Timestamp("1997-07-01")
    pd.testing.assert_frame_equal(X, features.activity_features(cdnow_sample, start))
    # churned = no purchase in (1997-07-01, 1997-09-30], computed by hand
    tx = cdnow_sample.assign(d=cdnow_sample["ts"].dt.normalize())
    bought = set(tx.loc[(tx.d > start) & (tx.d <= pd.Timestamp(CUT)), "user_id"])
    expected = pd.Series([0 if u in bought else 1 for u in X.index], index=X.index)
    assert (y.to_numpy() == expected.to_numpy()).all() and 0.7 < y.mean() < 0.9
    later = cdnow_sample[cdnow_sample["ts"] <= pd.Timestamp(CUT) + pd.Timedelta(hours=23, minutes=59)]
    X2, y2 = features.shifted_window(later, CUT, 13)
    pd.testing.assert_frame_equal(X, X2)
    pd.testing.assert_series_equal(y, y2)


@pytest.mark.slow
def test_default_calibrates_on_the_rows_its_bags_held_out_without_extra_training(telco, monkeypatch):
    from urm_models.models.churn import _XGBEarlyStopping

    X, y = telco
    monkeypatch.setattr(ChurnClassifier, "_out_of_fold", lambda *a, **k: pytest.fail("an extra training"))
    m = ChurnClassifier(random_state=0).fit(X.iloc[:2000], y[:2000])
    assert set(m.calibration_scores_) == {"isotonic", "sigmoid", "none"}
    est = m.pipeline_.named_steps["model"]
    assert isinstance(est, _XGBEarlyStopping) and "_held_out" not in est.__dict__  # not kept in the model
    with pytest.raises(RuntimeError, match="once, right after fit"):
        est.held_out_margin()
    # the held-out margins are each bag's own predictions on its validation split
    Z = _encoded(X.iloc[:600])
    bags = _XGBEarlyStopping(
        n_bags=2, boosting=replace(boosting.CHURN, learning_rate=0.1, early_stopping_rounds=10), random_state=1
    ).fit(Z, y[:600])
    held = bags.held_out_margin()
    seen = ~np.isnan(held)
    assert 0.2 <= seen.mean() <= 0.4  # two splits of 20%, partly overlapping
    # with cv=5 the logistic-style out-of-fold path is used instead
    monkeypatch.undo()
    m5 = ChurnClassifier(n_bags=1, cv=3, random_state=0).fit(X.iloc[:1000], y[:1000])
    assert set(m5.calibration_scores_) == {"isotonic", "sigmoid", "none"}


def test_churn_window_of_a_young_shop_is_shorter_than_a_quarter():
    """The gift shop's first year: 13 weeks before 2011-06-30 the median customer is younger than
    13 weeks, so the window is the longest shorter one whose cohort is old enough (a fixed
    13-week step refused every cut-off before September)."""
    tx = datasets.load_online_retail()
    w = features.churn_window(tx, "2011-06-30", 39)
    assert 2 <= w < 13
    start = features.churn.window_start("2011-06-30", w)
    first = tx.groupby("user_id")["ts"].min().dt.normalize()
    known = first[first <= start]
    assert ((start - known).dt.days / 7).median() >= w
    assert features.churn_window(tx, "2011-06-30", 39, step=13) == w
