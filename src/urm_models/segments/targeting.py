"""Retention targeting under a budget: by measured effects where a campaign measured them, by
an assumed success rate (labelled as such) where none did."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: what the table's ``expected_incremental_value`` is (a measured campaign's uplift model)
MEASURED = "expected_incremental_value"


def target_list(
    scores: pd.DataFrame, budget: float, cost_per_contact: float, success_rate: float | None = None
) -> pd.DataFrame:
    """Whom to contact to maximise the expected value a campaign adds within ``budget``.

    Each contact costs ``cost_per_contact``. What a contact adds for user i is, in order:

    * **measured**: the relationship table's ``expected_incremental_value`` (the effect of the
      user's recommended arm on the outcome times its value, from a randomised campaign's uplift
      model: ``urm-uplift``), where the table has it; users whose recommended arm is the control
      (no contact) add nothing;
    * **assumed**: ``success_rate x value_at_risk`` (a contact saves a churner with the same
      probability for everyone; ``value_at_risk`` is the table's: the value lost to dropout over
      the CLV horizon, from the CLV model; P(churn) x CLV, from ``p_churn`` and ``clv``, only for
      scores without it), only when ``success_rate`` is given and nothing was measured.

    The users with the highest expected addition, as many as the budget pays for, keeping only
    contacts that add more than they cost. Returns the chosen users (highest first) with
    ``expected_saving``, ``net`` (and ``recommended_arm`` when measured); the totals and the
    ``basis`` (``"measured: ..."`` or ``"assumed: ..."``) are in ``.attrs``: ``n_contacted``,
    ``spend``, ``expected_saving``, ``expected_return``, ``basis``.
    """
    if cost_per_contact <= 0 or budget < 0:
        raise ValueError("need cost_per_contact > 0 and budget >= 0")
    measured = MEASURED in scores.columns and scores[MEASURED].notna().any()
    extra = {}
    if measured:
        saving = scores[MEASURED].astype(float).fillna(0.0)
        var = (
            scores["value_at_risk"].astype(float)
            if "value_at_risk" in scores
            else pd.Series(np.nan, index=scores.index)
        )
        versions = (
            scores["model_versions"].dropna().iloc[0]
            if "model_versions" in scores and scores["model_versions"].notna().any()
            else ""
        )
        basis = f"measured: the uplift model's expected incremental value per user ({versions})".replace(" ()", "")
        if "recommended_arm" in scores:
            extra["recommended_arm"] = scores["recommended_arm"]
    else:
        if success_rate is None:
            raise ValueError(
                "the scores hold no measured effect (expected_incremental_value from a campaign's uplift "
                "model, notebook 07): pass success_rate= to assume one, labelled as an assumption"
            )
        if not 0 <= success_rate <= 1:
            raise ValueError(f"success_rate must lie in [0, 1], got {success_rate}")
        if "value_at_risk" in scores.columns:
            var = scores["value_at_risk"].astype(float)
        elif {"p_churn", "clv"} <= set(scores.columns):
            var = scores["p_churn"].astype(float) * scores["clv"].astype(float)
        else:
            raise ValueError("scores need value_at_risk, or p_churn and clv")
        saving = success_rate * var
        basis = (
            f"assumed: a contact saves {success_rate:.0%} of every user's value at risk (not measured; a "
            "randomised campaign measures it, notebook 07)"
        )
    order = (
        saving.to_frame("s")
        .assign(_id=saving.index)
        .sort_values(["s", "_id"], ascending=[False, True], kind="mergesort")
        .index
    )
    k_budget = int(np.floor(budget / cost_per_contact + 1e-12))
    chosen = [u for u in order[:k_budget] if saving[u] > cost_per_contact]
    out = pd.DataFrame({"value_at_risk": var.reindex(chosen), "expected_saving": saving[chosen]})
    for name, col in extra.items():
        out[name] = col.reindex(chosen)
    out["net"] = out["expected_saving"] - cost_per_contact
    spend = len(chosen) * cost_per_contact
    out.attrs.update(
        n_contacted=len(chosen),
        spend=float(spend),
        expected_saving=float(out["expected_saving"].sum()),
        expected_return=float(out["expected_saving"].sum() - spend),
        basis=basis,
    )
    return out
