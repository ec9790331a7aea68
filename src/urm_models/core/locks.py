"""One refresh of a data set at a time: a lock file per project home, and across machines a
lock in the team's database.

On one machine the project home's lock file does it (:func:`refresh_lock`). When the team
setting names a PostgreSQL ``database`` (:mod:`urm_models.core.settings`), refreshes and ``urm
score`` of the same data set from several machines (project homes) also take a PostgreSQL
advisory lock on it, held by a connection of their own for as long as they run: the second
one exits 75 with a message naming the holder (host, process, home, start), and the lock goes
when its holder's connection does, even after a ``kill -9``. The holder is recorded in the
table ``urm_locks`` for that message only; the advisory lock is what excludes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from . import paths, settings
from .errors import DatabaseUnavailable, RefreshLocked
from .io import make_dirs
from .redaction import scrub


def _unavailable(url: str, exc: BaseException, doing: str) -> DatabaseUnavailable:
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return DatabaseUnavailable(
        f"the team database {settings.redact(url)} cannot be reached to {doing} "
        f"({scrub(first[0] if first else type(exc).__name__)}): start it or correct `database` in "
        f"team.yaml (or URM_DATABASE); nothing was run"
    )


def check_database() -> None:
    """Connect to the team's database, if one is set: a refresh checks it before anything runs."""
    url = settings.database_url()
    if not url:
        return
    from sqlalchemy.exc import SQLAlchemyError

    eng = engine(url)
    try:
        with eng.connect():
            pass
    except SQLAlchemyError as exc:
        raise _unavailable(url, exc, "publish and share erasures") from None
    finally:
        eng.dispose()


def _is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def engine(url: str):
    """An SQLAlchemy engine for ``url`` without a pool (each use opens and closes its own
    connection: nothing idles in a long refresh); ``postgresql://`` uses psycopg 3, the
    driver of the ``team`` extra."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        return sqlalchemy.create_engine(url, poolclass=NullPool)
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"the database {settings.redact(url)} needs its driver ({exc.name}): install the "
            "team extra (uv sync --extra team, or pip install 'urm-models[team]')"
        ) from None


@contextlib.contextmanager
def team_lock(dataset: str | None) -> Iterator[None]:
    """Hold the data set's lock in the team's PostgreSQL database for the block (nothing
    without one); :class:`RefreshLocked` names the holder if another process has it."""
    url, _ = settings.get("database")
    if not url or not dataset or not _is_postgres(url):
        yield
        return
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    key = f"urm-refresh:{dataset}"
    try:
        conn = engine(url).connect()
    except SQLAlchemyError as exc:
        raise _unavailable(url, exc, f"take the refresh lock of {dataset!r}") from None
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key}).scalar()
        conn.commit()
        if not got:
            holder = None
            with contextlib.suppress(Exception):
                holder = conn.execute(text("SELECT holder FROM urm_locks WHERE name = :k"), {"k": key}).scalar()
            raise RefreshLocked(
                f"another refresh or score of {dataset!r} is running against the team database "
                f"{settings.redact(url)} ({holder or 'holder unknown'}). Wait for it to finish: the "
                "lock goes when that process ends"
            )
        holder = (
            f"host {socket.gethostname()}, pid {os.getpid()}, home {paths.project_root()}, started "
            f"{dt.datetime.now():%Y-%m-%d %H:%M:%S}"
        )
        conn.execute(text("CREATE TABLE IF NOT EXISTS urm_locks (name TEXT PRIMARY KEY, holder TEXT NOT NULL)"))
        conn.execute(
            text(
                "INSERT INTO urm_locks (name, holder) VALUES (:k, :h) "
                "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder"
            ),
            {"k": key, "h": holder},
        )
        conn.commit()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                conn.execute(text("DELETE FROM urm_locks WHERE name = :k AND holder = :h"), {"k": key, "h": holder})
                conn.commit()
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
                conn.commit()
    finally:
        conn.close()


@contextlib.contextmanager
def refresh_lock(path: Path | None = None, dataset: str | None = None) -> Iterator[Path]:
    """Hold an exclusive, non-blocking lock for the duration of a refresh: the project home's
    lock file and, with ``dataset`` and a team PostgreSQL database, the data set's lock there
    (:func:`team_lock`): either held elsewhere is :class:`RefreshLocked`."""
    path = path or paths.reports_dir() / ".refresh.lock"
    make_dirs(path.parent)
    fh = open(path, "a+")
    held = False
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise RefreshLocked(
                f"another refresh is running ({holder}); lock file {path}. Wait for it to "
                f"finish; the lock is released when that process exits."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {dt.datetime.now():%Y-%m-%d %H:%M:%S}")
        fh.flush()
        with team_lock(dataset):
            yield path
    finally:
        if held:  # a refused process leaves the holder's information as it is
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
        fh.close()  # closing releases the lock
