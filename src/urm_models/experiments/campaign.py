"""A campaign from a company's own data: an assignment file joined to the data set's transactions.

For each send day ``d`` (users sent on the same day share it), the features are what the
package computes at the cut-off ``d - 1`` (nothing on or after the send day reaches them):
the activity features (``features.activity_features``: RFM, trailing windows, gaps, trend), the
first purchase's amount, and, with ``btyd=True``, the scores of a Pareto/NBD and Gamma-Gamma
fitted on every user's history up to ``d - 1`` (``models.CLVScorer``: P(alive), P(no
purchase in the window), expected purchases and CLV over the next ``clv_horizon`` months;
a population model, so users sent on an earlier day count with their history up to ``d - 1``).
The outcomes count the purchase days and the spend in the ``window`` periods from ``d`` on
(``features.campaign.window_outcomes``), and ``converted`` = any purchase there. A user sent a
campaign before their first purchase has no history: ``known`` is 0 and the history features
are missing (the boosted models take missing values; the analysis fills them with the mean and
a missing-value indicator).
"""

from __future__ import annotations

import pandas as pd

from .. import features
from ..campaigns import Campaign, assignments_from_raw
from ..features.campaign import window_days, window_outcomes
from ..reading import raw_from_frame
from ..validation import DataValidationError

OUTCOMES = ("purchases", "converted", "spend")
UNIT_WORDS = {"D": "days", "W": "weeks", "M": "months"}


def _validated(assignments: pd.DataFrame, control, arms) -> tuple[pd.DataFrame, str, tuple]:
    meta = assignments.attrs.get("campaign")
    if meta is not None and (control is None or control == meta["control"]):
        return assignments, meta["control"], tuple(meta["arms"])
    if control is None:
        raise ValueError("name the control arm (control=) or load the file with campaigns.load_assignments")
    checked = assignments_from_raw(raw_from_frame(assignments, "assignments"), control=control, arms=arms)
    return checked, checked.attrs["campaign"]["control"], tuple(checked.attrs["campaign"]["arms"])


def from_transactions(
    transactions: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    window: float,
    freq: str = "W",
    control=None,
    arms=None,
    btyd: bool = True,
    clv_horizon: int = 12,
    currency: str = "",
    name: str = "campaign",
) -> Campaign:
    """The :class:`~urm_models.campaigns.Campaign` of an assignment file (``user_id, arm,
    sent_at``: :func:`urm_models.campaigns.load_assignments`) on a data set's ``transactions``.

    ``window``: the outcome window in ``freq`` periods from the send day. Every send's window
    must lie inside the data (up to the last purchase day of ``transactions``): a later send is
    an error that names the last day a send can have, not an outcome silently cut short.
    Outcomes: ``purchases``, ``converted`` (0/1), ``spend`` (in ``currency``).
    """
    asg, control, arm_order = _validated(assignments, control, arms)
    days = window_days(window, freq)
    tx_days = pd.to_datetime(transactions["ts"]).dt.normalize()
    if tx_days.empty:
        raise ValueError("transactions are empty")
    last = tx_days.max()
    send = pd.to_datetime(asg["sent_at"]).dt.normalize()
    late = send + pd.Timedelta(days=days - 1) > last
    if late.any():
        latest = last - pd.Timedelta(days=days - 1)
        raise DataValidationError(
            f"assignments: column sent_at: {int(late.sum()):,} of {len(asg):,} users were sent the campaign after "
            f"{latest:%Y-%m-%d}, so their {window:g} {UNIT_WORDS[freq]} outcome window ends after the last purchase "
            f"in the transactions ({last:%Y-%m-%d}): their outcomes are not observed yet. Pass a shorter window= "
            "or leave those sends out",
            source="assignments",
            failures=pd.DataFrame(
                [{"column": "sent_at", "check": "outcome_window_observed", "n_rows": int(late.sum())}]
            ),
        )
    parts = []
    spec = {"freq": freq, "window": float(window), "btyd": bool(btyd), "clv_horizon": int(clv_horizon)}
    for day, group in asg.assign(_day=send).groupby("_day", sort=True):
        cutoff = day - pd.Timedelta(days=1)
        users = pd.Index(group["user_id"].astype(str), name="user_id")
        X = features_at(transactions, cutoff, users, **spec)
        out = window_outcomes(transactions, day, window, freq).reindex(users)
        part = pd.DataFrame(
            {
                "user_id": users,
                "arm": group["arm"].astype(str).to_numpy(),
                "sent_at": group["sent_at"].to_numpy(),
                "purchases": out["purchases"].fillna(0).astype("int64").to_numpy(),
                "converted": (out["purchases"].fillna(0) > 0).astype("int64").to_numpy(),
                "spend": out["spend"].fillna(0.0).to_numpy(),
            }
        )
        parts.append(pd.concat([part.reset_index(drop=True), X.reset_index(drop=True)], axis=1))
    data = pd.concat(parts, ignore_index=True)
    feats = tuple(c for c in data.columns if c not in ("user_id", "arm", "sent_at", *OUTCOMES))
    words = f"{window:g} {UNIT_WORDS[freq][:-1] if window == 1 else UNIT_WORDS[freq]}"
    camp = Campaign(
        data=data,
        control=control,
        arms=arm_order,
        outcomes=OUTCOMES,
        features=feats,
        name=name,
        window=f"in the {words} from the send day",
        units={"spend": currency or "amount", "purchases": "purchase days per user"},
        source="assignments",
        features_spec=spec,
    )
    return camp


def features_at(
    transactions, cutoff, users=None, *, freq: str = "W", window: float = 4.0, btyd: bool = True, clv_horizon: int = 12
) -> pd.DataFrame:
    """The campaign features of ``users`` (default: everyone with a purchase up to ``cutoff``)
    from the purchases on or before ``cutoff``, indexed by ``user_id``: what
    :func:`from_transactions` computes the day before a send and what scoring computes at its
    date for an uplift model trained on them (the same code, so the same columns)."""
    act = features.activity_features(transactions, cutoff, freq=freq)
    users = act.index if users is None else pd.Index(pd.Index(users).astype(str), name="user_id")
    X = act.reindex(users)
    X["known"] = users.isin(act.index).astype("int64")
    X["log_first_amount"] = features.first_purchase(transactions, cutoff)["log_first_amount"].reindex(users)
    if btyd:
        X = X.join(_btyd_scores(transactions, pd.Timestamp(cutoff), freq, window, clv_horizon).reindex(users))
    return X


def _btyd_scores(transactions, cutoff, freq: str, window: float, clv_horizon: int) -> pd.DataFrame:
    """P(alive), P(no purchase in the window), expected purchases and CLV over ``clv_horizon``
    months of a Pareto/NBD and Gamma-Gamma fitted on the history up to ``cutoff``."""
    from ..models import CLVScorer, ConvergenceError, GammaGamma, ParetoNBD

    rfm = features.rfm_summary(transactions, cutoff, freq=freq)
    try:
        purchase = ParetoNBD().fit(rfm)
        spend = GammaGamma().fit(rfm)
    except (ConvergenceError, ValueError) as exc:
        raise ValueError(
            f"the BTYD features at {cutoff:%Y-%m-%d} cannot be fitted ({exc}); pass btyd=False to "
            "build the campaign from the activity features alone"
        ) from None
    scores = CLVScorer(purchase, spend, rfm_freq=freq, horizon=clv_horizon, freq="M", churn_window=window).predict(rfm)
    scores = scores.rename(
        columns={
            "expected_purchases": "btyd_expected_purchases",
            "p_churn": "btyd_p_no_purchase",
            "expected_remaining_lifetime": "btyd_remaining_lifetime",
        }
    )
    return scores[["p_alive", "btyd_p_no_purchase", "btyd_expected_purchases", "clv"]].astype(float)


def oracle_effects(truth: pd.DataFrame, outcome: str, arm: str) -> pd.Series:
    """The true effect of ``arm`` on ``outcome`` per user of a simulated campaign
    (:func:`urm_models.simulate.simulate_campaign`): the ranking an uplift model aims at."""
    col = f"effect_{outcome}[{arm}]"
    if col not in truth:
        raise ValueError(f"the truth table has no {col!r}")
    return truth[col].astype(float)


__all__ = ["from_transactions", "features_at", "oracle_effects", "OUTCOMES"]
