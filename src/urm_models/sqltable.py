"""The relationship table in a SQL database, for the CRM, BI tool or marketing platform that
reads tables rather than Parquet files.

When the team setting names a ``database`` (an SQLAlchemy URL: PostgreSQL for a team, SQLite as
the embedded default; :mod:`urm_models.settings`), every published table (``urm refresh``,
``urm score``) is also written to ``urm_user_scores_<dataset>``, atomically: the rows go to a
staging table first, then **one transaction** renames the current table to
``urm_user_scores_<dataset>_previous`` (the one before it is dropped), the staging table to the
current name, and records the publication in ``urm_publications`` (data set, as-of date, rows,
model versions, run, the models' store, time). A reader sees the old table or the new one,
never a part or a mix; a publish killed before that transaction leaves the current table as
it was (its staging table is removed by the next publish). ``urm forget`` deletes the users'
rows from the current and the previous table.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pandas as pd

from . import settings

PUBLICATIONS = "urm_publications"


def database_url() -> str | None:
    """The team's database (``database`` in team.yaml or ``URM_DATABASE``), a relative SQLite
    path resolved against the project home; None when none is set."""
    url, _ = settings.get("database")
    if url and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        from . import paths

        url = f"sqlite:///{paths.project_root() / url.removeprefix('sqlite:///')}"
    return url


def table_name(dataset: str) -> str:
    """``urm_user_scores_<dataset>``, the data set's name lower-cased with other characters
    than letters and digits as ``_`` (a name every SQL dialect takes unquoted)."""
    return "urm_user_scores_" + re.sub(r"[^a-z0-9]+", "_", dataset.lower()).strip("_")


def _types(engine):
    from sqlalchemy import BigInteger, Date, Float, Text

    from .scoring import COLUMNS, TEXT_COLUMNS

    out = {}
    for c in COLUMNS:
        if c == "as_of":
            out[c] = Date()
        elif c == "action_priority":
            out[c] = BigInteger()
        elif c in TEXT_COLUMNS or c == "user_id":
            out[c] = Text()
        else:
            out[c] = Float()
    return out


def _copy(pd_table, conn, keys, data_iter) -> None:
    """pandas ``to_sql`` rows into PostgreSQL with ``COPY`` (psycopg 3): a statement per chunk
    instead of one per row, and no limit on the number of parameters."""
    cols = ", ".join(f'"{k}"' for k in keys)
    with conn.connection.dbapi_connection.cursor() as cur:
        with cur.copy(f'COPY "{pd_table.name}" ({cols}) FROM STDIN') as copy:
            for row in data_iter:
                copy.write_row([None if isinstance(v, float) and v != v else v for v in row])


def publish_table(
    table: pd.DataFrame, dataset: str, *, url: str | None = None, run_id: str = "", metadata: dict | None = None
) -> dict:
    """Write ``table`` (the predictions table) as the data set's current SQL table, atomically,
    keeping the previous one. Returns what was published."""
    from sqlalchemy import inspect, text

    from .locks import engine as make_engine
    from .scoring import COLUMNS

    url = url or database_url()
    if not url:
        raise ValueError("no database is set (team.yaml's database, or URM_DATABASE)")
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the predictions table lacks columns {missing}")
    eng = make_engine(url)
    name = table_name(dataset)
    staging = f"{name}_staging_{uuid.uuid4().hex[:8]}"
    frame = table[COLUMNS].copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    for c in frame.columns:  # nullable pandas types -> plain objects the drivers take
        if isinstance(frame[c].dtype, pd.StringDtype):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    with eng.connect() as conn:  # staging tables of publishes that were killed
        for old in inspect(conn).get_table_names():
            if old.startswith(f"{name}_staging_"):
                conn.execute(text(f'DROP TABLE IF EXISTS "{old}"'))
        conn.commit()
    try:
        frame.to_sql(
            staging,
            eng,
            index=False,
            dtype=_types(eng),
            chunksize=50_000,
            method=_copy if eng.dialect.name == "postgresql" else None,
        )
        as_of = str(frame["as_of"].iloc[0]) if len(frame) else ""
        versions = ";".join(sorted(table["model_versions"].dropna().astype(str).unique()))
        with eng.begin() as conn:  # the swap: one transaction
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {PUBLICATIONS} (dataset TEXT NOT NULL, as_of TEXT NOT NULL, "
                    "rows BIGINT NOT NULL, model_versions TEXT, run_id TEXT, details TEXT, published_at TEXT NOT NULL)"
                )
            )
            names = set(inspect(conn).get_table_names())
            conn.execute(text(f"DROP TABLE IF EXISTS {name}_previous"))
            if name in names:
                conn.execute(text(f"ALTER TABLE {name} RENAME TO {name}_previous"))
            conn.execute(text(f'ALTER TABLE "{staging}" RENAME TO {name}'))
            conn.execute(
                text(
                    f"INSERT INTO {PUBLICATIONS} (dataset, as_of, rows, model_versions, run_id, details, "
                    "published_at) VALUES (:d, :a, :n, :v, :r, :x, :t)"
                ),
                {
                    "d": dataset,
                    "a": as_of,
                    "n": len(frame),
                    "v": versions,
                    "r": run_id,
                    "x": json.dumps(metadata or {}, default=str),
                    "t": dt.datetime.now().isoformat(timespec="seconds"),
                },
            )
    except BaseException:
        with eng.connect() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "{staging}"'))
            conn.commit()
        raise
    finally:
        eng.dispose()
    return {"database": settings.redact(url), "table": name, "rows": len(frame), "as_of": as_of}


def read(dataset: str, *, url: str | None = None, previous: bool = False) -> pd.DataFrame:
    """The data set's current (or previous) SQL table."""
    from .locks import engine as make_engine

    eng = make_engine(url or database_url())
    try:
        name = table_name(dataset) + ("_previous" if previous else "")
        return pd.read_sql_table(name, eng)
    finally:
        eng.dispose()


def delete_users(user_ids: list[str], dataset: str | None = None, *, url: str | None = None) -> dict:
    """Delete the users' rows from every current and previous table (of ``dataset`` only, if
    given); ``{table: rows deleted}``."""
    from sqlalchemy import bindparam, inspect, text

    from .locks import engine as make_engine

    url = url or database_url()
    if not url or not user_ids:
        return {}
    eng = make_engine(url)
    out = {}
    try:
        with eng.begin() as conn:
            prefix = table_name(dataset) if dataset else "urm_user_scores_"
            for name in inspect(conn).get_table_names():
                if not name.startswith(prefix) or "_staging_" in name:
                    continue
                if dataset and name not in (prefix, f"{prefix}_previous"):
                    continue
                stmt = text(f"DELETE FROM {name} WHERE user_id IN :ids").bindparams(bindparam("ids", expanding=True))
                n = conn.execute(stmt, {"ids": [str(u) for u in user_ids]}).rowcount
                if n:
                    out[name] = int(n)
    finally:
        eng.dispose()
    return out


__all__ = ["publish_table", "read", "delete_users", "table_name", "database_url"]
