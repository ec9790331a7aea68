"""The append-only erasure log (GDPR art. 17) and the check every load makes against it.

The log, ``data/erasure/erasures.jsonl``, holds one JSON line per erased user: an erasure
pseudonym (a keyed hash of the id in its own domain, ``e-...``: never the id, and not the
``p-...`` pseudonym that reports showed, so the log cannot be joined with anything), the data
set it applies to (``null``: every data set), the time, the id of the pseudonym key, what was
removed, and ``prev``: the SHA-256 of the previous line, so that a line edited, removed or
reordered breaks the chain (:func:`verify_log`). The chain cannot see its own end, so a head
record beside it, ``erasures.head``, keeps the number of lines and the hash of the last one,
sealed with the pseudonym key (HMAC): a last line edited or removed no longer matches it. Lines
are only ever appended, through ``O_APPEND``; the file is never rewritten. Every load
(:func:`urm_models.data.validation.validate_table`) drops the rows of erased users, so a refresh
cannot bring them back. Erasing (``urm forget``) is :mod:`urm_models.jobs.forget`.

A team shares one register: when the team setting names a ``database``, every erasure is also
written to its table ``urm_erasures`` (the same erasure pseudonym, data set, time, key id and who
erased), and every clone's loads and publishes read it beside their own log. A user forgotten in
one clone therefore stays out of what any other clone or the schedule loads and publishes. A
register that cannot be read stops the load (:class:`ErasureLogError`): guessing that nobody was
erased would bring users back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..core import locks, paths, settings
from ..core.errors import ErasureLogError
from ..core.io import make_dirs, write_text
from ..core.privacy import key_id, pseudonym_key, pseudonym_map
from ..core.redaction import scrub

GENESIS = "0" * 64
TEAM_TABLE = "urm_erasures"  # the team's register, in the team database
ERASURE = "erasure"  # the pseudonym domain of the log (privacy.pseudonymize)


def log_path() -> Path:
    return paths.project_root() / "data" / "erasure" / "erasures.jsonl"


def _read_lines() -> list[str]:
    try:
        with open(log_path(), encoding="utf-8") as fh:
            return [line.rstrip("\n") for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def head_path() -> Path:
    return log_path().with_suffix(".head")


def _seal(n: int, last: str) -> str:
    import hmac

    return hmac.new(pseudonym_key(), f"{n}:{last}".encode(), hashlib.sha256).hexdigest()


def _check_head(entries: list[dict], last: str) -> None:
    """The chain's end against the head record (lines, last hash, seal)."""
    try:
        head = json.loads(head_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        if any(e.get("v") == 2 for e in entries):  # written with a head record: it cannot vanish
            raise ErasureLogError(
                f"{head_path()} is missing: the end of the erasure log cannot be checked (its "
                "last lines may have been removed)"
            ) from None
        return  # a log from before head records; its next append writes one
    except ValueError:
        raise ErasureLogError(f"{head_path()} is not readable: the erasure log's head record was edited") from None
    import hmac

    if not hmac.compare_digest(str(head.get("seal", "")), _seal(int(head.get("lines", -1)), str(head.get("last")))):
        raise ErasureLogError(
            f"{head_path()}: the seal does not match (edited, or written under another pseudonym key)"
        )
    if head.get("lines") != len(entries) or head.get("last") != last:
        raise ErasureLogError(
            f"{log_path()}: {len(entries)} line(s) where the head record counts "
            f"{head.get('lines')}, or its last line changed: the end of the log was edited or "
            "removed"
        )


def verify_log() -> list[dict]:
    """The log's entries, after checking the hash chain; raises ErasureLogError if broken."""
    return _chain()[0]


def _chain() -> tuple[list[dict], str]:
    """(the log's entries, the hash of its last line), the chain checked."""
    entries, prev = [], GENESIS
    for number, line in enumerate(_read_lines(), start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise ErasureLogError(f"{log_path()}: line {number} is not JSON: the log was edited") from None
        if entry.get("prev") != prev:
            raise ErasureLogError(
                f"{log_path()}: line {number} does not follow line {number - 1} (hash "
                "chain broken): the log was edited, truncated or reordered"
            )
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
        entries.append(entry)
    if entries or head_path().exists():
        _check_head(entries, prev)
    return entries, prev


_CACHE: dict = {}


def _local_entries() -> list[dict]:
    path = log_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        return []
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _CACHE.get("key") != key:
        _CACHE.update(key=key, entries=verify_log())
    return _CACHE["entries"]


def _team_engine():
    """An engine on the team database, or None without one."""
    url = settings.database_url()
    if not url:
        return None

    return locks.engine(url)


def team_entries() -> list[dict]:
    """The team register's entries (``[]`` without a team database or before its first erasure).
    A database that cannot be read is an :class:`ErasureLogError`."""
    eng = _team_engine()
    if eng is None:
        return []
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with eng.connect() as conn:
            if TEAM_TABLE not in inspect(conn).get_table_names():
                return []
            rows = conn.execute(text(f"SELECT pseudonym, dataset, time, key_id FROM {TEAM_TABLE}")).mappings().all()
        return [dict(r) for r in rows]
    except SQLAlchemyError as exc:
        raise ErasureLogError(
            f"the team's erasure register ({TEAM_TABLE} in {settings.redact(str(eng.url))}) cannot be read "
            f"({scrub(str(getattr(exc, 'orig', exc)).strip().splitlines()[0])}): nothing is loaded or "
            "published until it can, or users erased elsewhere would come back"
        ) from None
    finally:
        eng.dispose()


def erased_pseudonyms(dataset: str | None = None) -> set[str]:
    """Pseudonyms erased everywhere or in ``dataset``, in this clone's log and in the team's
    register. Raises ErasureLogError if the log is damaged, the register cannot be read, or
    either holds erasures made under another pseudonym key (they could not be matched)."""
    local, team = _local_entries(), team_entries()
    if local or team:
        kid = key_id()
        for where, entries in ((log_path(), local), (f"the team register {TEAM_TABLE}", team)):
            other = {e.get("key_id") for e in entries} - {kid}
            if other:
                raise ErasureLogError(
                    f"{where} holds erasures made under another pseudonym key ({sorted(other)}; this one "
                    f"is {kid}): erased users could not be recognised and would come back. Use the team's "
                    "key (URM_PSEUDONYM_KEY or URM_PSEUDONYM_KEY_FILE; docs/team.md)."
                )
    return {e["pseudonym"] for e in [*local, *team] if e.get("dataset") in (None, dataset)}


def not_erased(dataset: str | None = None):
    """For paths that read a file without :func:`validation.validate_table` (Spark, the
    streamed scorer): ``None`` when nobody is erased for ``dataset``, else a function of an
    array of user ids (as text) that is True where the user is not erased. It carries the key
    (read here, once) and the erased pseudonyms, so Spark's workers need neither file."""
    gone = frozenset(erased_pseudonyms(dataset))
    if not gone:
        return None

    key = pseudonym_key()

    def keep(ids):
        import pandas as pd

        return ~pseudonym_map(pd.Series(ids, dtype=object), ERASURE, key=key).isin(gone).to_numpy()

    return keep


def append_team_entries(entries: list[dict], who: str) -> None:
    """Write erasures to the team register (nothing without a team database); one transaction."""
    eng = _team_engine()
    if eng is None:
        return
    from sqlalchemy import text

    try:
        with eng.begin() as conn:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {TEAM_TABLE} (pseudonym TEXT NOT NULL, dataset TEXT, "
                    "time TEXT NOT NULL, key_id TEXT NOT NULL, erased_by TEXT)"
                )
            )
            conn.execute(
                text(
                    f"INSERT INTO {TEAM_TABLE} (pseudonym, dataset, time, key_id, erased_by) "
                    "VALUES (:pseudonym, :dataset, :time, :key_id, :erased_by)"
                ),
                [
                    {**{k: e.get(k) for k in ("pseudonym", "dataset", "time", "key_id")}, "erased_by": who}
                    for e in entries
                ],
            )
    finally:
        eng.dispose()


def append_entries(entries: list[dict]) -> None:
    """Append entries to the log (hash-chained, ``O_APPEND``, fsync'd)."""
    old, prev = _chain()
    path = log_path()
    make_dirs(path.parent)
    lines = []
    for e in entries:
        line = json.dumps({**e, "v": 2, "prev": prev}, sort_keys=True, separators=(",", ":"))
        lines.append(line)
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    n = len(old) + len(lines)
    write_text(json.dumps({"lines": n, "last": prev, "seal": _seal(n, prev)}), head_path())
