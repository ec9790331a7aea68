"""Value tiers: shares or amounts of a value, best first, and their report."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

DEFAULT_TIER_SHARES = {"platinum": 0.10, "gold": 0.20, "silver": 0.30, "bronze": 0.40}
#: Tiers best first (the order of ``DEFAULT_TIER_SHARES``).
TIERS = list(DEFAULT_TIER_SHARES)


def tier_bounds(n: int, shares: Mapping | None = None, amounts: Mapping | None = None) -> list[tuple[str, float]]:
    """The tier rule for ``n`` users, best tier first, as every engine applies it.

    ``shares`` (default 10/20/30/40%): ``(tier, last position)`` pairs, the positions being
    cumulative roundings of the shares (each tier within one user of its share), the users
    ordered by value descending, ties by id. ``amounts`` instead: ``(tier, minimum value)`` pairs
    from the highest minimum down; a user gets the first tier whose minimum they reach, the last
    tier when they reach none.
    """
    if shares is not None and amounts is not None:
        raise ValueError("give shares or amounts, not both")
    if amounts is not None:
        if not amounts:
            raise ValueError("tier amounts are empty: give {tier: minimum value}")
        return sorted(((str(t), float(v)) for t, v in amounts.items()), key=lambda kv: -kv[1])
    shares = dict(shares or DEFAULT_TIER_SHARES)
    total = sum(shares.values())
    if not np.isclose(total, 1.0):
        raise ValueError(f"tier shares must add up to 1, they add up to {total}")
    if min(shares.values()) < 0:
        raise ValueError(f"tier shares must not be negative: {shares}")
    bounds = np.round(np.cumsum(list(shares.values())) * n).astype(int)
    bounds[-1] = n
    return [(str(t), int(b)) for t, b in zip(shares, bounds, strict=True)]


def value_tiers(value: pd.Series, shares: Mapping | None = None, amounts: Mapping | None = None) -> pd.Series:
    """Tier per user from predicted value (e.g. CLV), best tier first, by :func:`tier_bounds`:
    shares of users (default 10/20/30/40%; ties across a tier boundary broken by the index) or
    minimum ``amounts``."""
    v = value.astype(float)
    if v.isna().any():
        raise ValueError(f"value has {int(v.isna().sum())} missing rows")
    n = len(v)
    bounds = tier_bounds(n, shares, amounts)
    if amounts is not None:
        labels = np.full(n, bounds[-1][0], dtype=object)
        assigned = np.zeros(n, bool)
        for tier, minimum in bounds:
            hit = ~assigned & (v.to_numpy() >= minimum)
            labels[hit] = tier
            assigned |= hit
        return pd.Series(labels, index=v.index, name="tier")
    neg = -v.to_numpy()
    order = np.argsort(neg, kind="stable")
    ranked = neg[order]
    for _, b in bounds[:-1]:
        # users tied across a tier boundary are ordered by id, so that the split never depends
        # on row order (ties elsewhere land in one tier whatever their order)
        if 0 < b < n and ranked[b - 1] == ranked[b]:
            lo, hi = np.searchsorted(ranked, ranked[b], "left"), np.searchsorted(ranked, ranked[b], "right")
            block = order[lo:hi]
            order[lo:hi] = block[v.index[block].argsort()]
    labels = np.empty(n, dtype=object)
    start = 0
    for tier, end in bounds:
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
