"""Campaign data and the analysis of randomised experiments: the shipped Hillstrom experiment,
interval coverage and power by simulation, and the refusals of bad campaign input."""

import numpy as np
import pandas as pd
import pytest

from urm_models import experiments
from urm_models.core.errors import DataValidationError
from urm_models.data import campaign_files
from urm_models.data.campaign_files import Campaign
from urm_models.data.simulate import simulate_campaign


@pytest.fixture(scope="module")
def hillstrom():
    return campaign_files.load_hillstrom()


@pytest.mark.slow
def test_hillstrom_reproduces_the_published_arm_means(hillstrom):
    # ../shared/data/README.md, the challenge's summary: customers, visit, conversion, spend
    published = {
        "No E-Mail": (21_306, "10.617%", "0.573%", "$0.653"),
        "Mens E-Mail": (21_307, "18.276%", "1.253%", "$1.423"),
        "Womens E-Mail": (21_387, "15.140%", "0.884%", "$1.077"),
    }
    assert hillstrom.arms == ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
    assert len(hillstrom.data) == 64_000 and hillstrom.data["user_id"].is_unique
    for outcome, i in (("visit", 1), ("conversion", 2), ("spend", 3)):
        arms = experiments.arm_summary(hillstrom, outcome)
        for arm, row in published.items():
            assert arms.loc[arm, "users"] == row[0]
            shown = f"${arms.loc[arm, 'mean']:.3f}" if outcome == "spend" else f"{arms.loc[arm, 'mean']:.3%}"
            assert shown == row[i], (outcome, arm)
    # the counts behind the rates are whole users
    visits = experiments.arm_summary(hillstrom, "visit")
    assert visits.loc["No E-Mail", "total"] == 2_262 and visits.loc["Mens E-Mail", "total"] == 3_894
    assert hillstrom.binary("visit") and hillstrom.binary("conversion") and not hillstrom.binary("spend")
    assert hillstrom.unit("spend") == "USD"
    assert "history_segment" not in hillstrom.data  # history, binned: the table keeps history itself


@pytest.mark.slow
def test_hillstrom_analysis(hillstrom):
    report = experiments.analyze(hillstrom, "visit")
    lifts = report.lifts
    assert lifts.loc["Mens E-Mail", "lift"] == pytest.approx(3_894 / 21_307 - 2_262 / 21_306)
    for _arm, r in lifts.iterrows():
        assert r["lift_lower"] < r["lift"] < r["lift_upper"]
        assert r["lift_lower_simultaneous"] < r["lift_lower"] and r["lift_upper_simultaneous"] > r["lift_upper"]
        assert r["p_holm"] >= r["p_value"]
    assert not report.srm["mismatch"] and report.srm["p_value"] > 0.5
    assert not report.balance["imbalanced"].any()
    adj = report.adjusted
    assert (adj["variance_reduction"] > 0).all() and (adj["variance_reduction"] < 0.2).all()
    assert "Holm" in report.summary() and "percentage points" in report.summary()
    spend = experiments.lift_table(hillstrom, "spend")
    assert spend.loc["Womens E-Mail", "lift_lower"] > 0 and "Welch" in spend.loc["Womens E-Mail", "method"]
    assert spend.attrs["unit"] == "USD" and spend["note"].eq("").all()


def _frame_campaign(truth, outcome_cols, arms, control="control"):
    data = truth.reset_index()[["user_id", "arm", *outcome_cols]]
    return Campaign(data=data, control=control, arms=tuple(arms), outcomes=tuple(outcome_cols), features=())


@pytest.mark.slow
def test_intervals_cover_the_true_lift_in_repeated_simulated_experiments():
    """300 simulated campaigns (1,500 users per arm, fixed seeds): the 95% intervals of the binary
    outcome (Newcombe) and of the amounts (Welch) hold the true lift, the mean of every user's
    known effect, in about 95% of them."""
    hits = {"converted": 0, "purchases": 0, "spend": 0}
    reps = 300
    for seed in range(reps):
        _, _, truth = simulate_campaign(3_000, {"contact": 1.0}, seed=seed, window=8)
        camp = _frame_campaign(truth, ["converted", "purchases", "spend"], ["control", "contact"])
        for outcome in hits:
            row = experiments.lift_table(camp, outcome).loc["contact"]
            true = truth[f"effect_{outcome}[contact]"].mean()
            hits[outcome] += row["lift_lower"] <= true <= row["lift_upper"]
    coverage = {k: v / reps for k, v in hits.items()}
    for c in coverage.values():
        assert 0.925 <= c <= 0.975, coverage


@pytest.mark.slow
def test_simultaneous_intervals_hold_together_across_arms():
    reps, together, separately = 200, 0, 0
    for seed in range(reps):
        _, _, truth = simulate_campaign(3_000, {"a": 1.0, "b": 2.0, "c": 0.5}, seed=1_000 + seed, window=8)
        camp = _frame_campaign(truth, ["converted"], ["control", "a", "b", "c"])
        t = experiments.lift_table(camp, "converted")
        true = pd.Series({a: truth[f"effect_converted[{a}]"].mean() for a in "abc"})
        together += bool(((t["lift_lower_simultaneous"] <= true) & (true <= t["lift_upper_simultaneous"])).all())
        separately += bool(((t["lift_lower"] <= true) & (true <= t["lift_upper"])).all())
    assert together / reps >= 0.93  # family-wise: all three at once
    assert separately < together  # three separate 95% intervals hold together less often


@pytest.mark.slow
def test_planned_sample_size_detects_the_lift_with_the_planned_power():
    plan = experiments.sample_size(0.10, 0.02, power=0.8)
    n = plan["control"]
    rng = np.random.default_rng(0)
    reps, rejected = 400, 0
    for _ in range(reps):
        y0 = (rng.random(n) < 0.10).astype(float)
        y1 = (rng.random(plan["per_treatment"]) < 0.12).astype(float)
        data = pd.DataFrame({"user_id": np.arange(2 * n).astype(str), "arm": ["c"] * n + ["t"] * n, "y": np.r_[y0, y1]})
        camp = Campaign(data=data, control="c", arms=("c", "t"), outcomes=("y",), features=())
        rejected += experiments.lift_table(camp, "y").loc["t", "p_value"] < 0.05
    assert 0.74 <= rejected / reps <= 0.86
    back = experiments.minimum_detectable_effect(n, 0.10)
    assert back["lift"] == pytest.approx(0.02, rel=0.01)
    amount = experiments.sample_size(0.65, 0.2, sd=12.0, treatments=2)
    mde = experiments.minimum_detectable_effect(amount["control"], 0.65, sd=12.0, treatments=2)
    assert mde["lift"] == pytest.approx(0.2, rel=0.01)
    assert amount["total"] == amount["control"] + 2 * amount["per_treatment"]
    with pytest.raises(ValueError, match="sd="):
        experiments.sample_size(0.65, 0.5)


def test_regression_adjustment_removes_the_variance_a_covariate_explains():
    rng = np.random.default_rng(4)
    n = 20_000
    before = rng.gamma(2.0, 10.0, n)
    arm = np.where(rng.random(n) < 0.5, "t", "c")
    after = 0.8 * before + rng.normal(0, 8.0, n) + np.where(arm == "t", 1.0, 0.0)
    data = pd.DataFrame({"user_id": np.arange(n).astype(str), "arm": arm, "spend": after, "spend_before": before})
    camp = Campaign(data=data, control="c", arms=("c", "t"), outcomes=("spend",), features=("spend_before",))
    adj = experiments.adjusted_lift(camp, "spend").loc["t"]
    corr2 = np.corrcoef(before, after)[0, 1] ** 2
    assert adj["variance_reduction"] == pytest.approx(corr2, abs=0.03)  # CUPED's rho^2
    assert adj["lift_lower"] < 1.0 < adj["lift_upper"]
    assert adj["std_error"] < 0.7 * adj["unadjusted_std_error"]


@pytest.mark.slow
def test_sample_ratio_mismatch_and_imbalance_are_flagged(hillstrom):
    data = hillstrom.data
    lost = data.index[(data["arm"] == "Mens E-Mail") & (data["history"] > 400)][:2_000]
    broken = Campaign(**{**hillstrom.__dict__, "data": data.drop(index=lost).reset_index(drop=True)})
    report = experiments.analyze(broken, "visit")
    assert report.srm["mismatch"] and "SAMPLE RATIO MISMATCH" in report.summary()
    assert report.balance.loc["history", "imbalanced"]
    with pytest.raises(ValueError, match="allocation"):
        experiments.srm_test(hillstrom, {"No E-Mail": 0.5, "Mens E-Mail": 0.5})


# ------------------------------------------------------------------------------ bad input


def _write(tmp_path, rows, name="campaign.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


GOOD = [{"user_id": f"u{i}", "arm": ["none", "mail"][i % 2], "visit": i % 3 == 0, "age": 20 + i} for i in range(20)]


def test_bad_campaign_input_is_refused_with_one_clear_error(home, tmp_path):
    ok = campaign_files.load_campaign(
        _write(tmp_path, [{**r, "visit": int(r["visit"])} for r in GOOD]), control="none", outcomes=["visit"]
    )
    assert ok.arms == ("none", "mail") and ok.features == ("age",)

    two = [dict(r, visit=int(r["visit"])) for r in GOOD] + [{"user_id": "u0", "arm": "mail", "visit": 1, "age": 20}]
    with pytest.raises(
        DataValidationError,
        match=r"(?s)campaign.csv: 21 rows, 20 users.*column arm: 1 of 20 users are in two or more arms",
    ) as e:
        campaign_files.load_campaign(_write(tmp_path, two), control="none", outcomes=["visit"])
    assert e.value.failures["check"].tolist() == ["one_arm_per_user"]

    rows = [dict(r, visit=int(r["visit"])) for r in GOOD]
    with pytest.raises(
        DataValidationError, match=r"(?s)control arm 'None' does not exist \(did you mean 'none'\?\).*control="
    ):
        campaign_files.load_campaign(_write(tmp_path, rows), control="None", outcomes=["visit"])
    with pytest.raises(DataValidationError, match=r"declared arm\(s\) \['sms'\] have no users"):
        campaign_files.load_campaign(
            _write(tmp_path, rows), control="none", outcomes=["visit"], arms=["none", "mail", "sms"]
        )
    with pytest.raises(DataValidationError, match=r"10 users are in arm\(s\) \['mail'\] that arms= does not declare"):
        campaign_files.load_campaign(_write(tmp_path, rows), control="none", outcomes=["visit"], arms=["none"])
    one_arm = [dict(r, arm="none") for r in rows]
    with pytest.raises(DataValidationError, match="only one arm"):
        campaign_files.load_campaign(_write(tmp_path, one_arm), control="none", outcomes=["visit"])
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) 'spend'"):
        campaign_files.load_campaign(_write(tmp_path, rows), control="none", outcomes=["spend"])

    dated = [dict(r, sent_at="2024-03-01", outcome_at="2024-03-05") for r in rows]
    dated[3]["outcome_at"] = "2024-02-27"
    with pytest.raises(
        DataValidationError, match=r"(?s)outcome_at.*1 of 20 users have their outcome dated before their send"
    ):
        campaign_files.load_campaign(_write(tmp_path, dated), control="none", outcomes=["visit"])

    bad_value = [dict(r) for r in rows]
    bad_value[5]["visit"] = "yes"
    with pytest.raises(DataValidationError, match=r"column visit, check 'numeric': 1 rows"):
        campaign_files.load_campaign(_write(tmp_path, bad_value), control="none", outcomes=["visit"])
    kept = campaign_files.load_campaign(
        _write(tmp_path, bad_value), control="none", outcomes=["visit"], errors="quarantine"
    )
    assert len(kept.data) == 19 and kept.data.attrs["validation"]["n_rejected"] == 1
    assert list((home / "data" / "quarantine").glob("campaign-campaign-*.csv"))


def test_bad_assignment_files_are_refused(home, tmp_path):
    rows = [{"user_id": f"u{i}", "arm": ["control", "email"][i % 2], "sent_at": "2024-03-01"} for i in range(10)]
    asg = campaign_files.load_assignments(_write(tmp_path, rows, "assign.csv"), control="control")
    assert asg.attrs["campaign"]["arms"] == ["control", "email"] and asg["sent_at"].dt.year.eq(2024).all()
    twice = rows + [{"user_id": "u1", "arm": "control", "sent_at": "2024-03-01"}]
    with pytest.raises(DataValidationError, match="(?s)assign.csv.*in two or more arms"):
        campaign_files.load_assignments(_write(tmp_path, twice, "assign.csv"), control="control")
    with pytest.raises(DataValidationError, match="control arm 'holdout' does not exist"):
        campaign_files.load_assignments(_write(tmp_path, rows, "assign.csv"), control="holdout")
    future = [dict(r, sent_at="2099-01-01") for r in rows]
    with pytest.raises(DataValidationError, match="not_after_as_of"):
        campaign_files.load_assignments(_write(tmp_path, future, "assign.csv"), control="control")
    ambiguous = [dict(r, sent_at="03/01/2024") for r in rows]
    with pytest.raises(DataValidationError, match="date_format"):
        campaign_files.load_assignments(_write(tmp_path, ambiguous, "assign.csv"), control="control")


# ------------------------------------------------------------------------------ own data


@pytest.mark.slow
def test_campaign_from_transactions_reads_nothing_after_the_send_into_a_feature(home):
    """Features as of the day before each send: changing or adding purchases on or after a user's
    send day changes none of that user's own features, only the outcomes; the BTYD scores of a
    send day, fitted on every user's history before it, change only with purchases before that
    day (so those of the first send day not at all); changing a purchase before the send does
    change the features."""
    from urm_models.experiments.campaign import from_transactions

    tx, asg, truth = simulate_campaign(3_000, {"email": 1.0}, window=4, seed=3, sent_at="2021-03-01")
    later = asg.copy()
    later.loc[later.index[::2], "sent_at"] = pd.Timestamp("2021-02-15")  # two send days
    base = from_transactions(tx, later, window=4, control="control")
    send = later.set_index("user_id")["sent_at"].reindex(tx["user_id"]).to_numpy()
    after = tx["ts"].to_numpy() >= send
    assert after.any() and (~after).any()
    noisy = tx.copy()
    noisy.loc[after, "amount"] *= 7.0  # every purchase from the send day on
    extra = tx[after].assign(ts=lambda d: d["ts"] + pd.Timedelta(hours=1))
    changed = from_transactions(
        pd.concat([noisy, extra]).sort_values(["user_id", "ts"]), later, window=4, control="control"
    )
    own = [f for f in base.features if f not in ("p_alive", "btyd_p_no_purchase", "btyd_expected_purchases", "clv")]
    pd.testing.assert_frame_equal(base.data[own], changed.data[own])
    first = base.data["sent_at"] == base.data["sent_at"].min()
    pd.testing.assert_frame_equal(
        base.data.loc[first, list(base.features)], changed.data.loc[first, list(base.features)]
    )
    assert not base.data["spend"].equals(changed.data["spend"])
    before = tx.copy()
    before.loc[np.flatnonzero(~after)[:50], "amount"] += 100.0
    moved = from_transactions(before, later, window=4, control="control")
    assert not moved.data[["total_spend", "clv"]].equals(base.data[["total_spend", "clv"]])
    # the outcomes are the purchase days in the window from the send day
    t = truth.reindex(base.data["user_id"])
    first_day = base.data["sent_at"] == pd.Timestamp("2021-03-01")
    assert (
        base.data.loc[first_day, "converted"].to_numpy() == t.loc[first_day.to_numpy(), "converted"].to_numpy()
    ).mean() > 0.99
    assert base.arms == ("control", "email") and "in the 4 weeks from the send day" == base.window


def test_campaign_outcome_window_must_be_observed():
    from urm_models.experiments.campaign import from_transactions

    tx, asg, _ = simulate_campaign(500, {"email": 1.0}, window=4, seed=1, sent_at="2021-03-01")
    last = tx["ts"].max().normalize()
    late = asg.assign(sent_at=last - pd.Timedelta(days=3))
    with pytest.raises(
        DataValidationError,
        match=r"(?s)column sent_at: 500 of 500 users were sent the campaign after .*"
        r"outcome window ends after the last purchase.*window=",
    ):
        from_transactions(tx, late, window=4, control="control")
    with pytest.raises(DataValidationError, match="in two or more arms"):
        from_transactions(tx, pd.concat([asg, asg.head(1).assign(arm="email2")]), window=4, control="control")


# ------------------------------------------------------------------------------ economics and the next campaign


def test_one_set_of_economics_with_units_and_sources():
    from urm_models.data import economics

    e = economics.economics("hillstrom")
    assert e.cost("Mens E-Mail") == 0.1 and e.budget_share == 0.3 and e.currency == "USD"
    assert e.sources["contact_cost"].startswith("data set default")
    d = e.describe()
    assert d["contact_cost"] == "0.1 USD per contact" and "12 months" in d["value_saved"]
    mine = economics.economics("cdnow", contact_cost={"email": 0.2, "letter": 1.5}, budget=300, horizon_months=6)
    assert mine.sources["contact_cost"] == "parameter" and mine.share_for(1_000, ["email", "letter"]) == 0.2
    with pytest.raises(ValueError, match="but not 'sms'"):
        mine.cost("sms")
    for bad, match in (
        ({"contact_cost": -1}, "contact_cost must be >= 0"),
        ({"budget": 0}, "budget must be positive"),
        ({"budget_share": 1.5}, r"budget_share must be in \[0, 1\]"),
        ({"success_rate": "high"}, "success_rate must be a number"),
        ({"horizon_months": 2.5}, "whole number of months"),
    ):
        with pytest.raises(ValueError, match=match):
            economics.economics("cdnow", **bad)


def test_refresh_refuses_bad_economics_before_any_notebook(home):
    from urm_models.jobs import pipeline

    with pytest.raises(pipeline.RefreshError, match="economics: budget_share must lie in"):
        pipeline.refresh({"dataset": "hillstrom", "budget_share": 0}, progress=False)
    assert not (home / "reports" / "runs").exists()


def test_next_campaign_holds_out_a_stratified_random_share_sized_for_the_effect():
    from urm_models.experiments import planning

    n = 40_000
    ids = pd.Index([f"c{i:06d}" for i in range(n)], name="user_id")
    rng = np.random.default_rng(0)
    arm = np.where(rng.random(n) < 0.5, "mail", np.where(rng.random(n) < 0.5, "sms", "none"))
    rec = pd.DataFrame(
        {"recommended_arm": arm, "expected_incremental_value": rng.random(n), "action_priority": rng.integers(1, 5, n)},
        index=ids,
    )
    sends, plan = planning.plan_campaign(
        rec, control="none", sent_at="2024-05-01", baseline=0.10, effect={"mail": 0.02, "sms": 0.05}, persistent=0.05
    )
    kept = planning.persistent_control(ids, 0.05)
    assert 0.04 < len(kept) / n < 0.06 and not sends["user_id"].isin(kept).any()
    # the same users stay in the standing control whatever else changes
    assert planning.persistent_control(ids[::-1], 0.05).sort_values().equals(kept.sort_values())
    assert set(sends["arm"]) == {"mail", "sms", "none"} and (sends["sent_at"] == pd.Timestamp("2024-05-01")).all()
    # a larger effect needs a smaller holdout; each plan detects its effect
    assert plan.loc["sms", "holdout_share"] < plan.loc["mail", "holdout_share"] and plan["detects_it"].all()
    for a in ("mail", "sms"):
        users = sends.loc[sends["user_id"].isin(rec.index[rec["recommended_arm"] == a]), ["user_id", "arm"]]
        check = experiments.minimum_detectable_effect(
            int((users["arm"] == "none").sum()),
            0.10,
            ratio=(users["arm"] == a).sum() / (users["arm"] == "none").sum(),
        )
        assert check["lift"] <= plan.loc[a, "effect_worth_detecting"] + 1e-9
        # stratified: each priority quarter holds out the same share
        q = rec.loc[users["user_id"], "action_priority"].to_numpy()
        shares = pd.Series((users["arm"] == "none").to_numpy()).groupby(q).mean()
        assert (shares - plan.loc[a, "holdout_share"]).abs().max() < 0.01


@pytest.mark.slow
def test_a_campaign_with_new_sign_ups_trains_a_model_that_scores_everyone(home):
    """Issue 27: users sent the campaign before their first purchase (new sign-ups; supported)
    made the trained model's features floats (missing history) where scoring, on users with
    purchases, gave integers: MLflow refused them ("Can not safely convert int64 to float64"), 06
    failed and every later urm score with it. The features are floats whoever the users are."""
    import mlflow

    from urm_models.experiments import policy
    from urm_models.experiments.campaign import check_campaign, features_at
    from urm_models.models import UpliftModel
    from urm_models.serve import scoring, tracking

    tx, asg, _ = simulate_campaign(400, {"email": 1.0}, window=4, sent_at="2021-03-01", seed=3)
    asg = asg.assign(sent_at=pd.Timestamp("2021-03-01"))
    new = pd.DataFrame({"user_id": [f"n{i}" for i in range(20)], "arm": ["email", "control"] * 10})
    later = pd.DataFrame({"user_id": new["user_id"][::2], "ts": pd.Timestamp("2021-03-05"), "amount": 10.0})
    tx = pd.concat([tx, later], ignore_index=True)
    sends = pd.concat([asg, new.assign(sent_at=pd.Timestamp("2021-03-01"))], ignore_index=True)
    summary = check_campaign(tx, sends, window=2, control="control")
    assert summary["new_users"] >= 20 and summary["never_bought"] == 10
    camp = experiments.campaign.from_transactions(tx, sends, window=2, control="control", btyd=False)
    assert (camp.X.drop(columns="known").dtypes == "float64").all() and camp.X["known"].dtype == "int64"
    assert camp.X.loc[[f"n{i}" for i in range(20)], "known"].eq(0).all()
    at_scoring = features_at(tx, "2021-03-20", tx["user_id"].unique()[:30], **camp.features_spec)
    assert at_scoring.dtypes.to_dict() == camp.X.dtypes.to_dict()  # the same types without new sign-ups
    model = UpliftModel(learner="s", control="control", random_state=0).fit(
        camp.X, camp.data["converted"].to_numpy(float), camp.data["arm"]
    )
    decision = policy.UpliftPolicy(
        model, {"email": 1.0}, outcome="converted", value_outcome="spend", features_spec=camp.features_spec
    )
    tracking.configure()
    mlflow.set_experiment("new-sign-ups")
    with mlflow.start_run():
        logged = tracking.log_uplift_model(decision, camp.X.sort_values("known"))  # the example holds new sign-ups
    table = pd.DataFrame({"user_id": sorted(tx["user_id"].unique())[:40], "model_versions": "urm-clv/1"})
    info = {"name": "urm-uplift", "version": 1, "tags": {}}
    out = scoring.add_campaign_columns(table, tx, "2021-03-20", mlflow.pyfunc.load_model(logged.model_uri), info)
    assert out["recommended_arm"].isin(["email", "control"]).all() and out["expected_incremental_value"].notna().all()
