"""Segments, tiers and targeting: hand-built cases, CDNOW coverage, brute force."""

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urm_models import features, segments
from urm_models.segments import (
    PLAYBOOK,
    SEGMENT_RULES,
    STAGES,
    TIERS,
    lifecycle_stages,
    recommend_actions,
    rfm_scores,
    rfm_segments,
    target_list,
    tier_report,
    value_tiers,
)


def test_default_rules_cover_every_cell_exactly_once_in_order():
    for r, fm in itertools.product(range(1, 6), range(0, 6)):  # FM = 0: one-time buyers
        hits = SEGMENT_RULES[
            (SEGMENT_RULES.r_min <= r)
            & (r <= SEGMENT_RULES.r_max)
            & (SEGMENT_RULES.fm_min <= fm)
            & (fm <= SEGMENT_RULES.fm_max)
        ]
        assert len(hits) >= 1, (r, fm)
    assert set(SEGMENT_RULES.segment) == {
        "Champions",
        "Loyal",
        "Potential loyalists",
        "New",
        "Promising",
        "Need attention",
        "About to sleep",
        "At risk",
        "Cannot lose",
        "Hibernating",
        "Lost",
    }


def test_scores_hand_built():
    rfm = pd.DataFrame(
        {"frequency": [0, 0, 1, 3, 10], "monetary": [0, 0, 5, 20, 50.0], "time_since_last": [40, 30, 20, 10, 0.0]},
        index=list("abcde"),
    )
    s = rfm_scores(rfm)
    assert list(s["R"]) == [1, 2, 3, 4, 5]  # most recent = 5
    # F and M are quintiles among the three repeat buyers (ranks 1-3 of 3: scores 1, 2, 4);
    # the two one-time buyers are a cell of their own
    assert list(s["F"]) == [0, 0, 1, 2, 4] and list(s["M"]) == [0, 0, 1, 2, 4]
    assert list(s["FM"]) == [0, 0, 1, 2, 4]
    seg = rfm_segments(rfm)["segment"]
    assert seg.to_dict() == {
        "a": "Lost",
        "b": "Hibernating",
        "c": "Need attention",
        "d": "Potential loyalists",
        "e": "Champions",
    }
    # with lapse_after=5, d (10 periods without a purchase) is lapsed: R 4 becomes 3, and it
    # leaves the recent segment Potential loyalists for Need attention; e (0) keeps R 5
    capped = rfm_segments(rfm, lapse_after=5)
    assert list(capped["R"]) == [1, 2, 3, 3, 5]
    assert capped.loc["d", "segment"] == "Need attention" and capped.loc["e", "segment"] == "Champions"


def test_cdnow_master_segments_are_balanced_and_champions_never_lapsed(cdnow_master):
    """The issue's acceptance: no named segment holds more than a quarter of CDNOW's users, and
    no Champion is lapsed (no purchase for 26 weeks) at the cut-off or at any quarter end."""
    for as_of in ("1997-06-30", "1997-09-30", "1997-12-31", "1998-06-30"):
        act = features.activity_features(cdnow_master, as_of, freq="W")
        seg = rfm_segments(act, lapse_after=26)
        shares = seg["segment"].value_counts(normalize=True)
        assert len(seg) == 23_570 and shares.max() <= 0.25, (as_of, shares.round(3).to_dict())
        champions = seg["segment"] == "Champions"
        assert champions.any() and not (act.loc[champions, "time_since_last"] >= 26).any(), as_of
        lapsed = segments.lifecycle_stages(act["T"], since_last=act["time_since_last"], lapse_after=26) == "lapsed"
        assert not (lapsed & champions).any()


def test_scores_do_not_depend_on_row_order(cdnow_sample):
    rfm = features.rfm_summary(cdnow_sample, "1997-09-30", freq="W")
    a = rfm_segments(rfm)
    b = rfm_segments(rfm.sample(frac=1, random_state=3)).reindex(a.index)
    pd.testing.assert_frame_equal(a, b)


def test_every_cdnow_user_gets_exactly_one_segment(cdnow_master):
    rfm = features.rfm_summary(cdnow_master, "1997-09-30", freq="W")
    seg = rfm_segments(rfm)
    assert len(seg) == 23_570 and seg["segment"].isin(SEGMENT_RULES.segment).all()


def test_rules_override_and_gaps(tmp_path):
    p = tmp_path / "rules.csv"
    SEGMENT_RULES.iloc[:-1].to_csv(p, index=False)  # drop "Lost": (1, 0) and (1, 1) uncovered
    rfm = pd.DataFrame({"frequency": [1, 2], "monetary": [1, 2.0], "time_since_last": [1, 2.0]})
    with pytest.raises(ValueError, match=r"\(1, 0\), \(1, 1\)\] without a segment"):
        rfm_segments(rfm, rules=p)
    mine = pd.DataFrame([("Everyone", 1, 5, 0, 5)], columns=SEGMENT_RULES.columns)
    assert set(rfm_segments(rfm, rules=mine)["segment"]) == {"Everyone"}


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 400), st.integers(0, 10_000))
def test_tier_shares_within_one_user(n, seed):
    v = pd.Series(np.random.default_rng(seed).gamma(0.5, 10, n), index=[f"u{i}" for i in range(n)])
    t = value_tiers(v)
    counts = t.value_counts()
    cum = 0
    for tier, share in {"platinum": 0.1, "gold": 0.2, "silver": 0.3, "bronze": 0.4}.items():
        cum_expected = (cum + share) * n
        cum += share
        got = sum(
            counts.get(k, 0)
            for k in list(["platinum", "gold", "silver", "bronze"])[
                : list(["platinum", "gold", "silver", "bronze"]).index(tier) + 1
            ]
        )
        assert abs(got - cum_expected) <= 1
        assert abs(counts.get(tier, 0) - share * n) <= 1
    # higher tiers hold higher values
    order = {"platinum": 0, "gold": 1, "silver": 2, "bronze": 3}
    ranks = t.map(order)
    assert all(
        v[ranks == i].min() >= v[ranks == i + 1].max()
        for i in range(3)
        if (ranks == i).any() and (ranks == i + 1).any()
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=60), st.integers(0, 1000))
def test_tied_values_split_by_id_whatever_the_row_order(values, seed):
    v = pd.Series(np.asarray(values, float), index=[f"u{i:03d}" for i in range(len(values))])
    t = value_tiers(v)
    # reference: sort by value (high first), then id; cut at the rounded cumulative shares
    ref_order = sorted(v.index, key=lambda u: (-v[u], u))
    bounds = np.round(np.cumsum([0.1, 0.2, 0.3, 0.4]) * len(v)).astype(int)
    bounds[-1] = len(v)
    expected, start = {}, 0
    for tier, end in zip(["platinum", "gold", "silver", "bronze"], bounds, strict=True):
        expected.update({u: tier for u in ref_order[start:end]})
        start = end
    assert t.to_dict() == expected
    shuffled = v.sample(frac=1.0, random_state=seed)
    assert value_tiers(shuffled).reindex(v.index).equals(t)


def test_tiers_by_amount_and_report():
    v = pd.Series([500.0, 150, 60, 5], index=list("abcd"))
    t = value_tiers(v, amounts={"platinum": 400, "gold": 100, "silver": 50, "bronze": 0})
    assert list(t) == ["platinum", "gold", "silver", "bronze"]
    rep = tier_report(t, v)
    assert rep.loc["platinum", "share_of_value"] == pytest.approx(500 / 715)
    with pytest.raises(ValueError, match="add up to 1"):
        value_tiers(v, shares={"a": 0.5, "b": 0.4})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0, 1000), min_size=1, max_size=8), st.floats(0, 50), st.floats(0.5, 20), st.floats(0, 1))
def test_target_list_matches_brute_force_and_respects_budget(values, budget, cost, success):
    scores = pd.DataFrame({"value_at_risk": values}, index=[f"u{i}" for i in range(len(values))])
    chosen = target_list(scores, budget=budget, cost_per_contact=cost, success_rate=success)
    assert chosen.attrs["spend"] <= budget + 1e-9
    best = 0.0
    for k in range(len(values) + 1):
        for subset in itertools.combinations(range(len(values)), k):
            if k * cost <= budget + 1e-9:
                best = max(best, sum(success * values[i] - cost for i in subset))
    assert chosen.attrs["expected_return"] == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_target_list_takes_measured_effects_and_labels_assumptions():
    scores = pd.DataFrame(
        {"value_at_risk": [50.0, 40.0, 30.0, 20.0], "p_churn": [0.5, 0.4, 0.3, 0.2], "clv": [100.0, 100, 100, 100]},
        index=list("abcd"),
    )
    assumed = target_list(scores, budget=100, cost_per_contact=5, success_rate=0.3)
    assert (
        assumed.attrs["basis"].startswith("assumed: a contact saves 30%") and "not measured" in assumed.attrs["basis"]
    )
    assert list(assumed.index) == ["a", "b", "c", "d"]
    # a measured campaign: d gains most from a contact, b's best arm is no contact (0)
    measured = scores.assign(
        expected_incremental_value=[8.0, 0.0, 6.0, 20.0],
        recommended_arm=["mail", "none", "mail", "call"],
        model_versions="urm-uplift/3",
    )
    chosen = target_list(measured, budget=100, cost_per_contact=5, success_rate=0.3)
    assert list(chosen.index) == ["d", "a", "c"] and chosen["recommended_arm"].tolist() == ["call", "mail", "mail"]
    assert chosen.attrs["basis"].startswith("measured") and "urm-uplift/3" in chosen.attrs["basis"]
    assert chosen.attrs["expected_return"] == pytest.approx(20 + 8 + 6 - 15)
    with pytest.raises(ValueError, match="no measured effect .* pass success_rate="):
        target_list(scores, budget=100, cost_per_contact=5)


def test_transitions_hand_built():
    from urm_models.segments import transitions

    before = pd.Series({"a": "gold", "b": "gold", "c": "bronze", "d": "platinum"})
    after = pd.Series({"a": "platinum", "b": "bronze", "c": "bronze", "e": "gold"})
    t = transitions(before, after, order=["platinum", "gold", "silver", "bronze"])
    c = t["counts"]
    assert c.to_numpy().sum() == 5  # a, b, c, d, e
    assert c.loc["gold", "platinum"] == 1 and c.loc["gold", "bronze"] == 1
    assert c.loc["bronze", "bronze"] == 1 and c.loc["platinum", "(none)"] == 1 and c.loc["(none)", "gold"] == 1
    assert t["upgraded"] == ["a"] and t["downgraded"] == ["b"]
    assert t["stability"] == pytest.approx(1 / 3)  # of a, b, c only c kept its tier
    assert t["shares"].loc["gold"].sum() == pytest.approx(1.0)


def test_cdnow_segment_transitions_sum_to_the_users(cdnow_master):
    from urm_models.segments import transitions

    s1 = rfm_segments(features.rfm_summary(cdnow_master, "1997-09-30", freq="W"))["segment"]
    s2 = rfm_segments(features.rfm_summary(cdnow_master, "1997-12-31", freq="W"))["segment"]
    t = transitions(s1, s2, order=list(SEGMENT_RULES.segment))
    assert t["counts"].to_numpy().sum() == 23_570
    assert 0 < t["stability"] < 1


# ------------------------------------------------------------------------------- lifecycle
def test_lifecycle_stages_hand_built():
    ids = ["new", "lapsed", "back", "risky", "fine", "gone_new"]
    age = pd.Series([5, 40, 40, 40, 40, 2], index=ids, dtype=float)
    since = pd.Series([1, 30, 2, 3, 3, 2], index=ids, dtype=float)
    gap = pd.Series([0, 0, 27, 1, 1, 0], index=ids, dtype=float)
    risk = pd.Series([0.9, 0.1, 0.9, 0.7, 0.2, 0.1], index=ids)
    gone = pd.Series([False, False, False, False, False, True], index=ids)
    stages = lifecycle_stages(
        age, since_last=since, gap_before_last=gap, lapsed=gone, risk=risk, period=13, lapse_after=26, at_risk=0.5
    )
    # an observed churn is lapsed even when new; new wins over risk; a return after 26+ is reactivated
    assert stages.to_dict() == {
        "new": "new",
        "lapsed": "lapsed",
        "back": "reactivated",
        "risky": "at risk",
        "fine": "active",
        "gone_new": "lapsed",
    }
    assert set(stages) <= set(STAGES)
    # rules whose inputs are missing are skipped
    assert lifecycle_stages(age, period=13, lapse_after=26).tolist() == [
        "new",
        "active",
        "active",
        "active",
        "active",
        "new",
    ]


def test_lifecycle_rejects_bad_settings_and_missing_rows():
    age = pd.Series([1.0, 2.0], index=["a", "b"])
    with pytest.raises(ValueError, match="period"):
        lifecycle_stages(age, period=30, lapse_after=10)
    with pytest.raises(ValueError, match="at_risk"):
        lifecycle_stages(age, at_risk=1.5)
    with pytest.raises(ValueError, match="risk has 1 missing rows"):
        lifecycle_stages(age, risk=pd.Series([0.1], index=["a"]))


# ---------------------------------------------------------------------------------- actions
def test_default_playbook_covers_every_tier_and_stage_once():
    pairs = list(zip(PLAYBOOK.tier, PLAYBOOK.lifecycle_stage, strict=True))
    assert sorted(pairs) == sorted(itertools.product(TIERS, STAGES))
    assert PLAYBOOK.priority.between(1, 5).all()
    row = PLAYBOOK.set_index(["tier", "lifecycle_stage"])
    assert row.loc[("platinum", "at risk"), "channel"] in ("phone", "account manager")
    assert row.loc[("bronze", "lapsed"), "action"] == "none"


def test_actions_follow_an_overriding_playbook_file(tmp_path):
    tiers = pd.Series(["gold", "bronze", "gold"], index=["u1", "u2", "u3"])
    stages = pd.Series(["active", "lapsed", "new"], index=["u1", "u2", "u3"])
    book = PLAYBOOK.copy()
    book.loc[(book.tier == "bronze") & (book.lifecycle_stage == "lapsed"), ["action", "channel", "priority"]] = [
        "survey",
        "email",
        4,
    ]
    path = tmp_path / "playbook.csv"
    book.to_csv(path, index=False)
    out = recommend_actions(tiers, stages, path)
    assert out.index.tolist() == ["u1", "u2", "u3"]
    assert out.loc["u2"].tolist() == ["survey", "email", 4]
    assert out.loc["u1", "recommended_action"] == "loyalty reward"
    with pytest.raises(ValueError, match=r"no action for 1 users.*gold.*new"):
        recommend_actions(tiers, stages, book[~((book.tier == "gold") & (book.lifecycle_stage == "new"))])
    with pytest.raises(ValueError, match="twice"):
        recommend_actions(tiers, stages, pd.concat([book, book.head(1)]))
    with pytest.raises(ValueError, match="lacks columns"):
        recommend_actions(tiers, stages, book.drop(columns=["channel"]))


# --------------------------------------------------------------------------------- KPIs
def test_kpis_by_hand_built():
    scores = pd.DataFrame(
        {
            "tier": ["gold", "gold", "bronze", "platinum"],
            "p_churn": [0.2, 0.4, 0.9, 0.1],
            "clv": [10.0, 30.0, 0.0, 60.0],
        },
        index=["a", "b", "c", "d"],
    )
    churned = pd.Series([0, 1, 1, 0], index=scores.index)
    feedback = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "c", "d"],
            "ts": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-01", "2024-01-01", "2024-01-01"]),
            "score": [2, 10, 9, 5, 7],
        }
    )
    out = segments.kpis_by(
        scores, "tier", churned=churned, revenue=pd.Series([1.0, 1.0, 2.0, 4.0], index=scores.index), feedback=feedback
    )
    assert out.index.tolist() == ["platinum", "gold", "bronze"]  # best tier first
    gold = out.loc["gold"]
    assert gold["users"] == 2 and gold["churn_rate"] == pytest.approx(0.3)
    assert gold["retention_rate"] == pytest.approx(0.7) and gold["observed_churn_rate"] == pytest.approx(0.5)
    assert gold["avg_clv"] == pytest.approx(20.0) and gold["clv_share"] == pytest.approx(0.4)
    assert gold["revenue_share"] == pytest.approx(0.25)
    assert gold["nps"] == pytest.approx(100.0)  # latest scores 10 and 9: both promoters
    assert out.loc["bronze", "nps"] == pytest.approx(-100.0) and out.loc["platinum", "nps"] == 0.0
    with pytest.raises(ValueError, match="grouping column"):
        segments.kpis_by(scores, "cohort")
