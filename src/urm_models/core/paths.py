"""Where the project keeps its files.

Everything a run writes lives under one root, so that a clone is self-contained. The root is
the repository (found from this file's location in the src layout) unless ``URM_HOME`` names
another directory, which is how tests and deployments keep their outputs apart.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: What a run id or a data set name may be: it becomes a folder name under reports/, data/ and
#: models/, so no path separators, no "..", nothing hidden.
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def safe_name(value: str, what: str = "name") -> str:
    """``value`` if it is a safe folder name (letters, digits, ``_``, ``.``, ``-``; not starting
    with ``.`` or ``-``; no ``..``; at most 128 characters), else ValueError naming ``what``."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{what} {value!r} is not a safe name: use letters, digits, '_', '-' and '.' "
            "(not first), at most 128 characters, no path separators and no '..'"
        )
    return value


def dataset_name(path: str | Path) -> str:
    """The data set name of your own file: the name before its first suffix, other characters
    than letters, digits, ``_``, ``.`` and ``-`` replaced by ``_`` (``shop orders.csv.gz`` ->
    ``shop_orders``); a safe folder name (:func:`urm_models.core.paths.safe_name`)."""
    stem = Path(path).name.split(".")[0] or Path(path).stem
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).lstrip("-_") or "data"
    return safe_name(name[:128], "data set name")


#: what :func:`dataset_key` keeps as it is: lower-case words joined by single underscores
_PLAIN_KEY = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
#: the tail of a key made from a name that is not plain (never the tail of a plain key)
_HASHED_TAIL = re.compile(r"_x[0-9a-f]{10}$")
KEY_MAX = 28


def dataset_key(name: str) -> str:
    """The one key of a data set name in the places that cannot hold any name: SQL table names
    (lower-case, no quotes, at most 63 bytes in PostgreSQL) and registry aliases. Injective:
    two names never share a key, so ``shop.a``, ``shop_a`` and ``Shop-A`` get three tables and three
    champion aliases. A plain name (lower-case letters and digits in words joined by single
    ``_``, at most 28 characters) is its own key (``cdnow``, ``cdnow_sample``); any other name is
    shortened to such words and followed by ``_x`` and 10 hex digits of its SHA-256
    (``Shop-A`` -> ``shop_a_x...``), a tail no plain key has. A key never holds ``__``, which is
    what marks a data set's other SQL tables (``<table>__previous``): no data set's name can
    become another's previous table (docs/architecture.md, "Names")."""
    import hashlib

    text = str(name)
    if _PLAIN_KEY.fullmatch(text) and len(text) <= KEY_MAX and not _HASHED_TAIL.search(text):
        return text
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:16].strip("_") or "data"
    return f"{base}_x{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"


def project_root() -> Path:
    """The directory holding ``data/``, ``notebooks/``, ``mlruns/`` and ``reports/``."""
    env = os.environ.get("URM_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "urm_models").is_dir():
            return parent
    return Path.cwd()


def package_dir() -> Path:
    """The installed ``urm_models`` package itself (its source files travel with logged models)."""
    return Path(__file__).resolve().parents[1]


def source_root() -> Path:
    """The repository the package was installed from (shipped data and notebooks live here)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "urm_models").is_dir():
            return parent
    return project_root()


def raw_data_dir() -> Path:
    """Shipped, immutable data sets. Read from the source tree, never written."""
    return source_root() / "data" / "raw"


def notebooks_dir() -> Path:
    return source_root() / "notebooks"


def quarantine_dir() -> Path:
    return project_root() / "data" / "quarantine"


def snapshots_dir() -> Path:
    """Each own-data refresh's validated copy of the input, ``<run-id>/transactions.parquet``:
    raw rows, so under ``data/`` and owner-only; deleted when the run ends unless kept."""
    return project_root() / "data" / "snapshots"


def staging_dir() -> Path:
    """Where a refresh's scoring notebook stages the predictions table until it is published,
    ``<run-id>/user_scores.parquet``: raw user ids, so under ``data/`` (never ``reports/``), and
    removed when the run ends or, after a kill, by the next refresh."""
    return project_root() / "data" / "tmp" / "staged"


def predictions_dir() -> Path:
    return project_root() / "data" / "predictions"


def reports_dir() -> Path:
    return project_root() / "reports"


def mlruns_dir() -> Path:
    return project_root() / "mlruns"


def models_dir() -> Path:
    """Champion models exported by a refresh (MLflow model format, loadable without the store)."""
    return project_root() / "models"
