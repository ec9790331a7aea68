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
campaign before their first purchase (a new sign-up) has no history: ``known`` is 0 and the
history features are missing (the boosted models take missing values; the analysis fills them
with the mean and a missing-value indicator). Every feature is a float (``known`` an integer),
whoever the users are, so that a model trained with new sign-ups and one scored without them
see the same types.

:func:`check_campaign` runs every check of a campaign on transactions without computing or
fitting anything: the assignment file's contract (:mod:`urm_models.data.campaign_files`), the window, sends
whose window is not yet in the data or that come before any purchase, and ids that match no
customer of the transactions; :func:`from_transactions` runs it first.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .. import features
from ..core.errors import ConvergenceError, DataValidationError
from ..core.units import FREQ, UNIT_DAYS
from ..data.campaign_files import Campaign, assignments_from_raw, load_assignments
from ..data.reading import raw_from_frame
from ..features.campaign import window_days, window_outcomes
from ..models import CLVScorer, GammaGamma, ParetoNBD

OUTCOMES = ("purchases", "converted", "spend")
UNIT_WORDS = {"D": "days", "W": "weeks", "M": "months"}


def _validated(assignments: pd.DataFrame, control, arms) -> tuple[pd.DataFrame, str, tuple]:
    meta = assignments.attrs.get("campaign")
    if meta is not None and (control is None or control == meta["control"]):
        return assignments, meta["control"], tuple(meta["arms"])
    if control is None:
        raise ValueError("name the control arm (control=) or load the file with campaign_files.load_assignments")
    checked = assignments_from_raw(raw_from_frame(assignments, "assignments"), control=control, arms=arms)
    return checked, checked.attrs["campaign"]["control"], tuple(checked.attrs["campaign"]["arms"])


def check_campaign(
    transactions: pd.DataFrame,
    assignments,
    *,
    window,
    freq: str = FREQ,
    control=None,
    arms=None,
    read: dict | None = None,
    dataset: str | None = None,
) -> dict:
    """Every check of a campaign on ``transactions``, before anything is computed or fitted:
    raises one :class:`~urm_models.data.validation.DataValidationError` naming the file, the column,
    the count and what settles it, or returns what :func:`from_transactions` will work with.

    ``assignments``: the path of an assignment file (read with
    :func:`urm_models.data.campaign_files.load_assignments` and ``read``'s options) or a table (validated
    or not). Checked: the assignment contract (one arm per user, the control, arm labels, arm
    sizes), ``window`` (a positive number of ``freq`` periods, at least a day), every send's
    outcome window inside the data, a purchase somewhere before every send (features need a
    history to be computed from), and the ids: none matching a customer of the transactions, or
    some matching one only when written another way (``00123`` / ``123``), is refused.
    Users without a purchase before their send (new sign-ups) are supported and counted.
    Returns ``{"assignments", "control", "arms", "days", "users", "new_users", "never_bought"}``."""
    source = str(assignments) if isinstance(assignments, (str, Path)) else "assignments"
    if isinstance(assignments, (str, Path)):
        options = {"control": control, "arms": arms, "dataset": dataset, **(read or {})}
        options["arms"] = arms if arms is not None else options["arms"]  # read= may declare them
        assignments = load_assignments(assignments, **options)
    elif read:
        raise ValueError("reading options go with an assignment file's path, not with a table")
    days = _window_days(window, freq, source)
    asg, control, arm_order = _validated(assignments, control, arms)
    tx_days = pd.to_datetime(transactions["ts"]).dt.normalize()
    if tx_days.empty:
        raise DataValidationError(
            f"{source}: the transactions hold no purchase to measure a campaign on", source=source
        )
    first, last = tx_days.min(), tx_days.max()
    send = pd.to_datetime(asg["sent_at"]).dt.normalize()
    late = send + pd.Timedelta(days=days - 1) > last
    if late.any():
        latest = last - pd.Timedelta(days=days - 1)
        raise DataValidationError(
            f"{source}: column sent_at: {int(late.sum()):,} of {len(asg):,} users were sent the campaign after "
            f"{latest:%Y-%m-%d}, so their {float(window):g} {UNIT_WORDS[freq]} outcome window ends after the last "
            f"purchase in the transactions ({last:%Y-%m-%d}): their outcomes are not observed yet. Pass a shorter "
            "window= or leave those sends out",
            source=source,
            failures=pd.DataFrame(
                [{"column": "sent_at", "check": "outcome_window_observed", "n_rows": int(late.sum())}]
            ),
        )
    early = send <= first
    if early.any():
        raise DataValidationError(
            f"{source}: column sent_at: {int(early.sum()):,} of {len(asg):,} users were sent the campaign on or "
            f"before the first purchase in the transactions ({first:%Y-%m-%d}): no one has a history before "
            "their send, so no feature can be computed. Give the transactions from before the campaign, or "
            "leave those sends out",
            source=source,
            failures=pd.DataFrame([{"column": "sent_at", "check": "history_before_send", "n_rows": int(early.sum())}]),
        )
    users = asg["user_id"].astype(str)
    tx_ids = pd.Index(pd.unique(transactions["user_id"].astype(str)))
    known = users.isin(tx_ids)
    if not known.any():
        raise DataValidationError(
            f"{source}: column user_id: none of the {len(users):,} users of the campaign is a customer of the "
            f"transactions (e.g. {users.head(3).tolist()} there, {tx_ids[:3].tolist()} in the transactions): "
            "the ids are not written the same way in both files, or the campaign is not on this data set",
            source=source,
            failures=pd.DataFrame([{"column": "user_id", "check": "matches_a_customer", "n_rows": len(users)}]),
        )
    _refuse_ids_written_otherwise(users[~known], tx_ids, source)
    before = transactions.loc[transactions["user_id"].astype(str).isin(users), ["user_id", "ts"]]
    first_buy = pd.to_datetime(before["ts"]).dt.normalize().groupby(before["user_id"].astype(str)).min()
    first_of_user = users.map(first_buy)
    new_users = int((first_of_user.isna() | (first_of_user.to_numpy() >= send.to_numpy())).sum())
    return {
        "assignments": asg,
        "control": control,
        "arms": arm_order,
        "days": days,
        "users": len(asg),
        "new_users": new_users,
        "never_bought": int((~known).sum()),
    }


def _window_days(window, freq: str, source: str) -> int:
    """Whole days of the outcome window, or a DataValidationError saying what a window is."""
    if freq not in UNIT_WORDS:
        raise ValueError(f"freq must be one of {sorted(UNIT_WORDS)}, not {freq!r}")
    try:
        w = float(window)
    except (TypeError, ValueError):
        w = math.nan
    days = int(round(w * UNIT_DAYS[freq])) if math.isfinite(w) and w > 0 else 0
    if days < 1:
        raise DataValidationError(
            f"{source}: the outcome window {window!r} ({freq} periods) is not a positive number of periods of at "
            f"least a day: give window= (--campaign-window) as the {UNIT_WORDS[freq]} after each send in which the "
            "outcomes are counted, e.g. 4",
            source=source,
            failures=pd.DataFrame([{"column": "window", "check": "positive_window", "n_rows": 0}]),
        )
    return window_days(w, freq)


def _loose(ids: pd.Series) -> pd.Series:
    """An id with what exports change about ids taken away: case, marks and spaces, a zero
    decimal part, leading zeros."""
    key = ids.astype(str).str.lower().str.replace(r"\.0+$", "", regex=True)
    return key.str.replace(r"[^0-9a-z]", "", regex=True).str.lstrip("0")


def _refuse_ids_written_otherwise(unmatched: pd.Series, tx_ids: pd.Index, source: str) -> None:
    """Campaign ids that match no customer exactly but one when written another way (``00123``
    here, ``123`` there; ``A-1`` / ``a1``): the two files spell ids differently, and the users
    would silently count as never having bought."""
    if unmatched.empty:
        return
    theirs = pd.Series(tx_ids.astype(str), index=_loose(pd.Series(tx_ids.astype(str))).to_numpy())
    theirs = theirs[~theirs.index.duplicated()]
    keys = _loose(unmatched)
    hit = keys.isin(theirs.index) & (keys != "")
    if not hit.any():
        return
    ex = [
        f"{u!r} (transactions: {theirs[k]!r})" for u, k in zip(unmatched[hit].head(3), keys[hit].head(3), strict=True)
    ]
    raise DataValidationError(
        f"{source}: column user_id: {int(hit.sum()):,} users of the campaign match no customer of the transactions "
        f"as written, but one when written another way, e.g. {', '.join(ex)}: the two files spell ids differently "
        "(leading zeros, case, marks, '.0'). Write the ids the same way in both files",
        source=source,
        failures=pd.DataFrame(
            [{"column": "user_id", "check": "ids_written_as_in_the_transactions", "n_rows": int(hit.sum())}]
        ),
    )


def from_transactions(
    transactions: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    window: float,
    freq: str = FREQ,
    control=None,
    arms=None,
    btyd: bool = True,
    clv_horizon: int = 12,
    currency: str = "",
    name: str = "campaign",
) -> Campaign:
    """The :class:`~urm_models.data.campaign_files.Campaign` of an assignment file (``user_id, arm,
    sent_at``: :func:`urm_models.data.campaign_files.load_assignments`) on a data set's ``transactions``.

    ``window``: the outcome window in ``freq`` periods from the send day. Every check of
    :func:`check_campaign` runs first (a send whose window is not inside the data is an error
    that names the last day a send can have, not an outcome silently cut short).
    Outcomes: ``purchases``, ``converted`` (0/1), ``spend`` (in ``currency``).
    """
    checked = check_campaign(transactions, assignments, window=window, freq=freq, control=control, arms=arms)
    asg, control, arm_order = checked["assignments"], checked["control"], checked["arms"]
    send = pd.to_datetime(asg["sent_at"]).dt.normalize()
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
    transactions, cutoff, users=None, *, freq: str = FREQ, window: float = 4.0, btyd: bool = True, clv_horizon: int = 12
) -> pd.DataFrame:
    """The campaign features of ``users`` (default: everyone with a purchase up to ``cutoff``)
    from the purchases on or before ``cutoff``, indexed by ``user_id``: what
    :func:`from_transactions` computes the day before a send and what scoring computes at its
    date for an uplift model trained on them (the same code, so the same columns)."""
    act = features.activity_features(transactions, cutoff, freq=freq)
    users = act.index if users is None else pd.Index(pd.Index(users).astype(str), name="user_id")
    X = act.reindex(users).astype("float64")  # a new sign-up's counts are missing, not 0: floats for all
    X["known"] = users.isin(act.index).astype("int64")
    X["log_first_amount"] = features.first_purchase(transactions, cutoff)["log_first_amount"].reindex(users)
    if btyd:
        X = X.join(_btyd_scores(transactions, pd.Timestamp(cutoff), freq, window, clv_horizon).reindex(users))
    return X.astype({c: "float64" for c in X.columns if c != "known"})


def _btyd_scores(transactions, cutoff, freq: str, window: float, clv_horizon: int) -> pd.DataFrame:
    """P(alive), P(no purchase in the window), expected purchases and CLV over ``clv_horizon``
    months of a Pareto/NBD and Gamma-Gamma fitted on the history up to ``cutoff``."""
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
    (:func:`urm_models.data.simulate.simulate_campaign`): the ranking an uplift model aims at."""
    col = f"effect_{outcome}[{arm}]"
    if col not in truth:
        raise ValueError(f"the truth table has no {col!r}")
    return truth[col].astype(float)


__all__ = ["from_transactions", "features_at", "oracle_effects", "OUTCOMES"]
