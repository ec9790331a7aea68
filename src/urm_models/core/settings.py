"""The team setting: where a team's models and tables live, read the same way by every entry point.

One file, ``team.yaml`` in the project home (or the file ``URM_TEAM_FILE`` names), so that the
CLI, the notebooks (their kernel reads it too), cron and systemd (which start without a shell's
environment) agree (docs/team.md)::

    tracking_uri: http://mlflow.internal:5000          # the team's MLflow server
    database: postgresql://urm:secret@db.internal/urm   # predictions tables and the refresh lock

``artifact_root`` is needed only when ``tracking_uri`` names a database directly (no server):
where the artifacts go (a folder every machine mounts, or an object store); without it they
would land on each machine's own disk, so that URI alone is refused. An environment variable
wins over the file (``MLFLOW_TRACKING_URI``, ``URM_DATABASE``, ``URM_ARTIFACT_ROOT``); with
neither, the project's own store (``mlruns/mlflow.db``) and no database. The file may hold
passwords: keep it owner-only and out of git (``.gitignore`` lists it); what the project records
(manifests, table metadata, champion exports) shows URIs without their password.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import paths
from .errors import SettingsError
from .redaction import redact_uri, remember

#: the settings, each with the environment variable that overrides the file
KEYS = {"tracking_uri": "MLFLOW_TRACKING_URI", "database": "URM_DATABASE", "artifact_root": "URM_ARTIFACT_ROOT"}
FILE_ENV = "URM_TEAM_FILE"


def team_file() -> Path:
    env = os.environ.get(FILE_ENV)
    return Path(env).expanduser() if env else paths.project_root() / "team.yaml"


def read_team_file() -> dict:
    """The team file's settings (``{}`` when there is none), checked: a mapping of known keys to
    non-empty strings, or a :class:`SettingsError` naming the file and the key."""
    path = team_file()
    if not path.is_file():
        if os.environ.get(FILE_ENV):
            raise SettingsError(f"{FILE_ENV}={path}: no such file")
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path}: not readable as YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: must hold a mapping of setting: value ({', '.join(KEYS)})")
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {unknown}; known: {sorted(KEYS)}")
    bad = [k for k, v in data.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise SettingsError(f"{path}: setting(s) {bad} must be non-empty text (a URI)")
    out = {k: v.strip() for k, v in data.items()}
    for value in out.values():  # its passwords are masked in whatever this process writes
        remember(value)
    return out


def get(key: str) -> tuple[str | None, str]:
    """``(value, where it came from)`` of a setting: the environment variable, else the team
    file, else ``(None, "default")``."""
    if key not in KEYS:
        raise KeyError(key)
    env = os.environ.get(KEYS[key])
    if env:
        remember(env)
        return env, f"environment {KEYS[key]}"
    value = read_team_file().get(key)
    if value:
        return value, str(team_file())
    return None, "default"


def database_url() -> str | None:
    """The team's database (``database`` in team.yaml or ``URM_DATABASE``), a relative SQLite
    path resolved against the project home; None when none is set."""
    url, _ = get("database")
    if url and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{paths.project_root() / url.removeprefix('sqlite:///')}"
    return url


def redact(uri: str | None) -> str | None:
    """A URI as it may be shown and recorded: without its password or secret query values
    (:func:`urm_models.core.redaction.redact_uri`)."""
    return redact_uri(uri)


def summary() -> dict:
    """What a manifest records: each setting (redacted) and where it came from."""
    out = {}
    for key in KEYS:
        value, source = get(key)
        out[key] = {"value": redact(value), "source": source}
    return out


@contextlib.contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (a kernel or a library started inside it inherits
    them) and restore each one as it was, unset or not, afterwards."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
