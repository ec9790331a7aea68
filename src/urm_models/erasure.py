"""Erasure (GDPR art. 17): ``urm forget`` and the append-only erasure log.

The log, ``data/erasure/erasures.jsonl``, holds one JSON line per erased user: the pseudonym
(never the id), the data set it applies to (``null``: every data set), the time, the id of the
pseudonym key, what was removed, and ``prev``: the SHA-256 of the previous line, so that a line
edited, removed or reordered breaks the chain (:func:`verify_log`). Lines are only ever
appended, through ``O_APPEND``; the file is never rewritten. Every load
(:func:`urm_models.validation.validate_table`) drops the rows of erased users, so a refresh
cannot bring them back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import paths

GENESIS = "0" * 64


class ErasureLogError(RuntimeError):
    """The erasure log is damaged, or was written under another pseudonym key."""


def log_path() -> Path:
    return paths.project_root() / "data" / "erasure" / "erasures.jsonl"


def _read_lines() -> list[str]:
    try:
        with open(log_path(), encoding="utf-8") as fh:
            return [line.rstrip("\n") for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def verify_log() -> list[dict]:
    """The log's entries, after checking the hash chain; raises ErasureLogError if broken."""
    entries, prev = [], GENESIS
    for number, line in enumerate(_read_lines(), start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise ErasureLogError(f"{log_path()}: line {number} is not JSON: the log was edited") from None
        if entry.get("prev") != prev:
            raise ErasureLogError(f"{log_path()}: line {number} does not follow line {number - 1} (hash "
                                  "chain broken): the log was edited, truncated or reordered")
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
        entries.append(entry)
    return entries


_CACHE: dict = {}


def erased_pseudonyms(dataset: str | None = None) -> set[str]:
    """Pseudonyms erased everywhere or in ``dataset``. Raises ErasureLogError if the log is
    damaged or holds erasures made under another pseudonym key (they could not be matched)."""
    path = log_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        return set()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _CACHE.get("key") != key:
        from .privacy import key_id

        entries = verify_log()
        kid = key_id()
        other = {e.get("key_id") for e in entries} - {kid}
        if other:
            raise ErasureLogError(
                f"{path} holds erasures made under another pseudonym key ({sorted(other)}; this one is "
                f"{kid}): erased users could not be recognised and would come back. Restore the key "
                "(URM_PSEUDONYM_KEY or URM_PSEUDONYM_KEY_FILE).")
        _CACHE.update(key=key, entries=entries)
    return {e["pseudonym"] for e in _CACHE["entries"] if e.get("dataset") in (None, dataset)}


def append_entries(entries: list[dict]) -> None:
    """Append entries to the log (hash-chained, ``O_APPEND``, fsync'd)."""
    existing = _read_lines()
    verify_log()
    prev = hashlib.sha256(existing[-1].encode("utf-8")).hexdigest() if existing else GENESIS
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for e in entries:
        line = json.dumps({**e, "prev": prev}, sort_keys=True, separators=(",", ":"))
        lines.append(line)
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
