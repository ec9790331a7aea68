"""How users moved between two as-of dates (segments or tiers)."""

from __future__ import annotations

import pandas as pd


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
    counts = pd.crosstab(
        pd.Categorical(b, categories=axis),
        pd.Categorical(a, categories=axis),
        dropna=False,
        rownames=["before"],
        colnames=["after"],
    )
    shares = counts.div(counts.sum(axis=1).where(counts.sum(axis=1) > 0), axis=0)
    both = (b != "(none)") & (a != "(none)")
    out = {
        "counts": counts,
        "shares": shares,
        "stability": float((b[both] == a[both]).mean()) if both.any() else float("nan"),
    }
    if order is not None:
        rank = {lab: i for i, lab in enumerate(order)}
        rb, ra = b[both].map(rank), a[both].map(rank)
        known = rb.notna() & ra.notna()
        out["upgraded"] = list(rb.index[known & (ra < rb)])
        out["downgraded"] = list(rb.index[known & (ra > rb)])
    return out
