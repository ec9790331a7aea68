"""``urm forget``: erase users from everything the project keeps, then log it.

What is removed, and where, is :func:`forget`'s docstring; the log itself, and the check that
drops erased users at every load, are :mod:`urm_models.data.erasure`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..core import paths, settings
from ..core.io import atomic_path, output_umask, write_csv, write_text
from ..core.locks import check_database, refresh_lock
from ..core.privacy import key_id, pseudonymize
from ..data.contract import TABLES
from ..data.datasets import DATASETS
from ..data.erasure import ERASURE, append_entries, append_team_entries, log_path
from ..serve import sqltable

#: text artifacts scanned for an erased id or pseudonym (MLflow artifacts, exported models)
TEXT_SUFFIXES = {".csv", ".json", ".txt", ".html", ".md", ".yaml", ".yml"}
ERASED_NOTE = "[output removed: it showed a user erased with urm forget on {when}]"


def known_datasets() -> set[str]:
    """The data sets this project keeps something of: the shipped ones, those with published
    tables, refresh runs, snapshots or quarantine files (``urm forget --dataset`` takes only these:
    a mistyped name would erase nothing and write the typo into the append-only log)."""
    names = set(DATASETS)
    root = paths.predictions_dir()
    if root.is_dir():
        names |= {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    runs = paths.reports_dir() / "runs"
    for manifest in runs.glob("*/manifest.json") if runs.is_dir() else []:
        try:
            names.add(json.loads(manifest.read_text(encoding="utf-8"))["parameters"]["dataset"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    qdir = paths.quarantine_dir()
    if qdir.is_dir():
        names |= {d for p in qdir.rglob("*.csv") if (d := _quarantine_dataset(p.name))}
    return {str(n) for n in names if n}


def _quarantine_dataset(filename: str) -> str | None:
    """The data set of a quarantine file, ``<dataset>-<table>-<file>-<time>.csv`` (a data set
    name may hold ``-`` itself: the table's name is what ends it)."""
    import re

    m = re.match(rf"^(.+?)-(?:{'|'.join(map(re.escape, TABLES))})-", filename)
    return m.group(1) if m else None


def forget(user_ids: list[str], dataset: str | None = None) -> dict:
    """Erase users from everything the project keeps, then log the erasure.

    Removed: their rows in every predictions table (each as-of date, hence ``latest``, and the
    Spark-written partitions; the team database's SQL tables, current and previous), in the
    quarantine files and in the refresh snapshots; the outputs of executed notebooks that show
    their pseudonym; rows and mentions in MLflow artifacts and exported models. ``dataset``
    limits the tables, quarantine files, snapshots and notebooks to that data set (MLflow
    artifacts and exported models are always scanned). One log line per user is appended
    (pseudonym, data set, time, what was removed); every later load drops their rows.
    Holds the refresh lock, so it never interleaves with a refresh or ``urm score``.
    """
    import datetime as dt

    ids = [str(u).strip() for u in user_ids]
    if not ids or any(not u for u in ids):
        raise ValueError("give at least one user id, none of them empty")
    if dataset is not None:
        paths.safe_name(dataset, "data set name (--dataset)")
    pseudos = pseudonymize(ids)  # what reports and notebooks showed
    tokens = pseudonymize(ids, ERASURE)  # what the log keeps
    when = dt.datetime.now().isoformat(timespec="seconds")
    counts = {u: {} for u in ids}

    def add(user, where, n):
        if n:
            counts[user][where] = counts[user].get(where, 0) + int(n)

    check_database()  # the team's tables and register must be reachable before anything is removed
    with output_umask(), refresh_lock():
        for where, n_by_user in [
            ("predictions", _forget_tables(paths.predictions_dir(), ids, dataset, "*/user_scores.parquet")),
            # urm score --engine spark: data/predictions/<dataset>/spark/as_of=<date>/part-*.parquet
            ("predictions", _forget_tables(paths.predictions_dir(), ids, dataset, "spark/as_of=*/*.parquet")),
            ("predictions", _forget_tables(paths.predictions_dir(), ids, dataset, "*/next_campaign.parquet")),
            ("snapshots", _forget_snapshots(ids, dataset)),
            ("quarantine", _forget_quarantine(ids, dataset)),
        ]:
            for u, n in n_by_user.items():
                add(u, where, n)
        # tables staged by a refresh that was killed before publishing (the lock is ours: no refresh
        # is running): unpublished copies with raw ids, removed as the next refresh would
        staged = paths.staging_dir()
        for run in sorted(staged.iterdir()) if staged.is_dir() else []:
            shutil.rmtree(run, ignore_errors=True)
        # and where refreshes before 2026-12-04 staged them
        runs = paths.reports_dir() / "runs"
        for table in sorted(runs.glob("*/user_scores.parquet")) if runs.is_dir() else []:
            for u, n in _filter_parquet(table, ids).items():
                add(u, "staged_tables", n)

        if settings.database_url():  # the team's SQL tables: current, previous and staging ones
            for u in ids:
                add(u, "sql_tables", sum(sqltable.delete_users([u], dataset).values()))
        patterns = _patterns(ids, pseudos)
        for i, n in _forget_notebooks(paths.reports_dir() / "runs", patterns, dataset, when).items():
            add(ids[i], "notebook_outputs", n)
        for where, root in [("mlflow_artifacts", paths.mlruns_dir()), ("exported_models", paths.models_dir())]:
            for i, n in _forget_text_files(root, patterns).items():
                add(ids[i], where, n)
        # the logs of the schedule (reports/cron.log) and anything else written beside the runs
        for i, n in _forget_log_lines(paths.reports_dir(), patterns).items():
            add(ids[i], "logs", n)
        kid = key_id()
        entries = [
            {"pseudonym": t, "dataset": dataset, "time": when, "key_id": kid, "removed": counts[u]}
            for u, t in zip(ids, tokens, strict=True)
        ]
        # the team's register first: every clone's loads and publishes read it (erasure.py)
        append_team_entries(entries, sqltable.publisher())
        append_entries(entries)
    return {
        "erased": len(ids),
        "dataset": dataset,
        "pseudonyms": tokens,
        "removed": {t: counts[u] for u, t in zip(ids, tokens, strict=True)},
        "log": str(log_path()),
    }


def _token(value: str):
    import re

    return re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")


def _patterns(ids: list[str], pseudos: list[str]) -> list[tuple[int, object]]:
    """(index of the user, a pattern of their id or pseudonym as a whole token)."""
    return [(i, _token(v)) for i, v in enumerate(ids)] + [(i, _token(p)) for i, p in enumerate(pseudos)]


def _forget_tables(root: Path, ids: list[str], dataset: str | None, pattern: str) -> dict:
    """Drop the users' rows from Parquet tables ``root/<dataset>/<pattern>`` (metadata kept)."""
    n_by_user: dict[str, int] = {}
    if not root.is_dir():
        return n_by_user
    folders = [root / dataset] if dataset else [d for d in root.iterdir() if d.is_dir() and not d.is_symlink()]
    for folder in folders:
        for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
            if path.parent.is_symlink():
                continue  # the latest link: its target is rewritten itself
            n_by_user_file = _filter_parquet(path, ids)
            for u, n in n_by_user_file.items():
                n_by_user[u] = n_by_user.get(u, 0) + n
    return n_by_user


def _filter_parquet(path: Path, ids: list[str]) -> dict:
    """Drop the users' rows from a Parquet file, and their mentions from its metadata (a
    snapshot's validation report quotes rejected raw rows): ``{user: rows or mentions}``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    hits = {u: 0 for u in ids}
    if "user_id" in table.column_names:
        col = pc.cast(table["user_id"], pa.string())
        hits = {u: int(pc.sum(pc.equal(col, u)).as_py() or 0) for u in ids}
        if any(hits.values()):
            keep = pc.invert(pc.fill_null(pc.is_in(col, value_set=pa.array(ids, pa.string())), False))
            table = table.filter(keep)
    meta, mentioned = _scrub_metadata(table.schema.metadata or {}, ids)
    for u in mentioned:
        hits[u] = hits[u] + 1
    if not any(hits.values()):
        return {}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
    return {u: n for u, n in hits.items() if n}


def _scrub_metadata(meta: dict, ids: list[str]) -> tuple[dict, set[str]]:
    """File metadata with every mention of an id (as a whole token) replaced by ``[erased]``."""
    tokens = {u: _token(u) for u in ids}
    out, mentioned = {}, set()
    for k, v in meta.items():
        text = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        for u, tok in tokens.items():
            if tok.search(text):
                mentioned.add(u)
                text = tok.sub("[erased]", text)
        out[k] = text.encode("utf-8")
    return out, mentioned


def _forget_snapshots(ids: list[str], dataset: str | None) -> dict:
    root = paths.snapshots_dir()
    out: dict[str, int] = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if dataset and _run_dataset(folder.name) not in (dataset, None):
            continue
        for path in folder.glob("*.parquet"):
            for u, n in _filter_parquet(path, ids).items():
                out[u] = out.get(u, 0) + n
    return out


def _run_dataset(run_id: str) -> str | None:
    try:
        manifest = json.loads((paths.reports_dir() / "runs" / run_id / "manifest.json").read_text(encoding="utf-8"))
        return (manifest.get("parameters") or {}).get("dataset")
    except (OSError, ValueError):
        return None


def _forget_quarantine(ids: list[str], dataset: str | None) -> dict:
    """Drop rows of the users from quarantine files: their parsed id (``_user_id``), any cell
    equal to an id, or a raw line that holds an id as a field."""
    import csv

    import pandas as pd

    root = paths.quarantine_dir()
    out: dict[str, int] = {}
    tokens = {u: _token(u) for u in ids}
    for path in sorted(root.rglob("*.csv")) if root.is_dir() else []:  # quarantine_dir= may name a subfolder
        if dataset and _quarantine_dataset(path.name) != dataset:
            continue
        q = pd.read_csv(path, dtype=str, keep_default_na=False)
        hit = pd.Series(False, index=q.index)
        for u, tok in tokens.items():
            mine = q.apply(lambda row, u=u: any(str(v).strip() == u for v in row), axis=1)
            if "_raw_line" in q:
                mine |= q["_raw_line"].map(lambda t, tok=tok: bool(tok.search(str(t))))
            if mine.any():
                out[u] = out.get(u, 0) + int(mine.sum())
            hit |= mine
        if hit.any():
            write_csv(q[~hit], path, index=False, quoting=csv.QUOTE_ALL)
    return out


def _forget_notebooks(root: Path, patterns, dataset, when) -> dict:
    """Replace the outputs of executed-notebook cells that show a user's pseudonym (or id)."""
    out: dict[int, int] = {}
    for path in sorted(root.glob("*/*.ipynb")) if root.is_dir() else []:
        if dataset and _run_dataset(path.parent.name) not in (dataset, None):
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        for cell in nb.get("cells", []):
            outputs = cell.get("outputs") or []
            if not outputs:
                continue
            text = json.dumps(outputs)
            found = {i for i, pat in patterns if pat.search(text)}
            if found:
                cell["outputs"] = [
                    {"output_type": "stream", "name": "stdout", "text": [ERASED_NOTE.format(when=when) + "\n"]}
                ]
                changed = True
                for i in found:
                    out[i] = out.get(i, 0) + 1
        if changed:
            write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", path)
    return out


def _forget_log_lines(root: Path, patterns) -> dict:
    """In the logs under ``root`` (``*.log``: the schedule's ``reports/cron.log``), replace every
    line that mentions an id or pseudonym with a note that it was erased."""
    out: dict[int, int] = {}
    for path in sorted(root.rglob("*.log")) if root.is_dir() else []:
        if not path.is_file() or path.is_symlink():
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (UnicodeDecodeError, OSError):
            continue
        changed = False
        for n, line in enumerate(lines):
            found = {i for i, pat in patterns if pat.search(line)}
            if found:
                lines[n] = "[line removed: it showed a user erased with urm forget]\n"
                changed = True
                for i in found:
                    out[i] = out.get(i, 0) + 1
        if changed:
            write_text("".join(lines), path)
    return out


def _forget_text_files(root: Path, patterns) -> dict:
    """In text files under ``root`` (CSV tables, JSON, HTML ...): drop CSV rows that hold an
    id or pseudonym as a field; replace any other mention with ``[erased]``."""
    import csv
    import io as _io

    out: dict[int, int] = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if not path.is_file() or path.is_symlink() or path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found = {i for i, pat in patterns if pat.search(text)}
        if not found:
            continue
        if path.suffix.lower() == ".csv":
            rows = list(csv.reader(_io.StringIO(text, newline="")))
            keep = [r for n, r in enumerate(rows) if n == 0 or not any(pat.search(",".join(r)) for _, pat in patterns)]
            buf = _io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(keep)
            new = buf.getvalue()
        else:
            new = text
            for _, pat in patterns:
                new = pat.sub("[erased]", new)
        write_text(new, path)
        for i in found:
            out[i] = out.get(i, 0) + 1
    return out
