"""Helpers shared by the segment modules: user-supplied rule tables and per-user inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def rule_table(table, default: pd.DataFrame, what: str) -> pd.DataFrame:
    """A rule table given as None (the default), a DataFrame or a CSV path, with the default's
    columns (in its order) required."""
    if table is None:
        return default
    if isinstance(table, (str, Path)):
        table = pd.read_csv(table)
    need = list(default.columns)
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it needs {need}")
    return table[need]


def aligned_series(values, index, name) -> pd.Series | None:
    if values is None:
        return None
    out = pd.Series(values, index=index) if not isinstance(values, pd.Series) else values.reindex(index)
    if out.isna().any():
        raise ValueError(f"{name} has {int(out.isna().sum())} missing rows")
    return out
