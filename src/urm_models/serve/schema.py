"""The relationship table's schema, written once: its columns, in order, each with its kind and,
for a score, its unit. Every path that makes or stores the table reads it from here: the pandas
table of :mod:`~urm_models.serve.scoring` (:func:`frame`), the Spark table of
:mod:`~urm_models.serve.spark_scoring` (:func:`spark_ddl`, :func:`from_parquet`), the SQL table of
:mod:`~urm_models.serve.sqltable` (:func:`sql_types`) and the Parquet metadata (:func:`units`).

A new column is one :class:`Column` here and the code that computes it (``scoring``'s row-wise
steps); a column that a path does not compute is empty there (a campaign's columns without a
measured campaign; the purchase scores on a customer table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["Column", "SCHEMA", "COLUMNS", "TEXT_COLUMNS", "frame", "from_parquet", "spark_ddl", "sql_types", "units"]


@dataclass(frozen=True)
class Column:
    """One column of the relationship table. ``kind``: ``id`` (the user id, as text), ``date``,
    ``text`` (nullable text), ``number`` (float, NaN when empty) or ``count`` (a whole number,
    never empty). ``unit``: what a score means, with its horizons (``{churn}``, ``{clv}``: e.g.
    ``13 W``, ``12 M``; ``{money}``: the currency, or why the column is empty), recorded in the
    table's metadata."""

    name: str
    kind: Literal["id", "date", "text", "number", "count"]
    unit: str = ""


SCHEMA: tuple[Column, ...] = (
    Column("user_id", "id"),
    Column("as_of", "date"),
    Column("tier", "text"),
    Column("rfm_segment", "text"),
    Column("lifecycle_stage", "text"),
    Column("p_alive", "number", "probability that the customer has not dropped out, at as_of"),
    Column("p_churn", "number", "probability of no purchase in the next {churn} after as_of"),
    Column("expected_purchases", "number", "expected purchase days in the next {clv} after as_of"),
    Column("expected_remaining_lifetime", "number", "months alive within the next {clv} (restricted to that horizon)"),
    Column("clv", "number", "{money}; discounted expected spend in the next {clv}"),
    Column(
        "value_at_risk",
        "number",
        "{money}; expected value lost to dropout in the next {clv}, discounted as clv: the value of the customer "
        "alive now and staying alive throughout, less clv (from the CLV model)",
    ),
    Column("recommended_action", "text"),
    Column("action_channel", "text"),
    Column("action_priority", "count"),
    Column("cohort", "text"),
    Column("model_versions", "text"),
    # a measured campaign's (the data set's urm-uplift champion); empty otherwise
    Column("recommended_arm", "text"),
    Column("expected_incremental_value", "number"),
)
COLUMNS = [c.name for c in SCHEMA]
TEXT_COLUMNS = tuple(c.name for c in SCHEMA if c.kind == "text")

_SPARK = {"id": "string", "date": "date", "text": "string", "number": "double", "count": "bigint"}


def frame(values: Mapping, user_ids: pd.Index, as_of) -> pd.DataFrame:
    """The table from ``values`` (column -> Series, array or one value for every row, in the
    order of ``user_ids``): the schema's columns, order and types; a column without values is
    empty. Built column by column as typed arrays: no type inference over a million objects,
    no copy of the whole table."""
    n = len(user_ids)
    out = {}
    for c in SCHEMA:
        if c.kind == "id":
            out[c.name] = user_ids.astype(str).to_numpy(object)
            continue
        if c.kind == "date":
            out[c.name] = pd.Series(pd.Timestamp(as_of), index=pd.RangeIndex(n)).array
            continue
        v = values.get(c.name)
        dtype = {"text": object, "number": float, "count": "int64"}[c.kind]
        if v is None and c.kind == "count":
            raise ValueError(f"the table's column {c.name!r} (a count) has no values")
        if v is None:
            a = np.full(n, None if dtype is object else np.nan, dtype=dtype)
        elif np.ndim(v) == 0:
            a = np.full(n, v, dtype=dtype)
        else:
            a = np.asarray(v.to_numpy() if isinstance(v, pd.Series) else v, dtype=dtype)
        out[c.name] = pd.array(a, dtype="string") if c.kind == "text" else a
    return pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)  # a block per column: nothing copied


def from_parquet(df: pd.DataFrame, as_of) -> pd.DataFrame:
    """A table read back from Parquet written by Spark (partitioned by ``as_of``, so without
    it): the schema's columns, order and types, rows in user order."""
    df = df.copy()
    df.insert(1, "as_of", pd.Timestamp(as_of))
    for c in TEXT_COLUMNS:
        df[c] = df[c].astype("string")
    return df.sort_values("user_id", kind="stable").reset_index(drop=True)[COLUMNS]


def spark_ddl(columns=None) -> str:
    """The schema as a Spark DDL string (``user_id string, as_of date, ...``); ``columns``: some of
    them, as ``(name, kind)`` pairs or names of the schema's columns (a step's intermediate table)."""
    kinds = {c.name: c.kind for c in SCHEMA}
    pairs = [(c, kinds[c]) if isinstance(c, str) else c for c in columns] if columns is not None else kinds.items()
    return ", ".join(f"{name} {_SPARK[kind]}" for name, kind in pairs)


def sql_types() -> dict:
    """The schema as SQLAlchemy column types (the SQL table of :mod:`~urm_models.serve.sqltable`)."""
    from sqlalchemy import BigInteger, Date, Float, Text

    kinds = {"id": Text, "date": Date, "text": Text, "number": Float, "count": BigInteger}
    return {c.name: kinds[c.kind]() for c in SCHEMA}


def units(churn_horizon: str, clv_horizon: str, no_money: bool = False) -> dict:
    """Each score column's unit and horizon, as the table's metadata (``columns``) records them:
    one statement per column, the horizons spelled out (``"13 W"``, ``"12 M"``)."""
    money = "empty: the data have no amounts" if no_money else "the data's currency"
    return {c.name: c.unit.format(churn=churn_horizon, clv=clv_horizon, money=money) for c in SCHEMA if c.unit}
