"""The action playbook: tier x lifecycle stage -> action, channel, priority."""

from __future__ import annotations

import pandas as pd

from ._tables import _user_table


#: Default playbook: tier x lifecycle stage -> action, channel, priority (1 = first). The
#: treatment follows the tier's value and the stage's need: personal service for platinum,
#: rewards for loyal gold, onboarding education for every new user, win-back spending scaled
#: to the value a user can bring back (none for lapsed bronze).
PLAYBOOK = pd.DataFrame(
    [
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
    ],
    columns=["tier", "lifecycle_stage", "action", "channel", "priority"],
)


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
        raise ValueError(
            f"the playbook has no action for {int(missing.sum())} users; uncovered "
            f"(tier, stage) pairs: {pairs.to_dict()}"
        )
    return out[["action", "channel", "priority"]].rename(columns={"action": "recommended_action"})
