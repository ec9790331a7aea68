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
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats


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
