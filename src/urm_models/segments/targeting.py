"""Retention targeting under a budget."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
