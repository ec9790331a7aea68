"""Segments and tiers: RFM scores and named segments, value tiers, retention targeting.

Rule-based parts of the relationship table; they take and return DataFrames and know no model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["rfm_scores", "SEGMENT_RULES", "rfm_segments", "value_tiers", "tier_report",
           "DEFAULT_TIER_SHARES", "TIERS", "STAGES", "lifecycle_stages", "PLAYBOOK",
           "recommend_actions", "kpis_by", "target_list", "transitions"]

#: Named segments from R (recency score, 5 = most recent) and FM (mean of the frequency and
#: monetary scores among repeat buyers, rounded up; 0 for one-time buyers). The first matching
#: rule wins; the default table covers all 30 (R, FM) cells. Override with your own table (same
#: columns) or a CSV file of it.
SEGMENT_RULES = pd.DataFrame([
    ("Champions", 4, 5, 4, 5),
    ("Loyal", 3, 5, 3, 5),
    ("Potential loyalists", 4, 5, 2, 2),
    ("Promising", 4, 5, 1, 1),
    ("New", 4, 5, 0, 0),
    ("Need attention", 3, 3, 1, 2),
    ("About to sleep", 3, 3, 0, 0),
    ("Cannot lose", 1, 2, 4, 5),
    ("At risk", 1, 2, 2, 3),
    ("Hibernating", 2, 2, 0, 1),
    ("Lost", 1, 1, 0, 1),
], columns=["segment", "r_min", "r_max", "fm_min", "fm_max"])


def _quintile(values: pd.Series) -> pd.Series:
    """Scores 1..5 by quintile of rank, higher values higher. Tied users share a score (the
    one of their lowest rank), so the scores depend on the values only, not on row order."""
    rank_min = values.rank(method="min").to_numpy()
    n = len(values)
    score = 1 + np.floor(5 * (rank_min - 1) / max(n, 1)).astype("int64")
    return pd.Series(np.clip(score, 1, 5), index=values.index)


def rfm_scores(rfm: pd.DataFrame, lapse_after: float | None = None) -> pd.DataFrame:
    """R, F, M scores and FM = ceil((F + M) / 2).

    R (1-5) is the quintile of the time since the last purchase (``time_since_last`` if present,
    else ``T - recency`` of a BTYD summary) over all users: the most recent fifth scores 5. With
    ``lapse_after`` (in the table's time unit), a user without a purchase for that long scores
    at most R = 3, so the recent segments (Champions, Potential loyalists, Promising, New) never
    hold a lapsed user.

    F and M (1-5) are quintiles among *repeat* buyers only; one-time buyers score F = M = FM = 0,
    a cell of their own. Scored over everyone, the many one-time buyers of a typical shop (60% on
    CDNOW) would tie at the bottom and push every repeat buyer to F >= 4.
    """
    for c in ("frequency", "monetary"):
        if c not in rfm.columns:
            raise ValueError(f"rfm lacks column {c!r} (use features.rfm_summary or activity_features)")
    if "time_since_last" in rfm.columns:
        since = rfm["time_since_last"].astype(float)
    elif {"T", "recency"} <= set(rfm.columns):
        since = rfm["T"].astype(float) - rfm["recency"].astype(float)
    else:
        raise ValueError("rfm needs time_since_last, or T and recency")
    out = pd.DataFrame(index=rfm.index)
    out["R"] = _quintile(-since)  # less time since the last purchase = more recent = higher
    if lapse_after is not None:
        out.loc[since.to_numpy() >= lapse_after, "R"] = out["R"].clip(upper=3)
    repeat = rfm["frequency"].to_numpy() > 0
    for col, score in (("frequency", "F"), ("monetary", "M")):
        out[score] = np.int64(0)
        if repeat.any():
            out.loc[repeat, score] = _quintile(rfm.loc[repeat, col].astype(float))
    out["FM"] = np.ceil((out["F"] + out["M"]) / 2).astype("int64")
    return out


def _user_table(table, default: pd.DataFrame, what: str) -> pd.DataFrame:
    """A rule table given as None (the default), a DataFrame or a CSV path, with the default's
    columns (in its order) required."""
    if table is None:
        return default
    if isinstance(table, (str, Path)):
        table = pd.read_csv(table)
    need = list(default.columns)
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it needs {need}")
    return table[need]


def _rules(rules) -> pd.DataFrame:
    if rules is None:
        return SEGMENT_RULES
    rules = _user_table(rules, SEGMENT_RULES, "the segment rule table")
    grid = [(r, fm) for r in range(1, 6) for fm in range(0, 6)]
    uncovered = [(r, fm) for r, fm in grid if not ((rules.r_min <= r) & (r <= rules.r_max)
                                                   & (rules.fm_min <= fm) & (fm <= rules.fm_max)).any()]
    if uncovered:
        raise ValueError(f"segment rules leave (R, FM) cells {uncovered} without a segment "
                         f"(FM = 0 holds the one-time buyers)")
    return rules


def rfm_segments(rfm: pd.DataFrame, rules=None, lapse_after: float | None = None) -> pd.DataFrame:
    """RFM scores (:func:`rfm_scores`) plus the named ``segment`` of each user (first matching
    rule)."""
    table = _rules(rules)
    s = rfm_scores(rfm, lapse_after=lapse_after)
    seg = pd.Series(pd.NA, index=s.index, dtype=object)
    for row in table.itertuples(index=False):
        hit = seg.isna() & s["R"].between(row.r_min, row.r_max) & s["FM"].between(row.fm_min, row.fm_max)
        seg[hit] = row.segment
    s["segment"] = seg.astype(str)
    return s


DEFAULT_TIER_SHARES = {"platinum": 0.10, "gold": 0.20, "silver": 0.30, "bronze": 0.40}
#: Tiers best first (the order of ``DEFAULT_TIER_SHARES``).
TIERS = list(DEFAULT_TIER_SHARES)


def value_tiers(value: pd.Series, shares: dict | None = None, amounts: dict | None = None) -> pd.Series:
    """Tier per user from predicted value (e.g. CLV), best tier first.

    ``shares`` (default 10/20/30/40%): the top share of users by value, then the next, ...;
    counts are cumulative roundings, so each tier is within one user of its share. Ties are
    broken by the index. ``amounts`` instead: ``{tier: minimum value}``, tested from the
    highest minimum down; users below every minimum get the last tier.
    """
    if shares is not None and amounts is not None:
        raise ValueError("give shares or amounts, not both")
    v = value.astype(float)
    if v.isna().any():
        raise ValueError(f"value has {int(v.isna().sum())} missing rows")
    if amounts is not None:
        ordered = sorted(amounts.items(), key=lambda kv: -kv[1])
        out = pd.Series(ordered[-1][0], index=v.index, dtype=object)
        assigned = pd.Series(False, index=v.index)
        for tier, minimum in ordered:
            hit = ~assigned & (v >= minimum)
            out[hit] = tier
            assigned |= hit
        return out.rename("tier")
    shares = dict(shares or DEFAULT_TIER_SHARES)
    total = sum(shares.values())
    if not np.isclose(total, 1.0):
        raise ValueError(f"tier shares must add up to 1, they add up to {total}")
    n = len(v)
    bounds = np.round(np.cumsum(list(shares.values())) * n).astype(int)
    bounds[-1] = n
    neg = -v.to_numpy()
    order = np.argsort(neg, kind="stable")
    ranked = neg[order]
    for b in bounds[:-1]:
        # users tied across a tier boundary are ordered by id, so that the split never depends
        # on row order (ties elsewhere land in one tier whatever their order)
        if 0 < b < n and ranked[b - 1] == ranked[b]:
            lo, hi = np.searchsorted(ranked, ranked[b], "left"), np.searchsorted(ranked, ranked[b], "right")
            block = order[lo:hi]
            order[lo:hi] = block[v.index[block].argsort()]
    labels = np.empty(n, dtype=object)
    start = 0
    for tier, end in zip(shares, bounds):
        labels[order[start:end]] = tier
        start = end
    return pd.Series(labels, index=v.index, name="tier")


def tier_report(tiers: pd.Series, value: pd.Series) -> pd.DataFrame:
    """Users and predicted value per tier, with each tier's share of both."""
    df = pd.DataFrame({"tier": tiers, "value": value.astype(float)})
    out = df.groupby("tier", sort=False).agg(users=("value", "size"), value=("value", "sum"))
    out["share_of_users"] = out["users"] / out["users"].sum()
    out["share_of_value"] = out["value"] / out["value"].sum()
    return out.reindex([t for t in TIERS if t in out.index] + [t for t in out.index if t not in TIERS])


def target_list(scores: pd.DataFrame, budget: float, cost_per_contact: float,
                success_rate: float) -> pd.DataFrame:
    """Whom to contact to maximise the expected value saved within ``budget``.

    Each contact costs ``cost_per_contact`` and saves a user with probability ``success_rate``;
    saving user i is worth their ``value_at_risk`` (= P(churn) x CLV; computed from ``p_churn``
    and ``clv`` when the column is absent). With one cost for everyone the optimum is the users
    with the highest value at risk, as many as the budget pays for, keeping only contacts whose
    expected saving exceeds their cost.

    Returns the chosen users (highest first) with ``expected_saving`` and ``net``; the totals
    are in ``.attrs``: ``n_contacted``, ``spend``, ``expected_saving``, ``expected_return``.
    """
    if cost_per_contact <= 0 or budget < 0 or not 0 <= success_rate <= 1:
        raise ValueError("need cost_per_contact > 0, budget >= 0 and success_rate in [0, 1]")
    if "value_at_risk" in scores.columns:
        var = scores["value_at_risk"].astype(float)
    elif {"p_churn", "clv"} <= set(scores.columns):
        var = scores["p_churn"].astype(float) * scores["clv"].astype(float)
    else:
        raise ValueError("scores need value_at_risk, or p_churn and clv")
    saving = success_rate * var
    order = saving.to_frame("s").assign(_id=saving.index).sort_values(
        ["s", "_id"], ascending=[False, True], kind="mergesort").index
    k_budget = int(np.floor(budget / cost_per_contact + 1e-12))
    chosen = [u for u in order[:k_budget] if saving[u] > cost_per_contact]
    out = pd.DataFrame({"value_at_risk": var[chosen], "expected_saving": saving[chosen]})
    out["net"] = out["expected_saving"] - cost_per_contact
    spend = len(chosen) * cost_per_contact
    out.attrs.update(n_contacted=len(chosen), spend=float(spend),
                     expected_saving=float(out["expected_saving"].sum()),
                     expected_return=float(out["expected_saving"].sum() - spend))
    return out


def transitions(before: pd.Series, after: pd.Series, order: list | None = None) -> dict:
    """How users moved between two labellings (tiers or segments) at two as-of dates.

    Returns ``counts`` (rows: label before, columns: label after; users present at only one
    date appear under ``"(none)"``, so the matrix sums to the number of users in either),
    ``shares`` (each row divided by its total), and, when ``order`` lists the labels best
    first, ``upgraded`` / ``downgraded`` (user ids) and ``stability`` (share of users present at
    both dates whose label did not change).
    """
    users = before.index.union(after.index)
    b = before.reindex(users).astype(object).where(before.reindex(users).notna(), "(none)")
    a = after.reindex(users).astype(object).where(after.reindex(users).notna(), "(none)")
    labels = list(order) if order is not None else sorted(set(b) | set(a) - {"(none)"})
    labels = [x for x in labels if x != "(none)"]
    extra = sorted((set(b) | set(a)) - set(labels) - {"(none)"})
    axis = labels + extra + (["(none)"] if "(none)" in set(b) | set(a) else [])
    counts = pd.crosstab(pd.Categorical(b, categories=axis), pd.Categorical(a, categories=axis),
                         dropna=False, rownames=["before"], colnames=["after"])
    shares = counts.div(counts.sum(axis=1).where(counts.sum(axis=1) > 0), axis=0)
    both = (b != "(none)") & (a != "(none)")
    out = {"counts": counts, "shares": shares,
           "stability": float((b[both] == a[both]).mean()) if both.any() else float("nan")}
    if order is not None:
        rank = {lab: i for i, lab in enumerate(order)}
        rb, ra = b[both].map(rank), a[both].map(rank)
        known = rb.notna() & ra.notna()
        out["upgraded"] = list(rb.index[known & (ra < rb)])
        out["downgraded"] = list(rb.index[known & (ra > rb)])
    return out


# ------------------------------------------------------------------------------- lifecycle
#: Lifecycle stages, in the order their rules are tested (the first that applies wins).
STAGES = ["lapsed", "new", "reactivated", "at risk", "active"]


def _series(values, index, name) -> pd.Series | None:
    if values is None:
        return None
    out = pd.Series(values, index=index) if not isinstance(values, pd.Series) else values.reindex(index)
    if out.isna().any():
        raise ValueError(f"{name} has {int(out.isna().sum())} missing rows")
    return out


def lifecycle_stages(age: pd.Series, *, since_last=None, gap_before_last=None, lapsed=None,
                     risk=None, period: float = 13, lapse_after: float = 26,
                     at_risk: float = 0.5) -> pd.Series:
    """Lifecycle stage per user; all times in one unit (that of ``age``).

    Rules, first match wins:

    - **lapsed**: ``lapsed`` is true (an observed churn, e.g. a cancelled contract), or no
      purchase for ``lapse_after`` or more (``since_last >= lapse_after``);
    - **new**: the first purchase (or the contract start) lies within the last ``period``
      (``age < period``);
    - **reactivated**: bought within the last ``period`` after a gap of ``lapse_after`` or more
      (``gap_before_last``: the wait before the latest purchase);
    - **at risk**: the churn risk (``risk``: P(churn) or 1 - P(alive)) is ``at_risk`` or more;
    - **active**: everyone else.

    Parameters
    ----------
    age : time since the first purchase (BTYD ``T``) or the contract's tenure, indexed by user
    since_last, gap_before_last, lapsed, risk : per-user Series (or arrays in ``age``'s order);
        any of them may be omitted, and its rule is then skipped
    """
    if not 0 < period <= lapse_after:
        raise ValueError(f"need 0 < period <= lapse_after, got period={period}, lapse_after={lapse_after}")
    if not 0 <= at_risk <= 1:
        raise ValueError(f"at_risk must be a probability, got {at_risk}")
    idx = age.index
    age = _series(age, idx, "age").astype(float)
    since = _series(since_last, idx, "since_last")
    gap = _series(gap_before_last, idx, "gap_before_last")
    gone = _series(lapsed, idx, "lapsed")
    risk = _series(risk, idx, "risk")
    out = np.full(len(idx), "active", dtype=object)
    decided = np.zeros(len(idx), bool)

    def assign(mask, stage):
        nonlocal decided
        hit = np.asarray(mask, bool) & ~decided
        out[hit] = stage
        decided |= hit

    lapsed_mask = np.zeros(len(idx), bool)
    if gone is not None:
        lapsed_mask |= gone.astype(bool).to_numpy()
    if since is not None:
        lapsed_mask |= since.to_numpy(float) >= lapse_after
    assign(lapsed_mask, "lapsed")
    assign(age.to_numpy() < period, "new")
    if since is not None and gap is not None:
        assign((since.to_numpy(float) < period) & (gap.to_numpy(float) >= lapse_after), "reactivated")
    if risk is not None:
        assign(risk.to_numpy(float) >= at_risk, "at risk")
    return pd.Series(out, index=idx, name="lifecycle_stage")


# ---------------------------------------------------------------------------------- actions
#: Default playbook: tier x lifecycle stage -> action, channel, priority (1 = first). The
#: treatment follows the tier's value and the stage's need: personal service for platinum,
#: rewards for loyal gold, onboarding education for every new user, win-back spending scaled
#: to the value a user can bring back (none for lapsed bronze).
PLAYBOOK = pd.DataFrame([
    ("platinum", "new", "personal welcome and onboarding call", "account manager", 1),
    ("platinum", "active", "VIP benefits and early access", "account manager", 2),
    ("platinum", "at risk", "personal outreach to resolve issues", "phone", 1),
    ("platinum", "reactivated", "thank-you call and VIP re-onboarding", "phone", 2),
    ("platinum", "lapsed", "personal win-back offer", "phone", 1),
    ("gold", "new", "onboarding education series", "email", 2),
    ("gold", "active", "loyalty reward", "email", 3),
    ("gold", "at risk", "retention offer", "email and sms", 2),
    ("gold", "reactivated", "welcome-back loyalty bonus", "email", 3),
    ("gold", "lapsed", "win-back offer", "email", 2),
    ("silver", "new", "onboarding education series", "email", 3),
    ("silver", "active", "cross-sell recommendations", "email", 4),
    ("silver", "at risk", "re-engagement reminder with a small incentive", "email", 3),
    ("silver", "reactivated", "welcome-back message", "email", 4),
    ("silver", "lapsed", "low-cost win-back email", "email", 4),
    ("bronze", "new", "onboarding education series", "email", 3),
    ("bronze", "active", "newsletter and self-service content", "email", 5),
    ("bronze", "at risk", "automated re-engagement email", "email", 4),
    ("bronze", "reactivated", "automated welcome-back email", "email", 5),
    ("bronze", "lapsed", "none", "none", 5),
], columns=["tier", "lifecycle_stage", "action", "channel", "priority"])


def _playbook(playbook) -> pd.DataFrame:
    if playbook is None:
        return PLAYBOOK
    playbook = _user_table(playbook, PLAYBOOK, "the playbook")
    dup = playbook.duplicated(["tier", "lifecycle_stage"])
    if dup.any():
        pairs = playbook.loc[dup, ["tier", "lifecycle_stage"]].drop_duplicates().values.tolist()
        raise ValueError(f"playbook lists {int(dup.sum())} (tier, stage) pairs twice: {pairs[:5]}")
    return playbook


def recommend_actions(tiers: pd.Series, stages: pd.Series, playbook=None) -> pd.DataFrame:
    """Action, channel and priority per user from the playbook (a DataFrame or a CSV file with
    columns ``tier, lifecycle_stage, action, channel, priority``; default :data:`PLAYBOOK`).
    A (tier, stage) pair that the playbook does not cover is an error naming the pairs."""
    book = _playbook(playbook)
    df = pd.DataFrame({"tier": tiers, "lifecycle_stage": stages.reindex(tiers.index)})
    out = df.merge(book, on=["tier", "lifecycle_stage"], how="left", validate="many_to_one")
    out.index = tiers.index
    missing = out["action"].isna()
    if missing.any():
        pairs = df.loc[missing.to_numpy()].value_counts().head(5)
        raise ValueError(f"the playbook has no action for {int(missing.sum())} users; uncovered "
                         f"(tier, stage) pairs: {pairs.to_dict()}")
    return out[["action", "channel", "priority"]].rename(columns={"action": "recommended_action"})


# --------------------------------------------------------------------------------- KPIs
def kpis_by(scores: pd.DataFrame, by: str, *, churned=None, revenue=None,
            feedback: pd.DataFrame | None = None) -> pd.DataFrame:
    """Relationship KPIs per group (``by``: a column of ``scores``, e.g. tier or cohort).

    Columns: ``users``, ``share_of_users``; predicted ``churn_rate`` (mean ``p_churn``) and
    ``retention_rate`` (1 - it); ``avg_clv``, ``clv_share``; with ``churned`` (observed 0/1
    per user, e.g. the holdout outcome) the observed ``observed_churn_rate`` and
    ``observed_retention_rate``; with ``revenue`` (per user) ``revenue_share``; with
    ``feedback`` (``user_id, ts, score``) the ``nps`` of each group from each user's latest score
    and ``nps_responses``.
    """
    if by not in scores.columns:
        raise ValueError(f"scores lack the grouping column {by!r}")
    df = scores[[by]].copy()
    for col in ("p_churn", "clv"):
        if col in scores.columns:
            df[col] = scores[col].astype(float)
    if churned is not None:
        df["churned"] = _series(churned, scores.index, "churned").astype(float)
    if revenue is not None:
        df["revenue"] = _series(revenue, scores.index, "revenue").astype(float)
    g = df.groupby(by, sort=False, observed=True)
    out = pd.DataFrame({"users": g.size()})
    out["share_of_users"] = out["users"] / out["users"].sum()
    if "p_churn" in df:
        out["churn_rate"] = g["p_churn"].mean()
        out["retention_rate"] = 1.0 - out["churn_rate"]
    if "churned" in df:
        out["observed_churn_rate"] = g["churned"].mean()
        out["observed_retention_rate"] = 1.0 - out["observed_churn_rate"]
    if "clv" in df:
        out["avg_clv"] = g["clv"].mean()
        out["clv_share"] = g["clv"].sum() / df["clv"].sum()
    if "revenue" in df:
        out["revenue_share"] = g["revenue"].sum() / df["revenue"].sum()
    if feedback is not None:
        from ..features.cohorts import nps

        latest = (feedback.sort_values("ts").groupby("user_id").tail(1).set_index("user_id")["score"])
        joined = df[[by]].join(latest.rename("score"), how="inner")
        out["nps"] = pd.Series({k: nps(t) for k, t in joined.groupby(by, observed=True)}, dtype=float)
        out["nps_responses"] = joined.groupby(by, observed=True).size()
    if isinstance(scores[by].dtype, pd.CategoricalDtype):
        out = out.reindex([c for c in scores[by].cat.categories if c in out.index])
    elif by == "tier":
        out = out.reindex([t for t in TIERS if t in out.index] + [t for t in out.index if t not in TIERS])
    elif by == "lifecycle_stage":
        out = out.reindex([t for t in STAGES if t in out.index] + [t for t in out.index if t not in STAGES])
    else:
        out = out.sort_index()
    return out
