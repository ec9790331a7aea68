"""The relationship table in a SQL database, for the CRM, BI tool or marketing platform that
reads tables rather than Parquet files.

When the team setting names a ``database`` (an SQLAlchemy URL: PostgreSQL for a team, SQLite as
the embedded default; :mod:`urm_models.core.settings`), every published table (``urm refresh``,
``urm score``) is also written to ``urm_user_scores_<key>`` (:func:`table_name`: the data set's
name when it is plain, else a key made from it; never another data set's), atomically: the rows
go to a staging table ``<table>__staging_<hex>`` first, then **one transaction** renames the
current table to ``<table>__previous`` (the one before it is dropped), the staging table to the
current name, and records the publication in ``urm_publications`` (data set, as-of date, rows,
model versions, run, the models' store, who published from where, the time in UTC). A reader
sees the old table or the new one, never a part or a mix; a publish killed before that
transaction leaves the current table as it was (its staging table is removed by the next
publish, and ``urm forget`` reaches it meanwhile). Users in the erasure register
(:mod:`urm_models.data.erasure`: the team's, whoever erased them) are never published; ``urm forget``
deletes their rows from every table of the data set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import socket
import uuid

import pandas as pd

from ..core import paths, settings
from ..core.errors import PublishError
from ..core.locks import engine as make_engine
from ..core.redaction import scrub, scrub_obj
from ..data.erasure import not_erased
from . import schema

PUBLICATIONS = "urm_publications"


def table_name(dataset: str) -> str:
    """``urm_user_scores_<key>``: the data set's :func:`urm_models.core.paths.dataset_key` (its name
    when plain: ``urm_user_scores_cdnow``), a name every SQL dialect takes unquoted and no other
    data set maps to."""
    return "urm_user_scores_" + paths.dataset_key(dataset)


#: the suffixes of a data set's other tables: a key never holds ``__``, so none of them is
#: another data set's table
PREVIOUS, STAGING = "__previous", "__staging_"


def _legacy_previous(dataset: str) -> str:
    """Where a publish before 2026-12-07 kept the previous table (``<table>_previous``), which
    could be another data set's current table: only ever read or dropped when no publication of
    such a data set is recorded."""
    import re

    return "urm_user_scores_" + re.sub(r"[^a-z0-9]+", "_", dataset.lower()).strip("_") + "_previous"


def _someones_table(conn, name: str) -> bool:
    """Whether ``name`` is the current table of a data set with a recorded publication."""
    from sqlalchemy import inspect, text

    if PUBLICATIONS not in inspect(conn).get_table_names():
        return False
    published = {r[0] for r in conn.execute(text(f"SELECT DISTINCT dataset FROM {PUBLICATIONS}"))}
    return name in {table_name(str(d)) for d in published}


def publisher() -> str:
    """Who publishes from where: ``user@host:project home``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        user = f"uid {__import__('os').getuid()}"
    return f"{user}@{socket.gethostname()}:{paths.project_root()}"


def _copy(pd_table, conn, keys, data_iter) -> None:
    """pandas ``to_sql`` rows into PostgreSQL with ``COPY`` (psycopg 3): a statement per chunk
    instead of one per row, and no limit on the number of parameters."""
    cols = ", ".join(f'"{k}"' for k in keys)
    with conn.connection.dbapi_connection.cursor() as cur:
        with cur.copy(f'COPY "{pd_table.name}" ({cols}) FROM STDIN') as copy:
            for row in data_iter:
                copy.write_row([None if isinstance(v, float) and v != v else v for v in row])


def _publications_table(conn) -> None:
    """``urm_publications``, created or brought up to date (``publisher`` was added on 2026-12-07)."""
    from sqlalchemy import inspect, text

    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {PUBLICATIONS} (dataset TEXT NOT NULL, as_of TEXT NOT NULL, "
            "rows BIGINT NOT NULL, model_versions TEXT, run_id TEXT, details TEXT, published_at TEXT NOT NULL, "
            "publisher TEXT)"
        )
    )
    if "publisher" not in {c["name"] for c in inspect(conn).get_columns(PUBLICATIONS)}:
        conn.execute(text(f"ALTER TABLE {PUBLICATIONS} ADD COLUMN publisher TEXT"))


def _without_erased(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The rows of users nobody erased (the erasure register of the team and of this clone):
    a table built before an erasure made elsewhere never brings the user back."""
    keep = not_erased(dataset)
    return frame if keep is None else frame[keep(frame["user_id"].astype(str).to_numpy())]


def publish_table(
    table: pd.DataFrame, dataset: str, *, url: str | None = None, run_id: str = "", metadata: dict | None = None
) -> dict:
    """Write ``table`` (the predictions table) as the data set's current SQL table, atomically,
    keeping the previous one. Returns what was published; a database that fails is a
    :class:`PublishError` (nothing changed then)."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    url = url or settings.database_url()
    if not url:
        raise ValueError("no database is set (team.yaml's database, or URM_DATABASE)")
    missing = [c for c in schema.COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the predictions table lacks columns {missing}")
    frame = _without_erased(table[schema.COLUMNS], dataset).copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    for c in frame.columns:  # nullable pandas types -> plain objects the drivers take
        if isinstance(frame[c].dtype, pd.StringDtype):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    name = table_name(dataset)
    staging = f"{name}{STAGING}{uuid.uuid4().hex[:8]}"
    eng = make_engine(url)
    try:
        with eng.connect() as conn:  # staging tables of publishes that were killed
            for old in inspect(conn).get_table_names():
                if old.startswith(f"{name}{STAGING}"):
                    conn.execute(text(f'DROP TABLE IF EXISTS "{old}"'))
            conn.commit()
        try:
            frame.to_sql(
                staging,
                eng,
                index=False,
                dtype=schema.sql_types(),
                chunksize=50_000,
                method=_copy if eng.dialect.name == "postgresql" else None,
            )
            as_of = str(frame["as_of"].iloc[0]) if len(frame) else ""
            versions = ";".join(sorted(table["model_versions"].dropna().astype(str).unique()))
            with eng.begin() as conn:  # the swap: one transaction
                _publications_table(conn)
                names = set(inspect(conn).get_table_names())
                legacy = _legacy_previous(dataset)
                if legacy in names and not _someones_table(conn, legacy):
                    conn.execute(text(f'DROP TABLE IF EXISTS "{legacy}"'))
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}{PREVIOUS}"'))
                if name in names:
                    conn.execute(text(f'ALTER TABLE "{name}" RENAME TO "{name}{PREVIOUS}"'))
                conn.execute(text(f'ALTER TABLE "{staging}" RENAME TO "{name}"'))
                conn.execute(
                    text(
                        f"INSERT INTO {PUBLICATIONS} (dataset, as_of, rows, model_versions, run_id, details, "
                        "published_at, publisher) VALUES (:d, :a, :n, :v, :r, :x, :t, :p)"
                    ),
                    {
                        "d": dataset,
                        "a": as_of,
                        "n": len(frame),
                        "v": versions,
                        "r": run_id,
                        "x": json.dumps(scrub_obj(metadata or {}), default=str),
                        "t": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                        "p": publisher(),
                    },
                )
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):  # the database may be the problem
                with eng.connect() as conn:
                    conn.execute(text(f'DROP TABLE IF EXISTS "{staging}"'))
                    conn.commit()
            raise
    except SQLAlchemyError as exc:
        raise PublishError(
            f"the team database {settings.redact(url)} did not take the table of {dataset!r} "
            f"({_first_line(exc)}); its tables are as they were"
        ) from None
    finally:
        eng.dispose()
    return {"database": settings.redact(url), "table": name, "rows": len(frame), "as_of": as_of}


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return scrub(f"{type(getattr(exc, 'orig', None) or exc).__name__}: {text[0] if text else ''}")


def read(dataset: str, *, url: str | None = None, previous: bool = False) -> pd.DataFrame:
    """The data set's current (or previous) SQL table."""
    eng = make_engine(url or settings.database_url())
    try:
        name = table_name(dataset) + (PREVIOUS if previous else "")
        return pd.read_sql_table(name, eng)
    finally:
        eng.dispose()


def delete_users(user_ids: list[str], dataset: str | None = None, *, url: str | None = None) -> dict:
    """Delete the users' rows from every table of ``dataset`` (every data set's without one):
    the current, the previous and any staging table a killed or running publish left;
    ``{table: rows deleted}``."""
    from sqlalchemy import bindparam, inspect, text

    url = url or settings.database_url()
    if not url or not user_ids:
        return {}
    eng = make_engine(url)
    out = {}
    try:
        with eng.begin() as conn:
            for name in inspect(conn).get_table_names():
                if not name.startswith("urm_user_scores_"):
                    continue
                if dataset is not None:
                    base = table_name(dataset)
                    mine = name in (base, f"{base}{PREVIOUS}") or name.startswith(f"{base}{STAGING}")
                    if name == _legacy_previous(dataset):  # the previous table of before 2026-12-07
                        mine = not _someones_table(conn, name)
                    if not mine:
                        continue
                stmt = text(f'DELETE FROM "{name}" WHERE user_id IN :ids').bindparams(bindparam("ids", expanding=True))
                n = conn.execute(stmt, {"ids": [str(u) for u in user_ids]}).rowcount
                if n:
                    out[name] = int(n)
    finally:
        eng.dispose()
    return out


__all__ = ["publish_table", "read", "delete_users", "table_name", "PublishError", "publisher"]
