"""Outputs: atomic writes and one file-mode policy.

Atomic: readers see the old file or the new one, never half of one (a temporary file in the
same folder, renamed over the target).

One policy for every output (tables, reports, MLflow store and artifacts, exported models,
quarantine, snapshots): **owner-only by default** (files 0600, folders 0700). Set
``URM_OUTPUT_ACCESS=group`` to make them readable by the owner's group (0640 / 0750), for a
team that shares one machine account group; nothing is ever world-readable. Our writers set
the mode explicitly; everything else a refresh writes (MLflow, papermill, the notebook kernels)
is covered by the process umask that :func:`output_umask` sets for the duration of a command.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

ACCESS_ENV = "URM_OUTPUT_ACCESS"
_POLICY = {"owner": (0o600, 0o700, 0o077), "group": (0o640, 0o750, 0o027)}


def access() -> str:
    value = os.environ.get(ACCESS_ENV, "owner").strip().lower() or "owner"
    if value not in _POLICY:
        raise ValueError(f"{ACCESS_ENV}={value!r}: expected 'owner' (default) or 'group'")
    return value


def file_mode() -> int:
    return _POLICY[access()][0]


def dir_mode() -> int:
    return _POLICY[access()][1]


def policy_umask() -> int:
    """The umask of the policy: what new files and folders may not allow."""
    return _POLICY[access()][2]


@contextlib.contextmanager
def output_umask() -> Iterator[int]:
    """Set the process umask of the policy for the block (kernels and MLflow inherit it)."""
    old = os.umask(policy_umask())
    try:
        yield old
    finally:
        os.umask(old)


def restrict(roots) -> int:
    """Remove the permission bits the policy does not allow from every file and folder under
    ``roots`` (links are not followed); returns how many were changed."""
    allowed = dir_mode()  # 0700 or 0750: files keep at most the same bits (an executable stays one)
    changed = 0
    for root in roots:
        root = Path(root)
        if not root.exists() or root.is_symlink():
            continue
        for folder, _dirs, files in os.walk(root):
            for p in [Path(folder), *(Path(folder) / f for f in files)]:
                if p.is_symlink():
                    continue
                mode = p.stat().st_mode & 0o777
                if mode & ~allowed:
                    os.chmod(p, mode & allowed)
                    changed += 1
    return changed


def make_dirs(path: str | os.PathLike) -> Path:
    """Create ``path`` and missing parents with the policy's folder mode."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=dir_mode())
        with contextlib.suppress(OSError):
            d.chmod(dir_mode())
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file sits in the same directory so that the final ``os.replace`` is a
    rename on one file system, which POSIX makes atomic. On error it is removed; a process
    killed in the block leaves a ``.<name>.*.tmp`` file that the next refresh removes
    (:func:`urm_models.jobs.pipeline.recover`). The file gets the policy's mode.
    """
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_parquet(df: pd.DataFrame, path: str | os.PathLike, **kwargs) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, **kwargs)
    return Path(path)


def write_csv(df: pd.DataFrame, path: str | os.PathLike, **kwargs) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
