"""Where the project keeps its files.

Everything a run writes lives under one root, so that a clone is self-contained. The root is
the repository (found from this file's location in the src layout) unless ``URM_HOME`` names
another directory, which is how tests and deployments keep their outputs apart.
"""

from __future__ import annotations

import os
from pathlib import Path


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


def predictions_dir() -> Path:
    return project_root() / "data" / "predictions"


def reports_dir() -> Path:
    return project_root() / "reports"


def mlruns_dir() -> Path:
    return project_root() / "mlruns"


def models_dir() -> Path:
    """Champion models exported by a refresh (MLflow model format, loadable without the store)."""
    return project_root() / "models"
