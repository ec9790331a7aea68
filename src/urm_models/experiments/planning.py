"""Planning the next campaign: how many users per arm for a lift worth detecting, and the
smallest lift a given number of users can detect.

The formulas are the normal approximations behind the analysis of :mod:`.analysis` (two-sided
test at ``alpha``, Bonferroni-split over ``treatments`` arms against one control, power ``1 -
beta``): per control user, ``n = (z_{1-alpha/(2k)} + z_{power})^2 (var_0 + var_1 / ratio) /
delta^2`` with ``ratio`` = users per treatment arm / control users. For a binary outcome the
variances are ``p (1 - p)`` at the control rate and at the rate the lift would give; for an
amount give its standard deviation (from a past campaign's control arm: ``arm_summary``).
``tests/test_experiments.py`` checks by simulation that a campaign of the planned size detects
the lift with the planned power.

:func:`plan_campaign` plans the next campaign from the relationship table: whom to contact with
which arm, a stratified randomised holdout sized for the effect worth detecting, a standing
control group kept out of every campaign, written as the assignment file that ``urm refresh
--campaign`` measures when the outcomes are in.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .policy import hashed_rank


def _z(alpha: float, power: float, treatments: int) -> float:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha}, power={power}")
    if int(treatments) != treatments or treatments < 1:
        raise ValueError(f"treatments must be a positive whole number, got {treatments}")
    return stats.norm.ppf(1 - alpha / (2 * treatments)) + stats.norm.ppf(power)


def _variances(baseline: float, delta: float, sd: float | None) -> tuple[float, float]:
    if sd is None:
        p1 = baseline + delta
        if not 0 < baseline < 1 or not 0 < p1 < 1:
            raise ValueError(
                f"a binary outcome needs rates in (0, 1): control {baseline}, with the lift {p1}; "
                "for an amount pass sd="
            )
        return baseline * (1 - baseline), p1 * (1 - p1)
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd}")
    return sd**2, sd**2


def sample_size(
    baseline: float,
    mde: float,
    *,
    relative: bool = False,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    treatments: int = 1,
    ratio: float = 1.0,
) -> dict:
    """Users needed to detect a lift of ``mde`` (absolute, or relative to ``baseline`` with
    ``relative=True``) over the control mean ``baseline``.

    Binary outcome (a rate in (0, 1)) unless ``sd`` (the outcome's standard deviation per user)
    is given. Returns ``control`` (users in the control arm), ``per_treatment`` (in each of the
    ``treatments`` arms: ``ratio`` times the control), ``total`` and the inputs.
    """
    delta = mde * baseline if relative else mde
    if delta == 0 or not math.isfinite(delta):
        raise ValueError(f"the minimum detectable effect must be non-zero, got {mde}")
    if not ratio > 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    v0, v1 = _variances(baseline, delta, sd)
    n0 = math.ceil(_z(alpha, power, treatments) ** 2 * (v0 + v1 / ratio) / delta**2)
    n1 = math.ceil(n0 * ratio)
    return {
        "control": n0,
        "per_treatment": n1,
        "total": n0 + treatments * n1,
        "baseline": baseline,
        "lift": delta,
        "relative_lift": delta / baseline if baseline else float("nan"),
        "alpha": alpha,
        "power": power,
        "treatments": treatments,
    }


def minimum_detectable_effect(
    n_control: int,
    baseline: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    treatments: int = 1,
    ratio: float = 1.0,
    direction: int = 1,
) -> dict:
    """The smallest lift (``direction`` +1: an increase, -1: a decrease) that ``n_control``
    control users and ``ratio`` times as many per treatment arm detect with ``power``.
    Returns ``lift`` (absolute), ``relative_lift`` and the inputs."""
    if n_control < 2 or not ratio > 0:
        raise ValueError(f"need n_control >= 2 and ratio > 0, got {n_control}, {ratio}")
    zz = _z(alpha, power, treatments)
    if sd is not None:
        delta = zz * math.sqrt(sd**2 * (1 + 1 / ratio) / n_control)
    else:
        if not 0 < baseline < 1:
            raise ValueError(f"a binary outcome needs a control rate in (0, 1), got {baseline}; for an amount pass sd=")
        room = (1 - baseline) if direction > 0 else baseline

        def gap(d):
            v0, v1 = _variances(baseline, direction * d, None)
            return zz * math.sqrt((v0 + v1 / ratio) / n_control) - d

        hi = room * (1 - 1e-9)
        if gap(hi) > 0:
            raise ValueError(f"{n_control} control users cannot detect any lift from {baseline} with power {power}")
        delta = optimize.brentq(gap, 1e-12, hi)
    delta = float(np.sign(direction) * delta)
    return {
        "lift": delta,
        "relative_lift": delta / baseline if baseline else float("nan"),
        "control": int(n_control),
        "per_treatment": int(math.ceil(n_control * ratio)),
        "baseline": baseline,
        "alpha": alpha,
        "power": power,
        "treatments": treatments,
    }


# ------------------------------------------------------------------------------ the next campaign

#: the salt of the standing control group: the same users are in it in every campaign
PERSISTENT_SALT = "urm-persistent-control"


def persistent_control(user_ids, share: float) -> pd.Index:
    """The users of a standing control group of ``share`` of all users, kept out of every
    campaign: drawn by a keyed hash of the id alone, so the same users are in it every time
    (and a new user joins it with probability ``share``)."""
    ids = pd.Index(pd.Index(user_ids).astype(str))
    if not 0 <= share <= 0.5:
        raise ValueError(f"the persistent control share must lie in [0, 0.5], got {share}")
    h = pd.util.hash_pandas_object(pd.Series(ids + "\x1f" + PERSISTENT_SALT), index=False).to_numpy()
    return ids[(h / np.float64(2**64)) < share]


def holdout_share(
    n: int,
    baseline: float,
    effect: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    low: float = 0.05,
    high: float = 0.5,
) -> tuple[float, float]:
    """The smallest share of ``n`` targeted users to hold out (no contact) so that the holdout
    against the contacted rest detects ``effect`` with ``power`` (two-sided ``alpha``): the
    share in steps of 1% from ``low`` to ``high``. Returns the share and the smallest effect it
    detects (at ``high`` when no share detects ``effect``)."""
    mde = float("inf")
    for h in np.arange(low, high + 1e-9, 0.01):
        n_c = int(np.floor(h * n))
        if n_c < 2 or n - n_c < 2:
            continue
        try:
            mde = abs(
                minimum_detectable_effect(
                    n_c,
                    baseline,
                    sd=sd,
                    alpha=alpha,
                    power=power,
                    ratio=(n - n_c) / n_c,
                    direction=int(np.sign(effect) or 1),
                )["lift"]
            )
        except ValueError:
            continue
        if mde <= abs(effect):
            return float(round(h, 2)), mde
    return float(high), mde


def plan_campaign(
    recommended: pd.DataFrame,
    *,
    control: str,
    sent_at,
    baseline: float,
    sd: float | None = None,
    effect: dict | float | None = None,
    persistent: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The next campaign from the relationship table's recommendations (``recommended``: indexed
    by user id, ``recommended_arm``, ``action_priority`` or ``expected_incremental_value``, and
    ``effect[<arm>]`` columns where the decision has them).

    Users in the standing control group (``persistent`` of all users, :func:`persistent_control`)
    are never contacted. Of the users recommended an arm, a randomised **holdout** gets the control
    instead, drawn within each arm and quarter of the priority (stratified, by a keyed hash of the
    id and ``seed``), sized by :func:`holdout_share` for the effect worth detecting: ``effect``
    (per arm, in the outcome's unit), by default the mean predicted effect of the users the arm is
    recommended to. ``baseline``: the outcome's mean without a contact (the last campaign's
    control); ``sd``: its standard deviation for an amount (None: a share of users).

    Returns the **assignment file** (``user_id, arm, sent_at``: what ``urm refresh --campaign``
    measures when the outcomes are in) and the plan per arm (users, held out, the holdout share,
    the effect worth detecting and the smallest effect the plan detects)."""
    rec = recommended.copy()
    rec.index = pd.Index(rec.index.astype(str), name="user_id")
    keep = persistent_control(rec.index, persistent) if persistent else pd.Index([])
    arm = rec["recommended_arm"].astype(str)
    target = arm[(arm != str(control)) & ~rec.index.isin(keep)]
    if "action_priority" in rec:
        quarter = rec["action_priority"].reindex(target.index).astype(int)
    else:
        quarter = pd.qcut(
            rec["expected_incremental_value"].reindex(target.index).rank(method="first"),
            4,
            labels=False,
            duplicates="drop",
        )

    rows, out = [], []
    for a, users in target.groupby(target, sort=True):
        want = effect.get(a) if isinstance(effect, dict) else effect
        if want is None:
            col = f"effect[{a}]"
            want = float(rec.loc[users.index, col].mean()) if col in rec else float("nan")
        if not np.isfinite(want) or want == 0:
            raise ValueError(f"no effect worth detecting for arm {a!r}: pass effect={{{a!r}: ...}}")
        share, mde = holdout_share(len(users), baseline, want, sd=sd, alpha=alpha, power=power)
        assigned = pd.Series(a, index=users.index, dtype=object)
        for _, idx in users.groupby(quarter.reindex(users.index).to_numpy()).groups.items():
            idx = pd.Index(idx)
            ranks = hashed_rank(idx, seed)
            assigned[idx[ranks < int(round(share * len(idx)))]] = str(control)
        out.append(assigned)
        held = int((assigned == str(control)).sum())
        rows.append(
            {
                "arm": a,
                "users": len(users),
                "held_out": held,
                "holdout_share": held / len(users),
                "effect_worth_detecting": want,
                "detectable_effect": mde,
                "power": power,
                "detects_it": bool(mde <= abs(want)),
            }
        )
    plan = (
        pd.DataFrame(rows).set_index("arm")
        if rows
        else pd.DataFrame(
            columns=[
                "users",
                "held_out",
                "holdout_share",
                "effect_worth_detecting",
                "detectable_effect",
                "power",
                "detects_it",
            ]
        )
    )
    plan.attrs["persistent_control"] = int(len(keep))
    assigned = pd.concat(out) if out else pd.Series(dtype=object)
    assignments = pd.DataFrame(
        {"user_id": assigned.index.astype(str), "arm": assigned.to_numpy(), "sent_at": pd.Timestamp(sent_at)}
    )
    return assignments.sort_values("user_id", kind="stable").reset_index(drop=True), plan
