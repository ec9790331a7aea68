"""Pseudonyms: what reports, notebooks and MLflow show instead of a user id.

A pseudonym is a keyed hash of the id (HMAC-SHA256, the first 16 hex digits, prefixed ``p-``):
stable for one key, so that one user has one pseudonym across runs and tables, and not
reversible without the key (user ids are often short numbers: an unkeyed hash of them is
reversed by trying them all). The key comes from ``URM_PSEUDONYM_KEY`` (at least 16
characters) or from a key file outside the repository: ``URM_PSEUDONYM_KEY_FILE``, by default
``~/.config/urm-models/pseudonym.key`` (``$XDG_CONFIG_HOME`` respected), created on first use
with 32 random bytes and mode 0600. Keep the key: the erasure log (``urm forget``) stores
pseudonyms only, and a new key cannot match them (loads then refuse to run, see
:mod:`urm_models.data.erasure`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from . import paths

PREFIX = "p-"
MIN_KEY_CHARS = 16


def key_file() -> Path:
    env = os.environ.get("URM_PSEUDONYM_KEY_FILE")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "urm-models" / "pseudonym.key"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def pseudonym_key() -> bytes:
    """The key of the keyed hash (see the module's docstring)."""
    env = os.environ.get("URM_PSEUDONYM_KEY")
    if env:
        if len(env) < MIN_KEY_CHARS:
            raise ValueError(f"URM_PSEUDONYM_KEY must have at least {MIN_KEY_CHARS} characters")
        return env.encode()
    path = key_file()
    for root in {paths.source_root(), paths.project_root()}:
        if _inside(path, root):
            raise ValueError(
                f"the pseudonym key file {path} lies inside the project ({root}), where it "
                "could be committed or copied with the reports: set URM_PSEUDONYM_KEY_FILE "
                "to a path outside it"
            )
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created meanwhile by another process
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return bytes.fromhex(key)


def key_id() -> str:
    """A short fingerprint of the key (not the key): which key an erasure was logged under."""
    return hashlib.sha256(b"urm-models key id:" + pseudonym_key()).hexdigest()[:12]


def pseudonymize(ids: Iterable, domain: str = "", key: bytes | None = None) -> list[str]:
    """The pseudonym of each id (ids are compared as the strings the loaders produce).

    ``domain`` gives another, unlinkable family of pseudonyms from the same key: the erasure
    log uses ``"erasure"``, so that it cannot be joined with what reports show. ``key``: the
    key read once by the caller (for work shipped to Spark's workers, which may not hold the
    key file); default :func:`pseudonym_key`."""
    key = pseudonym_key() if key is None else key
    prefix = PREFIX if not domain else f"{domain[0]}-"
    salt = f"{domain}\0".encode() if domain else b""
    return [prefix + hmac.new(key, salt + str(i).encode("utf-8"), hashlib.sha256).hexdigest()[:16] for i in ids]


def pseudonym_map(ids: pd.Series, domain: str = "", key: bytes | None = None) -> pd.Series:
    """Pseudonyms aligned with ``ids``, computed once per distinct id (``key``: as in
    :func:`pseudonymize`)."""
    codes, uniques = pd.factorize(ids.astype(str), sort=False)
    return pd.Series(pd.Index(pseudonymize(uniques, domain, key=key)).to_numpy()[codes], index=ids.index, dtype=object)


def masked(df: pd.DataFrame | pd.Series, column: str = "user_id"):
    """A copy of ``df`` whose ``user_id`` column and/or ``user_id`` index hold pseudonyms: what a
    notebook displays and what MLflow is given."""
    out = df.copy()
    if isinstance(out, pd.DataFrame) and column in out.columns:
        out[column] = pseudonym_map(out[column]).to_numpy()
    if out.index.name == column:
        out.index = pd.Index(pseudonym_map(out.index.to_series()).to_numpy(), name=column)
    return out
