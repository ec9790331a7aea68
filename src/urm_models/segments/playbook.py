"""The action playbook: tier x lifecycle stage -> action, channel, priority."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._tables import rule_table

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


def playbook_table(playbook) -> pd.DataFrame:
    """The playbook (default :data:`PLAYBOOK`; a DataFrame or CSV file of the same columns),
    refused when it lists a (tier, stage) pair twice."""
    if playbook is None:
        return PLAYBOOK
    playbook = rule_table(playbook, PLAYBOOK, "the playbook")
    dup = playbook.duplicated(["tier", "lifecycle_stage"])
    if dup.any():
        pairs = playbook.loc[dup, ["tier", "lifecycle_stage"]].drop_duplicates().values.tolist()
        raise ValueError(f"playbook lists {int(dup.sum())} (tier, stage) pairs twice: {pairs[:5]}")
    return playbook


def recommend_actions(tiers: pd.Series, stages: pd.Series, playbook=None) -> pd.DataFrame:
    """Action, channel and priority per user from the playbook (a DataFrame or a CSV file with
    columns ``tier, lifecycle_stage, action, channel, priority``; default :data:`PLAYBOOK`).
    A (tier, stage) pair that the playbook does not cover is an error naming the pairs."""
    book = playbook_table(playbook).reset_index(drop=True)
    stages = stages.reindex(tiers.index)
    t_codes, t_names = pd.factorize(tiers.to_numpy(object))
    s_codes, s_names = pd.factorize(stages.to_numpy(object))
    # the playbook's row of each (tier, stage) pair present: a small grid, then one lookup per user
    row = {(t, st): i for i, (t, st) in enumerate(zip(book["tier"], book["lifecycle_stage"], strict=True))}
    grid = np.array([[row.get((t, st), -1) for st in s_names] for t in t_names], dtype=np.int64).reshape(
        len(t_names), len(s_names)
    )
    missing = (t_codes < 0) | (s_codes < 0)
    at = np.where(missing, -1, grid[np.maximum(t_codes, 0), np.maximum(s_codes, 0)] if len(grid) else -1)
    if (at < 0).any():
        miss = at < 0
        pairs = pd.DataFrame({"tier": tiers.to_numpy(object)[miss], "lifecycle_stage": stages.to_numpy(object)[miss]})
        raise ValueError(
            f"the playbook has no action for {int(miss.sum())} users; uncovered "
            f"(tier, stage) pairs: {pairs.value_counts().head(5).to_dict()}"
        )
    out = book.iloc[at].set_axis(tiers.index)
    return out[["action", "channel", "priority"]].rename(columns={"action": "recommended_action"})
